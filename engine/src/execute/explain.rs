//! EXPLAIN: the plan a statement would run. Continuous queries, jobs and statement sets show
//! their dataflow graph: every node with its parallelism, every exchange with its kind.

use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::displayable;
use magnetar_connectors::file::{MIN_SPLIT_BYTES, plan_splits};
use magnetar_sql::Statement;
use magnetar_sql::options::Connector;
use magnetar_sql::plan::{
    JobGraph, PlanTarget, QueryBoundedness, SourceNode, StreamPlan, boundedness, lower,
    sink_description,
};

use super::insert::insert_plan;
use super::plan_error;
use super::query::logical_plan;
use super::window_subplans::embed_window_subplans;
use crate::engine::{Shared, StatementOutput};
use crate::error::{EngineError, Result};

pub(crate) async fn explain(shared: &Shared, statement: Statement) -> Result<StatementOutput> {
    let state = shared.ctx.state();
    let text = match statement {
        Statement::Query(q) => {
            let plan = logical_plan(shared, *q).await?;
            match boundedness(&plan) {
                QueryBoundedness::Unbounded { .. } => {
                    streaming(shared, &[(lower(&plan, &state)?, PlanTarget::Output)])
                }
                QueryBoundedness::Bounded if shared.settings().streaming_mode() => {
                    let graph = JobGraph::build(&[(lower(&plan, &state)?, PlanTarget::Output)]);
                    format!(
                        "Streaming plan (bounded input, execution.runtime-mode = streaming):\n{}",
                        graph_text(shared, &graph)
                    )
                }
                QueryBoundedness::Bounded => bounded(shared, None, plan).await?,
            }
        }
        Statement::Insert(i) => {
            let (sink, plan) = insert_plan(shared, *i).await?;
            match boundedness(&plan) {
                QueryBoundedness::Unbounded { .. } => {
                    streaming(shared, &[(lower(&plan, &state)?, PlanTarget::Sink(sink))])
                }
                QueryBoundedness::Bounded => {
                    bounded(shared, Some(sink_description(&sink)), plan).await?
                }
            }
        }
        Statement::StatementSet(inserts) => {
            let mut plans = Vec::with_capacity(inserts.len());
            for insert in inserts {
                let (sink, plan) = insert_plan(shared, insert).await?;
                plans.push((lower(&plan, &state)?, PlanTarget::Sink(sink)));
            }
            streaming(shared, &plans)
        }
        _ => return Err(EngineError::Internal("EXPLAIN of a non-query".into())),
    };
    Ok(StatementOutput::Explain(text))
}

/// Instances of a source as far as they are known without asking a broker.
fn known_splits(source: &SourceNode, parallelism: usize) -> Option<usize> {
    match &source.table.connector {
        Connector::Memory(m) => Some(m.partitions),
        Connector::Custom(_) => Some(1),
        Connector::Filesystem(f) => plan_splits(&f.path, parallelism, MIN_SPLIT_BYTES)
            .ok()
            .map(|s| s.len()),
        Connector::Pulsar(_) => None,
    }
}

/// A graph's EXPLAIN text, at the session's parallelism.
fn graph_text(shared: &Shared, graph: &JobGraph) -> String {
    let settings = shared.settings();
    let parallelism = settings.parallelism();
    graph.explain(parallelism, usize::from(settings.max_parallelism()), |s| {
        known_splits(s, parallelism)
    })
}

fn streaming(shared: &Shared, plans: &[(StreamPlan, PlanTarget)]) -> String {
    let graph = JobGraph::build(plans);
    format!(
        "Streaming plan (unbounded input, runs until stopped):\n{}",
        graph_text(shared, &graph)
    )
}

/// The physical plan DataFusion runs, under `header` (the sink) if given, and the graphs of
/// its streaming subplans.
async fn bounded(shared: &Shared, header: Option<String>, plan: LogicalPlan) -> Result<String> {
    let mut out =
        String::from("Bounded plan (reads to the stop position, executed by DataFusion):\n");
    let depth = match &header {
        Some(h) => {
            out.push_str(h);
            out.push('\n');
            1
        }
        None => 0,
    };
    let indent = |out: &mut String, text: &str, depth: usize| {
        for line in text.lines() {
            out.push_str(&"  ".repeat(depth));
            out.push_str(line);
            out.push('\n');
        }
    };
    let embedded = embed_window_subplans(shared, plan)?;
    let physical = shared
        .ctx
        .state()
        .create_physical_plan(&embedded.plan)
        .await
        .map_err(plan_error)?;
    indent(
        &mut out,
        &displayable(physical.as_ref()).indent(true).to_string(),
        depth,
    );
    for (i, subplan) in embedded.subplans.iter().enumerate() {
        out.push_str(&format!(
            "window_subplan_{i} (streaming, event time over bounded input):\n"
        ));
        indent(
            &mut out,
            &graph_text(shared, &JobGraph::of_query(subplan)),
            1,
        );
    }
    Ok(out)
}
