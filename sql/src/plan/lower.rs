//! From DataFusion's optimised logical plan to a [`StreamPlan`].

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, ScalarValue};
use datafusion::datasource::source_as_provider;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::expr::{Alias, WindowFunction, WindowFunctionParams};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Aggregate, BinaryExpr, Expr, FetchType, Filter, LogicalPlan, Operator, SkipType,
};
use datafusion::physical_expr::aggregate::LoweredAggregateBuilder;

use super::{
    AggregateItem, AssignMode, GroupItem, LimitNode, SourceNode, StatelessNode, StreamNode,
    StreamOp, StreamPlan, UnionNode, WindowAggregateNode, WindowAssignNode, WindowTopNNode,
};
use crate::catalog::MagnetarTable;
use crate::error::{Result, SqlError};
use crate::match_recognize::MatchRecognizeRelation;
use crate::window::{WINDOW_END, WINDOW_START, WINDOW_TIME, WindowKind, WindowTvfNode};

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

/// Finds whether `plan` reads an unbounded table.
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

fn match_recognize(plan: &LogicalPlan) -> Option<&MatchRecognizeRelation> {
    match plan {
        LogicalPlan::Extension(ext) => ext.node.as_any().downcast_ref::<MatchRecognizeRelation>(),
        _ => None,
    }
}

fn window_tvf(plan: &LogicalPlan) -> Option<&WindowTvfNode> {
    match plan {
        LogicalPlan::Extension(ext) => ext.node.as_any().downcast_ref::<WindowTvfNode>(),
        _ => None,
    }
}

/// Whether `plan` must run on the streaming runtime: it reads an unbounded table, or it
/// uses event time (window TVFs run with watermarks even over bounded input, so that late
/// rows and window results are what a stream would give).
pub fn needs_streaming(plan: &LogicalPlan) -> bool {
    boundedness(plan) != QueryBoundedness::Bounded || uses_event_time_node(plan)
}

/// Whether `plan` contains an event-time node: a window table function, a MATCH_RECOGNIZE,
/// an interval or a window join (all run on the streaming runtime, even over bounded input).
pub fn uses_event_time_node(plan: &LogicalPlan) -> bool {
    let mut windowed = false;
    let _ = plan.apply(|node| {
        if window_tvf(node).is_some()
            || match_recognize(node).is_some()
            || super::interval_join::is_interval_join(node)
            || super::window_join::is_window_join(node)
        {
            windowed = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    windowed
}

/// Lowers an optimised logical plan to a streaming plan, or explains what is not supported.
pub fn lower(plan: &LogicalPlan, state: &SessionState) -> Result<StreamPlan> {
    let mut root = lower_node(plan, state, AssignMode::Expand)?;
    // Sources under event-time operators generate watermarks.
    if root.uses_event_time() {
        root.mark_watermarks();
    }
    Ok(StreamPlan { root })
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
    match boundedness(plan) {
        QueryBoundedness::Unbounded { table } => SqlError::unsupported(
            format!(
                "{what} over the unbounded table '{table}' would never finish; aggregate per window (GROUP BY window_start, window_end over TUMBLE/HOP/CUMULATE/SESSION), or make the read bounded with 'source.stop.at-message-id' = 'latest'"
            ),
            None,
        ),
        QueryBoundedness::Bounded => SqlError::unsupported(
            format!(
                "{what} does not run on the streaming runtime, which bounded reads use for their event-time parts (and all of a query under execution.runtime-mode = streaming); aggregate per window instead"
            ),
            None,
        ),
    }
}

fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(Alias { expr, .. }) => unalias(expr),
        other => other,
    }
}

/// What a column means: one of the window columns of a TVF below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WindowRole {
    Start,
    End,
    Time,
}

fn references(e: &Expr, roles: &HashMap<String, WindowRole>) -> bool {
    e.column_refs().iter().any(|c| roles.contains_key(&c.name))
}

