//! INSERT INTO: plans the query, maps its columns onto the sink's writable columns, and
//! starts a job: on the streaming runtime for unbounded input, in DataFusion for bounded.

use std::sync::Arc;

use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder, cast, lit};
use datafusion::physical_plan::{SendableRecordBatchStream, execute_stream};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast;
use futures::StreamExt;
use magnetar_sql::SqlError;
use magnetar_sql::catalog::TableDef;
use magnetar_sql::plan::{JobGraph, PlanTarget, QueryBoundedness, boundedness, lower};
use tokio::sync::watch;

use super::plan_error;
use super::query::{graph_context, state_with_commit};
use super::streaming_job::{JobCheckpointing, Run, StreamingJob};
use super::window_subplans::embed_window_subplans;
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::jobs::{Job, JobInfo, JobState};
use crate::runtime::unwrap_external;
use crate::sinks::SinkWriter;
use crate::sources::{BarrierPolicy, QueryCommit};

fn table_name(insert: &ast::Insert) -> Result<String> {
    match &insert.table {
        ast::TableObject::TableName(name) => Ok(name
            .0
            .iter()
            .filter_map(|p| p.as_ident())
            .map(|i| {
                if i.quote_style.is_some() {
                    i.value.clone()
                } else {
                    i.value.to_ascii_lowercase()
                }
            })
            .collect::<Vec<_>>()
            .join(".")),
        other => Err(EngineError::Sql(SqlError::unsupported(
            format!("INSERT INTO {other} is not supported; insert into a table"),
            None,
        ))),
    }
}

