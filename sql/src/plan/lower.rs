//! From DataFusion's optimised logical plan to a [`StreamPlan`].

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::source_as_provider;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{FetchType, LogicalPlan, SkipType};

use super::{LimitNode, SourceNode, StatelessNode, StreamNode, StreamPlan};
use crate::catalog::MagnetarTable;
use crate::error::{Result, SqlError};

/// Whether a query ends by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryBoundedness {
    /// Every table it reads is bounded (or it reads none).
    Bounded,
    /// It reads at least one unbounded table (named).
    Unbounded {
        /// The first unbounded table.
        table: String,
    },
}

/// Finds whether `plan` reads an unbounded Pulsar table.
pub fn boundedness(plan: &LogicalPlan) -> QueryBoundedness {
    let mut unbounded = None;
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(table) = provider.downcast_ref::<MagnetarTable>()
            && !table.def().is_bounded()
        {
            unbounded = Some(table.def().name.clone());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match unbounded {
        Some(table) => QueryBoundedness::Unbounded { table },
        None => QueryBoundedness::Bounded,
    }
}

/// Lowers an optimised logical plan to a streaming plan, or explains what is not supported.
pub fn lower(plan: &LogicalPlan, state: &SessionState) -> Result<StreamPlan> {
    Ok(StreamPlan {
        root: lower_node(plan, state)?,
    })
}

fn arrow_schema(plan: &LogicalPlan) -> Arc<Schema> {
    Arc::new(plan.schema().as_arrow().clone())
}

fn unbounded_table(plan: &LogicalPlan) -> String {
    match boundedness(plan) {
        QueryBoundedness::Unbounded { table } => table,
        QueryBoundedness::Bounded => "?".into(),
    }
}

fn needs_bounds(what: &str, plan: &LogicalPlan) -> SqlError {
    SqlError::unsupported(
        format!(
            "{what} over the unbounded table '{}' would never finish; make the read bounded with 'source.stop.at-message-id' = 'latest' (or another stop option)",
            unbounded_table(plan)
        ),
        None,
    )
}

fn lower_node(plan: &LogicalPlan, state: &SessionState) -> Result<StreamNode> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let provider = source_as_provider(&scan.source)?;
            let Some(table) = provider.downcast_ref::<MagnetarTable>() else {
                return Err(SqlError::unsupported(
                    format!(
                        "table '{}' is not a Pulsar table and cannot be joined into a continuous query",
                        scan.table_name
                    ),
                    None,
                ));
            };
            if !scan.filters.is_empty() {
                return Err(SqlError::unsupported(
                    "filters pushed into a Pulsar scan are not expected",
                    None,
                ));
            }
            let source = StreamNode::Source(SourceNode {
                table: table.def().clone(),
                projection: scan.projection.clone(),
                schema: Arc::new(scan.projected_schema.as_arrow().clone()),
                watermarks: false,
            });
            Ok(match scan.fetch {
                Some(fetch) => StreamNode::Limit(LimitNode {
                    input: Box::new(source),
                    skip: 0,
                    fetch: Some(fetch),
                }),
                None => source,
            })
        }
        LogicalPlan::Filter(filter) => {
            let input = lower_node(&filter.input, state)?;
            let predicate =
                state.create_physical_expr(filter.predicate.clone(), filter.input.schema())?;
            Ok(StreamNode::Stateless(StatelessNode {
                schema: input.schema(),
                input: Box::new(input),
                predicate: Some((predicate, filter.predicate.to_string())),
                projection: None,
            }))
        }
        LogicalPlan::Projection(projection) => {
            let input = lower_node(&projection.input, state)?;
            let mut columns = Vec::with_capacity(projection.expr.len());
            for expr in &projection.expr {
                let physical =
                    state.create_physical_expr(expr.clone(), projection.input.schema())?;
                columns.push((physical, expr.to_string()));
            }
            let schema = arrow_schema(plan);
            // A projection right above a filter runs in the same stage.
            Ok(match input {
                StreamNode::Stateless(mut stage) if stage.projection.is_none() => {
                    stage.projection = Some(columns);
                    stage.schema = schema;
                    StreamNode::Stateless(stage)
                }
                other => StreamNode::Stateless(StatelessNode {
                    input: Box::new(other),
                    predicate: None,
                    projection: Some(columns),
                    schema,
                }),
            })
        }
        LogicalPlan::SubqueryAlias(alias) => lower_node(&alias.input, state),
        LogicalPlan::Limit(limit) => {
            let skip = match limit.get_skip_type()? {
                SkipType::Literal(n) => n,
                SkipType::UnsupportedExpr => {
                    return Err(SqlError::unsupported("OFFSET must be a number", None));
                }
            };
            let fetch = match limit.get_fetch_type()? {
                FetchType::Literal(n) => n,
                FetchType::UnsupportedExpr => {
                    return Err(SqlError::unsupported("LIMIT must be a number", None));
                }
            };
            let input = lower_node(&limit.input, state)?;
            Ok(StreamNode::Limit(LimitNode {
                input: Box::new(input),
                skip,
                fetch,
            }))
        }
        LogicalPlan::Aggregate(_) => Err(needs_bounds("aggregation (GROUP BY, count, ...)", plan)),
        LogicalPlan::Sort(_) => Err(needs_bounds("ORDER BY", plan)),
        LogicalPlan::Join(_) => Err(needs_bounds("a join", plan)),
        LogicalPlan::Window(_) => Err(needs_bounds("an OVER window function", plan)),
        LogicalPlan::Distinct(_) => Err(needs_bounds("DISTINCT", plan)),
        other => Err(SqlError::unsupported(
            format!(
                "{} is not supported in a continuous query over the unbounded table '{}'",
                other.display(),
                unbounded_table(plan)
            ),
            None,
        )),
    }
}