/// The TVF below `plan` through row-wise nodes, and which of `plan`'s output columns are
/// its window columns (renamed or not). `Ok(None)` when there is no TVF directly below.
///
/// In slice mode the window columns hold slices, not windows, so expressions on them
/// below the GROUP BY are refused (except for TUMBLE, whose slices are its windows).
fn window_roles(
    plan: &LogicalPlan,
) -> Result<Option<(&WindowTvfNode, HashMap<String, WindowRole>)>> {
    let refuse =
        |tvf: &WindowTvfNode| -> bool { !matches!(tvf.spec.kind, WindowKind::Tumble { .. }) };
    match plan {
        LogicalPlan::Extension(_) => Ok(window_tvf(plan).map(|tvf| {
            let roles = [
                (WINDOW_START, WindowRole::Start),
                (WINDOW_END, WindowRole::End),
                (WINDOW_TIME, WindowRole::Time),
            ]
            .into_iter()
            .map(|(n, r)| (n.to_string(), r))
            .collect();
            (tvf, roles)
        })),
        LogicalPlan::SubqueryAlias(a) => window_roles(&a.input),
        LogicalPlan::Filter(f) => {
            let Some((tvf, roles)) = window_roles(&f.input)? else {
                return Ok(None);
            };
            if refuse(tvf) && references(&f.predicate, &roles) {
                return Err(SqlError::unsupported(
                    format!(
                        "a WHERE condition on window_start/window_end/window_time of {} must come after the GROUP BY (use HAVING, or an outer query)",
                        tvf.spec.function_name()
                    ),
                    None,
                ));
            }
            Ok(Some((tvf, roles)))
        }
        LogicalPlan::Projection(p) => {
            let Some((tvf, roles)) = window_roles(&p.input)? else {
                return Ok(None);
            };
            let mut out = HashMap::new();
            for (i, e) in p.expr.iter().enumerate() {
                let name = p.schema.field(i).name().clone();
                match unalias(e) {
                    Expr::Column(c) if roles.contains_key(&c.name) => {
                        out.insert(name, roles[&c.name]);
                    }
                    other if refuse(tvf) && references(other, &roles) => {
                        return Err(SqlError::unsupported(
                            format!(
                                "expressions on window_start/window_end/window_time of {} must come after the GROUP BY",
                                tvf.spec.function_name()
                            ),
                            None,
                        ));
                    }
                    _ => {}
                }
            }
            Ok(Some((tvf, out)))
        }
        _ => Ok(None),
    }
}

fn lower_node(plan: &LogicalPlan, state: &SessionState, mode: AssignMode) -> Result<StreamNode> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let provider = source_as_provider(&scan.source)?;
            let Some(table) = provider.downcast_ref::<MagnetarTable>() else {
                return Err(SqlError::unsupported(
                    format!(
                        "table '{}' is not a Magnetar table and cannot be part of a continuous query",
                        scan.table_name
                    ),
                    None,
                ));
            };
            if !scan.filters.is_empty() {
                return Err(SqlError::unsupported(
                    "filters pushed into a table scan are not expected",
                    None,
                ));
            }
            let schema = Arc::new(scan.projected_schema.as_arrow().clone());
            let source = StreamNode::leaf(StreamOp::Source(SourceNode {
                table: table.def().clone(),
                projection: scan.projection.clone(),
                schema: schema.clone(),
                watermarks: false,
            }));
            Ok(match scan.fetch {
                Some(fetch) => StreamNode::over(
                    StreamOp::Limit(LimitNode {
                        skip: 0,
                        fetch: Some(fetch),
                        schema,
                    }),
                    source,
                ),
                None => source,
            })
        }
        LogicalPlan::Extension(_) if match_recognize(plan).is_some() => {
            let node = match_recognize(plan).ok_or_else(|| {
                SqlError::unsupported("MATCH_RECOGNIZE could not be read back", None)
            })?;
            let input = lower_node(&node.input, state, AssignMode::Expand)?;
            let stream = crate::match_recognize::lower(node, input.schema(), state)?;
            Ok(StreamNode::over(StreamOp::MatchRecognize(stream), input))
        }
        LogicalPlan::Extension(_) => {
            let Some(tvf) = window_tvf(plan) else {
                return Err(SqlError::unsupported(
                    format!("{} is not supported in a continuous query", plan.display()),
                    None,
                ));
            };
            if mode == AssignMode::Expand && matches!(tvf.spec.kind, WindowKind::Session { .. }) {
                return Err(SqlError::unsupported(
                    "SESSION windows need an aggregation: GROUP BY window_start, window_end and the PARTITION BY columns",
                    None,
                ));
            }
            let input = lower_node(&tvf.input, state, AssignMode::Expand)?;
            let time_index = input.schema().index_of(&tvf.time_column).map_err(|_| {
                SqlError::unsupported(
                    format!("the time column '{}' was not read", tvf.time_column),
                    None,
                )
            })?;
            Ok(StreamNode::over(
                StreamOp::WindowAssign(WindowAssignNode {
                    spec: tvf.spec.clone(),
                    time_index,
                    time_column: tvf.time_column.clone(),
                    mode,
                    schema: arrow_schema(plan),
                }),
                input,
            ))
        }
        LogicalPlan::Filter(filter) => {
            if let Some(top_n) = lower_top_n(filter, state)? {
                return Ok(top_n);
            }
            let input = lower_node(&filter.input, state, mode)?;
            let predicate =
                state.create_physical_expr(filter.predicate.clone(), filter.input.schema())?;
            Ok(StreamNode::over(
                StreamOp::Stateless(StatelessNode {
                    schema: input.schema(),
                    predicate: Some((predicate, filter.predicate.to_string())),
                    projection: None,
                }),
                input,
            ))
        }
        LogicalPlan::Projection(projection) => {
            let input = lower_node(&projection.input, state, mode)?;
            project(input, projection, plan, state)
        }
        LogicalPlan::SubqueryAlias(alias) => lower_node(&alias.input, state, mode),
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
            let input = lower_node(&limit.input, state, AssignMode::Expand)?;
            Ok(StreamNode::over(
                StreamOp::Limit(LimitNode {
                    skip,
                    fetch,
                    schema: input.schema(),
                }),
                input,
            ))
        }
        LogicalPlan::Aggregate(agg) => match window_roles(&agg.input)? {
            Some((tvf, roles)) => lower_window_aggregate(plan, agg, tvf, &roles, state),
            None => Err(needs_bounds("aggregation (GROUP BY, count, ...)", plan)),
        },
        LogicalPlan::Sort(_) => Err(needs_bounds("ORDER BY", plan)),
        LogicalPlan::Join(join) => {
            let left = lower_node(&join.left, state, AssignMode::Expand)?;
            let right = lower_node(&join.right, state, AssignMode::Expand)?;
            if let Some(node) =
                super::window_join::lower_window_join(join, [left.clone(), right.clone()], state)?
            {
                return Ok(node);
            }
            super::interval_join::lower_interval_join(join, [left, right], state)
        }
        LogicalPlan::Window(_) => Err(needs_bounds(
            "an OVER window function (other than window Top-N: ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY ...) <= N)",
            plan,
        )),
        LogicalPlan::Distinct(_) => Err(needs_bounds("DISTINCT", plan)),
        LogicalPlan::Union(union) => lower_union(plan, union, state),
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