/// Wraps `plan` in a projection onto the sink's writable columns (by position, or by the
/// statement's column list), casting to the declared types.
fn project_to_sink(
    plan: LogicalPlan,
    sink: &TableDef,
    columns: &[ast::ObjectName],
) -> Result<LogicalPlan> {
    let writable = sink.writable_columns();
    let writable_names: Vec<&str> = writable.iter().map(|c| c.field.name().as_str()).collect();
    let targets: Vec<usize> = if columns.is_empty() {
        (0..writable.len()).collect()
    } else {
        let mut targets = Vec::new();
        for column in columns {
            let Some(ident) = column.0.last().and_then(|p| p.as_ident()) else {
                continue;
            };
            let name = if ident.quote_style.is_some() {
                ident.value.clone()
            } else {
                ident.value.to_ascii_lowercase()
            };
            let position = writable_names
                .iter()
                .position(|w| *w == name)
                .ok_or_else(|| {
                    EngineError::Sql(SqlError::unsupported(
                        format!(
                            "table '{}' has no writable column '{name}'{}",
                            sink.name,
                            magnetar_sql::error::nearest(&name, writable_names.iter().copied())
                                .map(|n| format!("; did you mean '{n}'?"))
                                .unwrap_or_default()
                        ),
                        None,
                    ))
                })?;
            targets.push(position);
        }
        targets
    };
    let input = plan.schema().clone();
    if input.fields().len() != targets.len() {
        return Err(EngineError::Sql(SqlError::unsupported(
            format!(
                "INSERT INTO {} expects {} column(s) ({}), the query produces {} ({})",
                sink.name,
                targets.len(),
                targets
                    .iter()
                    .map(|&t| writable_names[t])
                    .collect::<Vec<_>>()
                    .join(", "),
                input.fields().len(),
                input
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None,
        )));
    }
    let mut exprs = Vec::with_capacity(writable.len());
    for (w, column) in writable.iter().enumerate() {
        let target_type = column.field.data_type();
        let expr = match targets.iter().position(|&t| t == w) {
            Some(i) => {
                let (qualifier, field) = input.qualified_field(i);
                let e = Expr::Column(Column::from((qualifier, field)));
                if e.get_type(&input)? == *target_type {
                    e
                } else {
                    cast(e, target_type.clone())
                }
            }
            None => {
                if !column.field.is_nullable() {
                    return Err(EngineError::Sql(SqlError::unsupported(
                        format!(
                            "column '{}' of table '{}' is NOT NULL and the INSERT gives no value for it",
                            column.field.name(),
                            sink.name
                        ),
                        None,
                    )));
                }
                cast(lit(ScalarValue::Null), target_type.clone())
            }
        };
        exprs.push(expr.alias(column.field.name()));
    }
    Ok(LogicalPlanBuilder::from(plan).project(exprs)?.build()?)
}

/// Plans `INSERT INTO` and starts its job.
pub(crate) async fn start_insert(
    shared: &Shared,
    statement: ast::Statement,
    sql: &str,
) -> Result<JobInfo> {
    let (job, started) = prepare_insert(shared, statement, sql).await?;
    launch(shared, job, started)
}

/// Plans `EXECUTE STATEMENT SET BEGIN ... END` and starts one job for all its INSERTs: a
/// table several of them read is read once. It runs on the streaming runtime whether its
/// tables are bounded or not (so each is read once); it ends when every input has.
pub(crate) async fn start_statement_set(
    shared: &Shared,
    inserts: Vec<ast::Statement>,
    sql: &str,
) -> Result<JobInfo> {
    let mut planned = Vec::with_capacity(inserts.len());
    for insert in inserts {
        planned.push(insert_plan(shared, insert).await?);
    }
    let name = take_job_name(shared)?;
    let id = new_job_id();
    let bounded = planned
        .iter()
        .all(|(_, plan)| boundedness(plan) == QueryBoundedness::Bounded);
    let sinks = planned
        .iter()
        .map(|(sink, _)| sink.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let job = Job::new(
        id.clone(),
        name.clone(),
        sql.trim().to_string(),
        sinks,
        bounded,
    );
    let state = shared.ctx.state();
    let mut plans = Vec::with_capacity(planned.len());
    for (sink, plan) in planned {
        plans.push((lower(&plan, &state)?, PlanTarget::Sink(sink)));
    }
    let streaming = streaming_job(shared, job.clone(), &plans, &id, name.as_deref())?;
    let run = streaming.start_first_run().await?;
    launch(
        shared,
        job,
        Started::Streaming(Box::new(streaming), Box::new(run)),
    )
}

/// Registers a prepared job and starts running it.
fn launch(shared: &Shared, job: Arc<Job>, started: Started) -> Result<JobInfo> {
    shared.jobs.add(job.clone());
    match started {
        Started::Streaming(streaming, run) => {
            streaming.expose(&run);
            tokio::spawn(streaming.run(*run));
        }
        Started::Bounded(stream, commit, writer) => {
            *job.scans.lock().unwrap_or_else(|p| p.into_inner()) = Some(commit.clone());
            tokio::spawn(run_bounded_job(job.clone(), stream, commit, writer));
        }
    }
    Ok(job.info())
}

pub(crate) enum Started {
    Streaming(Box<StreamingJob>, Box<Run>),
    Bounded(SendableRecordBatchStream, Arc<QueryCommit>, SinkWriter),
}

/// The plan of an INSERT: the sink table and the projected query plan.
pub(crate) async fn insert_plan(
    shared: &Shared,
    statement: ast::Statement,
) -> Result<(Arc<TableDef>, LogicalPlan)> {
    let ast::Statement::Insert(insert) = statement else {
        return Err(EngineError::Internal("not an INSERT".into()));
    };
    let sink = shared.table(&table_name(&insert)?)?;
    let Some(source) = insert.source.clone() else {
        return Err(EngineError::Sql(SqlError::unsupported(
            "INSERT INTO needs a SELECT or VALUES",
            None,
        )));
    };
    let state = shared.ctx.state();
    let plan = state
        .statement_to_plan(DFStatement::Statement(Box::new(ast::Statement::Query(
            source,
        ))))
        .await
        .map_err(plan_error)?;
    let plan = project_to_sink(plan, &sink, &insert.columns)?;
    let plan = state.optimize(&plan).map_err(plan_error)?;
    Ok((sink, plan))
}

async fn prepare_insert(
    shared: &Shared,
    statement: ast::Statement,
    sql: &str,
) -> Result<(Arc<Job>, Started)> {
    let (sink, plan) = insert_plan(shared, statement).await?;
    let name = take_job_name(shared)?;
    let id = new_job_id();
    let bounded = boundedness(&plan) == QueryBoundedness::Bounded;
    let job = Job::new(
        id.clone(),
        name.clone(),
        sql.trim().to_string(),
        sink.name.clone(),
        bounded,
    );
    let started = match bounded {
        false => {
            let state = shared.ctx.state();
            let plans = [(lower(&plan, &state)?, PlanTarget::Sink(sink))];
            let streaming = streaming_job(shared, job.clone(), &plans, &id, name.as_deref())?;
            let run = streaming.start_first_run().await?;
            Started::Streaming(Box::new(streaming), Box::new(run))
        }
        true => {
            let writer = SinkWriter::open(
                sink,
                &shared.clients,
                shared.default_service_url().as_deref(),
                job.sink.clone(),
                None,
            )
            .await?;
            let plan = embed_window_subplans(shared, plan)?.plan;
            let commit = Arc::new(QueryCommit::default());
            let state = state_with_commit(shared, commit.clone());
            let physical = state
                .create_physical_plan(&plan)
                .await
                .map_err(plan_error)?;
            let stream = execute_stream(physical, state.task_ctx()).map_err(plan_error)?;
            Started::Bounded(stream, commit, writer)
        }
    };
    Ok((job, started))
}

/// A new job's short id.
fn new_job_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// The next job's `pipeline.name` (a one-shot setting), unless a job of that name runs.
fn take_job_name(shared: &Shared) -> Result<Option<String>> {
    let name = shared
        .settings
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .take("pipeline.name");
    // Two runs of one pipeline would share its checkpoints, producers and subscriptions.
    if let Some(name) = &name
        && let Some(running) = shared
            .jobs
            .all()
            .into_iter()
            .find(|j| j.name.as_deref() == Some(name.as_str()) && !j.state().is_terminal())
    {
        return Err(EngineError::Sql(SqlError::unsupported(
            format!(
                "a job named '{name}' is running ({}); STOP JOB '{name}' first, or choose another 'pipeline.name'",
                running.id
            ),
            None,
        )));
    }
    Ok(name)
}

/// The streaming job that runs `plans` (each into its sink) as one graph.
fn streaming_job(
    shared: &Shared,
    job: Arc<Job>,
    plans: &[(magnetar_sql::plan::StreamPlan, PlanTarget)],
    id: &str,
    name: Option<&str>,
) -> Result<StreamingJob> {
    let settings = shared.settings();
    let checkpoint_interval = settings.checkpoint_interval();
    let checkpointing = match checkpoint_interval {
        Some(_) => Some(JobCheckpointing::new(
            &settings,
            shared.config.data_dir.as_deref(),
            id,
            name,
        )?),
        None => None,
    };
    // A checkpoint at every barrier: barriers come at the checkpoint interval.
    let barriers = checkpoint_interval.unwrap_or_else(|| settings.flush_interval());
    Ok(StreamingJob {
        job,
        graph: JobGraph::build(plans),
        ctx: graph_context(shared, BarrierPolicy::Every(barriers)),
        checkpointing,
    })
}

/// Sets a job's final state from how it ended.
pub(crate) fn finish(job: &Job, result: Result<()>) {
    let stopped = job.state() == JobState::Stopping;
    match result {
        Ok(()) if stopped => job.set_state(JobState::Stopped),
        Ok(()) => job.set_state(JobState::Finished),
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "job failed");
            job.set_state(JobState::Failed(e.to_string()));
        }
    }
}

async fn run_bounded_job(
    job: Arc<Job>,
    mut stream: SendableRecordBatchStream,
    commit: Arc<QueryCommit>,
    mut writer: SinkWriter,
) {
    let mut job_stop: watch::Receiver<bool> = job.stop.subscribe();
    let result: Result<bool> = async {
        loop {
            tokio::select! {
                next = stream.next() => match next {
                    Some(batch) => writer.write(&batch.map_err(unwrap_external)?).await?,
                    None => return Ok(true),
                },
                changed = job_stop.changed() => {
                    if changed.is_err() || *job_stop.borrow_and_update() {
                        return Ok(false);
                    }
                }
            }
        }
    }
    .await;
    let result = match result {
        Ok(complete) => {
            // Written and confirmed first, acknowledged after: at-least-once.
            let closed = writer.close().await;
            match (closed, complete) {
                (Ok(()), true) => commit.commit().await,
                (Ok(()), false) => {
                    commit.abandon().await;
                    Ok(())
                }
                (Err(e), _) => {
                    commit.abandon().await;
                    Err(e)
                }
            }
        }
        Err(e) => {
            commit.abandon().await;
            Err(e)
        }
    };
    finish(&job, result);
}
