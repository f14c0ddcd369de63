//! EXPLAIN: the plan a statement would run.

use datafusion::physical_plan::displayable;
use magnetar_sql::Statement;
use magnetar_sql::plan::{QueryBoundedness, boundedness, lower, needs_streaming};

use super::insert::insert_plan;
use super::plan_error;
use super::query::logical_plan;
use crate::engine::{Shared, StatementOutput};
use crate::error::{EngineError, Result};

pub(crate) async fn explain(shared: &Shared, statement: Statement) -> Result<StatementOutput> {
    let (header, plan) = match statement {
        Statement::Query(q) => (None, logical_plan(shared, *q).await?),
        Statement::Insert(i) => {
            let (sink, plan) = insert_plan(shared, *i).await?;
            let Some(o) = sink.pulsar() else {
                return Err(EngineError::Sql(magnetar_sql::SqlError::unsupported(
                    format!("table '{}' cannot be written to", sink.name),
                    None,
                )));
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
    let mut out = String::new();
    let depth = match &header {
        Some(h) => {
            out.push_str(h);
            out.push('\n');
            1
        }
        None => 0,
    };
    match needs_streaming(&plan) {
        true => {
            let stream_plan = lower(&plan, &shared.ctx.state())?;
            let title = match boundedness(&plan) {
                QueryBoundedness::Bounded => {
                    "Streaming plan (event time over bounded input, ends with it):\n"
                }
                QueryBoundedness::Unbounded { .. } => {
                    "Streaming plan (unbounded input, runs until stopped):\n"
                }
            };
            out.insert_str(0, title);
            for line in stream_plan.display().lines() {
                out.push_str(&"  ".repeat(depth));
                out.push_str(line);
                out.push('\n');
            }
        }
        false => {
            let physical = shared
                .ctx
                .state()
                .create_physical_plan(&plan)
                .await
                .map_err(plan_error)?;
            out.insert_str(
                0,
                "Bounded plan (reads to the stop position, executed by DataFusion):\n",
            );
            for line in displayable(physical.as_ref())
                .indent(true)
                .to_string()
                .lines()
            {
                out.push_str(&"  ".repeat(depth));
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(StatementOutput::Explain(out))
}