fn project(
    input: StreamNode,
    projection: &datafusion::logical_expr::Projection,
    plan: &LogicalPlan,
    state: &SessionState,
) -> Result<StreamNode> {
    let mut columns = Vec::with_capacity(projection.expr.len());
    for expr in &projection.expr {
        let physical = state.create_physical_expr(expr.clone(), projection.input.schema())?;
        columns.push((physical, expr.to_string()));
    }
    let schema = arrow_schema(plan);
    // A projection right above a filter runs in the same stage.
    Ok(match input {
        StreamNode {
            op: StreamOp::Stateless(mut stage),
            inputs,
        } if stage.projection.is_none() => {
            stage.projection = Some(columns);
            stage.schema = schema;
            StreamNode {
                op: StreamOp::Stateless(stage),
                inputs,
            }
        }
        other => StreamNode::over(
            StreamOp::Stateless(StatelessNode {
                predicate: None,
                projection: Some(columns),
                schema,
            }),
            other,
        ),
    })
}

/// `UNION ALL`: each input lowered and projected by position onto the union's schema (its
/// names and types), so the union's consumer sees one schema whichever input a row came from.
fn lower_union(
    plan: &LogicalPlan,
    union: &datafusion::logical_expr::Union,
    state: &SessionState,
) -> Result<StreamNode> {
    let schema = arrow_schema(plan);
    let mut inputs = Vec::with_capacity(union.inputs.len());
    for input in &union.inputs {
        let lowered = lower_node(input, state, AssignMode::Expand)?;
        let input_schema = lowered.schema();
        let same = input_schema.fields().len() == schema.fields().len()
            && input_schema
                .fields()
                .iter()
                .zip(schema.fields())
                .all(|(a, b)| a == b);
        if same {
            inputs.push(lowered);
            continue;
        }
        let mut columns = Vec::with_capacity(schema.fields().len());
        for (i, field) in schema.fields().iter().enumerate() {
            let from = input_schema.field(i);
            let column: super::PhysicalExprRef = Arc::new(
                datafusion::physical_expr::expressions::Column::new(from.name(), i),
            );
            let expr: super::PhysicalExprRef = if from.data_type() == field.data_type() {
                column
            } else {
                Arc::new(datafusion::physical_expr::expressions::CastExpr::new(
                    column,
                    field.data_type().clone(),
                    None,
                ))
            };
            columns.push((expr, format!("{} AS {}", from.name(), field.name())));
        }
        inputs.push(StreamNode::over(
            StreamOp::Stateless(StatelessNode {
                predicate: None,
                projection: Some(columns),
                schema: schema.clone(),
            }),
            lowered,
        ));
    }
    Ok(StreamNode {
        op: StreamOp::Union(UnionNode { schema }),
        inputs,
    })
}

