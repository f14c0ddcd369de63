//! EXPLAIN: the plan a statement would run.

use datafusion::physical_plan::displayable;
use magnetar_sql::Statement;
use magnetar_sql::plan::{QueryBoundedness, boundedness, lower};

use super::insert::insert_plan;
use super::plan_error;
use super::query::logical_plan;
use super::window_subplans::embed_window_subplans;
use crate::engine::{Shared, StatementOutput};
use crate::error::{EngineError, Result};

pub(crate) async fn explain(shared: &Shared, statement: Statement) -> Result<StatementOutput> {
    let (header, plan) = match statement {
        Statement::Query(q) => (None, logical_plan(shared, *q).await?),
        Statement::Insert(i) => {
            let (sink, plan) = insert_plan(shared, *i).await?;
            let Some(o) = sink.pulsar() else {
                return Ok(StatementOutput::Explain(
                    explain_plan(
                        shared,
                        Some(format!(
                            "{}Sink: table={}",
                            capitalized(sink.connector.name()),
                            sink.name
                        )),
                        plan,
                    )
                    .await?,
                ));
            };
            let key = if o.key_fields.is_empty() {
                "none".to_string()
            } else {
                o.key_fields.join(";")
            };
            (
                Some(format!(
                    "PulsarSink: table={} topic={} format={} key={} delivery={:?}",
                    sink.name,
                    o.topics
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(";"),
                    o.format.kind.name(),
                    key,
                    o.delivery_guarantee
                )),
                plan,
            )
        }
        _ => return Err(EngineError::Internal("EXPLAIN of a non-query".into())),
    };
    Ok(StatementOutput::Explain(
        explain_plan(shared, header, plan).await?,
    ))
}

fn capitalized(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The plan as text, under `header` (the sink) if given.
async fn explain_plan(
    shared: &Shared,
    header: Option<String>,
    plan: datafusion::logical_expr::LogicalPlan,
) -> Result<String> {
    let mut out = String::new();
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
    match boundedness(&plan) {
        QueryBoundedness::Unbounded { .. } => {
            let stream_plan = lower(&plan, &shared.ctx.state())?;
            out.insert_str(0, "Streaming plan (unbounded input, runs until stopped):\n");
            indent(&mut out, &stream_plan.display(), depth);
        }
        QueryBoundedness::Bounded => {
            let embedded = embed_window_subplans(shared, plan)?;
            let physical = shared
                .ctx
                .state()
                .create_physical_plan(&embedded.plan)
                .await
                .map_err(plan_error)?;
            out.insert_str(
                0,
                "Bounded plan (reads to the stop position, executed by DataFusion):\n",
            );
            indent(
                &mut out,
                &displayable(physical.as_ref()).indent(true).to_string(),
                depth,
            );
            for (i, subplan) in embedded.subplans.iter().enumerate() {
                out.push_str(&format!(
                    "window_subplan_{i} (streaming, event time over bounded input):\n"
                ));
                indent(&mut out, &subplan.display(), 1);
            }
        }
    }
    Ok(out)
}
