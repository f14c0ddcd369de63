//! Bounded queries with window TVFs: each largest part of the plan that the streaming
//! runtime can run (a window aggregate with its projections, a window Top-N, ...) is
//! replaced by a scan of that part running as a streaming subplan; DataFusion runs the rest.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::Column;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use magnetar_sql::SqlError;
use magnetar_sql::plan::{StreamPlan, lower, uses_event_time_node};

use super::plan_error;
use super::query::graph_context;
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::runtime::SubplanTable;
use crate::sources::BarrierPolicy;

/// A bounded plan whose windowed parts are streaming subplans.
pub(crate) struct EmbeddedPlan {
    /// What DataFusion runs.
    pub plan: LogicalPlan,
    /// The streaming subplans, in the order of their scans' names (`window_subplan_<i>`).
    pub subplans: Vec<StreamPlan>,
}

/// Rewrites a bounded `plan`; without window TVFs it is returned as it is.
pub(crate) fn embed_window_subplans(shared: &Shared, plan: LogicalPlan) -> Result<EmbeddedPlan> {
    if !uses_event_time_node(&plan) {
        return Ok(EmbeddedPlan {
            plan,
            subplans: Vec::new(),
        });
    }
    let state = shared.ctx.state();
    let ctx = graph_context(shared, BarrierPolicy::AfterEachBatch);
    let mut subplans = Vec::new();
    let mut refused: Option<SqlError> = None;
    let mut failed: Option<EngineError> = None;
    let rewritten = plan
        .transform_down(|node| {
            if !uses_event_time_node(&node) {
                return Ok(Transformed::new(node, false, TreeNodeRecursion::Jump));
            }
            match lower(&node, &state) {
                Ok(stream_plan) => {
                    let name = format!("window_subplan_{}", subplans.len());
                    match scan_of(&node, &name, &stream_plan, &ctx) {
                        Ok(scan) => {
                            subplans.push(stream_plan);
                            Ok(Transformed::new(scan, true, TreeNodeRecursion::Jump))
                        }
                        Err(e) => {
                            failed = Some(e);
                            Ok(Transformed::new(node, false, TreeNodeRecursion::Stop))
                        }
                    }
                }
                Err(e) => {
                    // The deepest refusal is the one that names what cannot stream.
                    refused = Some(e);
                    Ok(Transformed::no(node))
                }
            }
        })
        .map_err(plan_error)?
        .data;
    if let Some(e) = failed {
        return Err(e);
    }
    if uses_event_time_node(&rewritten) {
        return Err(match refused {
            Some(e) => e.into(),
            None => EngineError::Internal("a window TVF could not be planned".into()),
        });
    }
    Ok(EmbeddedPlan {
        plan: rewritten,
        subplans,
    })
}

/// A scan of `stream_plan` under `name`, projected back to `node`'s qualified columns.
fn scan_of(
    node: &LogicalPlan,
    name: &str,
    stream_plan: &StreamPlan,
    ctx: &crate::runtime::GraphContext,
) -> Result<LogicalPlan> {
    let output = node.schema();
    // Positional names: the node's columns may repeat a name under different qualifiers.
    let fields: Vec<Field> = output
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| f.as_ref().clone().with_name(format!("c{i}")))
        .collect();
    let streamed = stream_plan.schema();
    if streamed.fields().len() != fields.len()
        || streamed
            .fields()
            .iter()
            .zip(&fields)
            .any(|(s, f)| s.data_type() != f.data_type())
    {
        return Err(EngineError::Internal(format!(
            "streaming subplan produces {streamed:?}, DataFusion expects {output:?}"
        )));
    }
    let table = SubplanTable::new(
        Arc::new(Schema::new(fields)),
        stream_plan.clone(),
        ctx.clone(),
    );
    let scan =
        LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)?.build()?;
    let columns: Vec<Expr> = output
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            Expr::Column(Column::new(Some(name), format!("c{i}")))
                .alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    Ok(LogicalPlanBuilder::from(scan).project(columns)?.build()?)
}