fn lower_window_aggregate(
    plan: &LogicalPlan,
    agg: &Aggregate,
    tvf: &WindowTvfNode,
    roles: &HashMap<String, WindowRole>,
    state: &SessionState,
) -> Result<StreamNode> {
    let f = tvf.spec.function_name();
    let input_schema = agg.input.schema();
    let mut group = Vec::with_capacity(agg.group_expr.len());
    let mut key_columns = Vec::new();
    let mut has = (false, false);
    for e in &agg.group_expr {
        match unalias(e) {
            Expr::GroupingSet(_) => {
                return Err(SqlError::unsupported(
                    "GROUPING SETS, ROLLUP and CUBE are not supported over windows",
                    None,
                ));
            }
            Expr::Column(c) if roles.contains_key(&c.name) => match roles[&c.name] {
                WindowRole::Start => {
                    has.0 = true;
                    group.push(GroupItem::WindowStart);
                }
                WindowRole::End => {
                    has.1 = true;
                    group.push(GroupItem::WindowEnd);
                }
                WindowRole::Time => group.push(GroupItem::WindowTime),
            },
            other => {
                if let Expr::Column(c) = other {
                    key_columns.push(c.name.clone());
                }
                group.push(GroupItem::Key(
                    state.create_physical_expr(e.clone(), input_schema)?,
                    e.to_string(),
                ));
            }
        }
    }
    if has != (true, true) {
        return Err(SqlError::unsupported(
            format!("an aggregation over {f} must GROUP BY window_start and window_end"),
            None,
        ));
    }
    if let WindowKind::Session { partition_keys, .. } = &tvf.spec.kind {
        let mut keys = key_columns.clone();
        keys.sort();
        let mut wanted = partition_keys.clone();
        wanted.sort();
        if keys != wanted || key_columns.len() + 2 < group.len() {
            return Err(SqlError::unsupported(
                format!(
                    "SESSION windows partitioned by [{}] must be grouped by window_start, window_end and exactly those columns",
                    partition_keys.join(", ")
                ),
                None,
            ));
        }
    }
    let role_index = |role: WindowRole| {
        input_schema
            .fields()
            .iter()
            .position(|field| roles.get(field.name()) == Some(&role))
            .ok_or_else(|| {
                SqlError::unsupported(format!("{f}: window columns were not kept"), None)
            })
    };
    let slice_start = role_index(WindowRole::Start)?;
    let slice_end = role_index(WindowRole::End)?;
    let physical_input = Arc::new(input_schema.as_arrow().clone());
    let mut aggregates = Vec::with_capacity(agg.aggr_expr.len());
    let planning = PhysicalPlanningContext::default();
    for e in &agg.aggr_expr {
        let name = match e {
            Expr::Alias(a) => a.name.clone(),
            other => other.schema_name().to_string(),
        };
        let lowered = LoweredAggregateBuilder::new(
            e,
            input_schema,
            &physical_input,
            state.execution_props(),
            &planning,
        )
        .with_human_display(e.human_display().to_string())
        .with_name(name)
        .build()?;
        aggregates.push(AggregateItem {
            function: lowered.aggregate,
            filter: lowered.filter,
        });
    }
    let display = format!(
        "group=[{}] aggregates=[{}]",
        agg.group_expr
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        agg.aggr_expr
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let input = lower_node(&agg.input, state, AssignMode::Slices)?;
    Ok(StreamNode::over(
        StreamOp::WindowAggregate(WindowAggregateNode {
            spec: tvf.spec.clone(),
            slice_start,
            slice_end,
            group,
            aggregates,
            input_schema: input.schema(),
            schema: arrow_schema(plan),
            display,
        }),
        input,
    ))
}

/// `column <= N`, `column < N`, `column = N`, `N >= column`, `N > column`: the column and
/// the number of rows kept.
fn row_limit(e: &Expr) -> Option<(Column, usize)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else {
        return None;
    };
    let number = |e: &Expr| match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::Int64(Some(n)) => usize::try_from(*n).ok(),
            ScalarValue::Int32(Some(n)) => usize::try_from(*n).ok(),
            ScalarValue::UInt64(Some(n)) => usize::try_from(*n).ok(),
            _ => None,
        },
        _ => None,
    };
    let (column, op, n) = match (unalias(left), unalias(right)) {
        (Expr::Column(c), r) => (c.clone(), *op, number(r)?),
        (l, Expr::Column(c)) => (c.clone(), op.swap()?, number(l)?),
        _ => return None,
    };
    let limit = match op {
        Operator::LtEq => n,
        Operator::Lt => n.checked_sub(1)?,
        Operator::Eq if n == 1 => 1,
        _ => return None,
    };
    Some((column, limit))
}

/// `WHERE rownum <= N` over `ROW_NUMBER() OVER (PARTITION BY window_start, window_end ...)`.
fn lower_top_n(filter: &Filter, state: &SessionState) -> Result<Option<StreamNode>> {
    // The nodes between the filter and the window function: renames only.
    let mut chain = Vec::new();
    let mut node = filter.input.as_ref();
    let window = loop {
        match node {
            LogicalPlan::Projection(p) => {
                chain.push(node);
                node = &p.input;
            }
            LogicalPlan::SubqueryAlias(a) => node = &a.input,
            LogicalPlan::Window(w) => break w,
            _ => return Ok(None),
        }
    };
    let [window_expr] = window.window_expr.as_slice() else {
        return Ok(None);
    };
    let Expr::WindowFunction(function) = unalias(window_expr) else {
        return Ok(None);
    };
    let WindowFunction {
        fun,
        params:
            WindowFunctionParams {
                partition_by,
                order_by,
                ..
            },
    } = function.as_ref();
    if fun.name() != "row_number" {
        return Ok(None);
    }
    // The row number column, as named where the filter sees it.
    let row_number_name = window
        .schema
        .field(window.schema.fields().len() - 1)
        .name()
        .clone();
    let mut visible = row_number_name.clone();
    for p in chain.iter().rev() {
        let LogicalPlan::Projection(p) = p else {
            continue;
        };
        match p
            .expr
            .iter()
            .enumerate()
            .find(|(_, e)| matches!(unalias(e), Expr::Column(c) if c.name == visible))
        {
            Some((i, _)) => visible = p.schema.field(i).name().clone(),
            None => return Ok(None),
        }
    }
    let mut limit = None;
    let mut rest = Vec::new();
    for conjunct in split_conjunction(&filter.predicate) {
        match row_limit(conjunct) {
            Some((c, n)) if c.name == visible && limit.is_none() => limit = Some(n),
            _ => rest.push(conjunct.clone()),
        }
    }
    let Some(limit) = limit else {
        return Ok(None);
    };
    let input_schema = window.input.schema();
    let index_of = |e: &Expr| -> Result<usize> {
        match unalias(e) {
            Expr::Column(c) => input_schema.index_of_column(c).map_err(Into::into),
            other => Err(SqlError::unsupported(
                format!("window Top-N partitions and orders by columns, not {other}"),
                None,
            )),
        }
    };
    let partition = partition_by
        .iter()
        .map(index_of)
        .collect::<Result<Vec<_>>>()?;
    let names: Vec<&str> = partition
        .iter()
        .map(|&i| input_schema.field(i).name().as_str())
        .collect();
    if !names.contains(&WINDOW_START) || !names.contains(&WINDOW_END) {
        return Err(SqlError::unsupported(
            "ROW_NUMBER() over a stream must be a window Top-N: PARTITION BY window_start, window_end (and more columns if you like), with WHERE rownum <= N",
            None,
        ));
    }
    let window_end = input_schema
        .fields()
        .iter()
        .position(|f| f.name() == WINDOW_END)
        .ok_or_else(|| SqlError::unsupported("window Top-N needs window_end", None))?;
    let order = order_by
        .iter()
        .map(|s| Ok((index_of(&s.expr)?, !s.asc, s.nulls_first)))
        .collect::<Result<Vec<_>>>()?;
    let input = lower_node(&window.input, state, AssignMode::Expand)?;
    let window_plan = LogicalPlan::Window(window.clone());
    let mut out = StreamNode::over(
        StreamOp::WindowTopN(WindowTopNNode {
            window_end,
            partition,
            order,
            limit,
            input_schema: input.schema(),
            schema: arrow_schema(&window_plan),
        }),
        input,
    );
    for p in chain.iter().rev() {
        if let LogicalPlan::Projection(projection) = p {
            out = project(out, projection, p, state)?;
        }
    }
    if let Some(predicate) = rest.into_iter().reduce(|a, b| a.and(b)) {
        let physical = state.create_physical_expr(predicate.clone(), filter.input.schema())?;
        out = StreamNode::over(
            StreamOp::Stateless(StatelessNode {
                schema: out.schema(),
                predicate: Some((physical, predicate.to_string())),
                projection: None,
            }),
            out,
        );
    }
    Ok(Some(out))
}
