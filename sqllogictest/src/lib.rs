//! Runs Magnetar's `.slt` files: each file gets a fresh pulsar-lite broker and engine.
//!
//! Conventions: a statement that starts a bounded job (`INSERT INTO` from bounded input)
//! waits until the job ends, so its output is complete before the next record, and
//! `statement count N` checks the messages it wrote. An unbounded job keeps running until a
//! `STOP JOB`. Query values print as in DataFusion's files: `NULL`, `(empty)`.
//!
//! Streaming without sleeps: before and after every record the engine is settled (every
//! running job has processed the rows available to it, see [`Engine::settle`]), and
//! processing time is a manual clock that only `ADVANCE TIME '<duration>'` moves (then
//! settles, so idle partitions release the watermark deterministically).
//!
//! Checkpoint-restore mode ([`MagnetarDb::with_checkpoint_restore`]) runs the same files
//! with every unbounded job checkpointed (each settle is a barrier, hence a checkpoint); as
//! soon as a job has completed two checkpoints it is aborted as a crash would end it (no
//! final checkpoint, output in flight dropped) and started again from its statement, which
//! restores it — at another parallelism if the mode rescales (state then moves between
//! instances by key group). Every expected output must come out the same as in the
//! uninterrupted run. Records about job counters, which a restart resets, carry
//! `skipif checkpoint-restore`.
//!
//! Every file runs at several parallelisms (the engine's default, which a file's own `SET
//! 'parallelism.default'` overrides); results whose order the query does not define are
//! compared with `rowsort`.

use std::time::Duration;

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::StreamExt;
use std::sync::Arc;

use magnetar::{Engine, JobState, ManualClock, StatementOutput};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};

/// How long a query or a bounded job may take before the record fails.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// An error of one record, with the engine's message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SltError(String);

/// The engine as sqllogictest's database.
pub struct MagnetarDb {
    engine: Engine,
    clock: Option<Arc<ManualClock>>,
    restore: Option<RestoreMode>,
}

/// The label of checkpoint-restore runs, for `skipif`/`onlyif`.
pub const CHECKPOINT_RESTORE_LABEL: &str = "checkpoint-restore";

/// State of checkpoint-restore mode.
#[derive(Default)]
struct RestoreMode {
    /// `pipeline.name` set for the next INSERT.
    pending_name: Option<String>,
    /// Unbounded jobs: name and statement.
    jobs: Vec<(String, String)>,
    /// Jobs named by the harness so far.
    generated: usize,
    /// Restores done (shared with whoever made the database).
    restores: Arc<std::sync::atomic::AtomicUsize>,
    /// Parallelisms to restore jobs at, in turn (empty: the one they ran at).
    rescale: Vec<usize>,
}

fn setting_value(sql: &str, key: &str) -> Option<String> {
    let sql = sql.trim().trim_end_matches(';').trim();
    let rest = sql
        .strip_prefix("SET")
        .or_else(|| sql.strip_prefix("set"))?;
    let (k, v) = rest.split_once('=')?;
    (k.trim().trim_matches('\'') == key).then(|| v.trim().trim_matches('\'').to_string())
}

/// An `INSERT` or a statement set: what starts a job.
fn is_insert(sql: &str) -> bool {
    let words: Vec<String> = sql
        .split_whitespace()
        .take(3)
        .map(str::to_ascii_uppercase)
        .collect();
    words.first().is_some_and(|w| w == "INSERT") || words == ["EXECUTE", "STATEMENT", "SET"]
}

impl MagnetarDb {
    /// Wraps an engine; `clock` is its manual clock, which `ADVANCE TIME` moves.
    pub fn new(engine: Engine, clock: Option<Arc<ManualClock>>) -> Self {
        Self {
            engine,
            clock,
            restore: None,
        }
    }

    /// Checkpoint-restore mode (see the module documentation); the engine needs a data
    /// directory for its checkpoints.
    /// directory for its checkpoints. `restores` counts the jobs restored.
    /// With `rescale`, each restore starts the job at the next of those parallelisms.
    pub async fn with_checkpoint_restore(
        mut self,
        restores: Arc<std::sync::atomic::AtomicUsize>,
        rescale: Vec<usize>,
    ) -> Result<Self, SltError> {
        self.engine
            .execute("SET 'execution.checkpointing.interval' = '1 h'")
            .await
            .map_err(|e| SltError(e.to_string()))?;
        self.restore = Some(RestoreMode {
            restores,
            rescale,
            ..RestoreMode::default()
        });
        Ok(self)
    }

    /// In checkpoint-restore mode: aborts and restarts every job that has completed two
    /// checkpoints since it (re)started.
    async fn crash_and_restore_due_jobs(&mut self) -> Result<(), SltError> {
        let Some(restore) = &self.restore else {
            return Ok(());
        };
        let jobs = restore.jobs.clone();
        let rescale = restore.rescale.clone();
        let done_before = restore.restores.load(std::sync::atomic::Ordering::Relaxed);
        let mut restarted = 0;
        for (name, sql) in jobs {
            let Some(info) = self
                .engine
                .jobs()
                .into_iter()
                .rev()
                .find(|j| j.name.as_deref() == Some(name.as_str()))
            else {
                continue;
            };
            let since_start = info
                .last_checkpoint
                .unwrap_or(0)
                .saturating_sub(info.restored_from.unwrap_or(0));
            if info.state != JobState::Running || since_start < 2 {
                continue;
            }
            let err = |e: &dyn std::fmt::Display| SltError(format!("restoring job '{name}': {e}"));
            self.engine.abort_job(&info.id).await.map_err(|e| err(&e))?;
            self.engine
                .execute(&format!("SET 'pipeline.name' = '{name}'"))
                .await
                .map_err(|e| err(&e))?;
            let parallelism =
                (!rescale.is_empty()).then(|| rescale[(done_before + restarted) % rescale.len()]);
            if let Some(p) = parallelism {
                self.engine
                    .execute(&format!("SET 'parallelism.default' = '{p}'"))
                    .await
                    .map_err(|e| err(&e))?;
            }
            let outputs = self.engine.execute(&sql).await.map_err(|e| err(&e))?;
            if parallelism.is_some() {
                self.engine
                    .execute("RESET 'parallelism.default'")
                    .await
                    .map_err(|e| err(&e))?;
            }
            let resumed = outputs.iter().find_map(|o| match o {
                StatementOutput::JobStarted(job) => job.restored_from,
                _ => None,
            });
            if std::env::var_os("MAGNETAR_SLT_TRACE").is_some() {
                eprintln!(
                    "restored '{name}' from checkpoint {resumed:?} at parallelism {parallelism:?}"
                );
            }
            if resumed.is_none() {
                return Err(SltError(format!(
                    "job '{name}' did not resume from a checkpoint after two were complete"
                )));
            }
            restarted += 1;
        }
        if let Some(restore) = &self.restore {
            restore
                .restores
                .fetch_add(restarted, std::sync::atomic::Ordering::Relaxed);
        }
        if restarted > 0 {
            self.settle().await?;
        }
        Ok(())
    }

    /// In checkpoint-restore mode: names unnamed jobs (a restart finds its checkpoints by
    /// name) and remembers unbounded ones.
    async fn execute_tracked(
        &mut self,
        sql: &str,
    ) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let Some(restore) = &mut self.restore else {
            return self.execute(sql).await;
        };
        if let Some(name) = setting_value(sql, "pipeline.name") {
            restore.pending_name = Some(name);
            return self.execute(sql).await;
        }
        if !is_insert(sql) {
            return self.execute(sql).await;
        }
        let name = restore.pending_name.take().unwrap_or_else(|| {
            restore.generated += 1;
            format!("slt-job-{}", restore.generated)
        });
        // Set (again): restoring another job in between uses the setting too.
        self.engine
            .execute(&format!("SET 'pipeline.name' = '{name}'"))
            .await
            .map_err(|e| SltError(e.to_string()))?;
        let output = self.execute(sql).await?;
        let unbounded = self
            .engine
            .jobs()
            .last()
            .is_some_and(|j| j.name.as_deref() == Some(name.as_str()) && !j.bounded);
        if unbounded && let Some(restore) = &mut self.restore {
            restore.jobs.push((name, sql.to_string()));
        }
        Ok(output)
    }

    async fn settle(&self) -> Result<(), SltError> {
        tokio::time::timeout(STEP_TIMEOUT, self.engine.settle())
            .await
            .map_err(|_| SltError(format!("jobs did not settle within {STEP_TIMEOUT:?}")))?
            .map_err(|e| SltError(e.to_string()))
    }

    /// `ADVANCE TIME '<duration>'`: the duration, when `sql` is that statement.
    fn advance_time(sql: &str) -> Option<Result<Duration, SltError>> {
        let sql = sql.trim().trim_end_matches(';').trim();
        let words: Vec<&str> = sql.splitn(3, char::is_whitespace).collect();
        match words.as_slice() {
            [a, t, rest] if a.eq_ignore_ascii_case("advance") && t.eq_ignore_ascii_case("time") => {
                let text = rest.trim().trim_matches('\'');
                Some(magnetar::sql::options::common::parse_duration(text).map_err(SltError))
            }
            _ => None,
        }
    }
}

fn column_type(data_type: &DataType) -> DefaultColumnType {
    match data_type {
        t if t.is_integer() => DefaultColumnType::Integer,
        t if t.is_floating() => DefaultColumnType::FloatingPoint,
        DataType::Decimal128(..) | DataType::Decimal256(..) => DefaultColumnType::FloatingPoint,
        _ => DefaultColumnType::Text,
    }
}

fn rows(batches: &[RecordBatch]) -> Result<DBOutput<DefaultColumnType>, SltError> {
    let Some(first) = batches.first() else {
        return Ok(DBOutput::Rows {
            types: Vec::new(),
            rows: Vec::new(),
        });
    };
    let types = first
        .schema()
        .fields()
        .iter()
        .map(|f| column_type(f.data_type()))
        .collect();
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SltError(e.to_string()))?;
        for row in 0..batch.num_rows() {
            out.push(
                formatters
                    .iter()
                    .zip(batch.columns())
                    .map(|(f, c)| {
                        let text = f.value(row).to_string();
                        if text.is_empty() && c.is_valid(row) {
                            "(empty)".to_string()
                        } else {
                            text
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(DBOutput::Rows { types, rows: out })
}

#[async_trait::async_trait]
impl AsyncDB for MagnetarDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        if let Some(by) = Self::advance_time(sql) {
            let clock = self.clock.as_ref().ok_or_else(|| {
                SltError("ADVANCE TIME needs an engine with a manual clock".into())
            })?;
            clock.advance(by?);
            self.settle().await?;
            return Ok(DBOutput::StatementComplete(0));
        }
        self.settle().await?;
        // Boxed: engine futures are large, and these run on the test thread's stack.
        Box::pin(self.crash_and_restore_due_jobs()).await?;
        let output = Box::pin(self.execute_tracked(sql)).await?;
        if matches!(output, DBOutput::StatementComplete(_)) {
            self.settle().await?;
        }
        Ok(output)
    }

    async fn shutdown(&mut self) {
        self.engine.shutdown().await;
    }

    fn engine_name(&self) -> &str {
        "magnetar"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}

impl MagnetarDb {
    async fn execute(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let mut outputs = self
            .engine
            .execute(sql)
            .await
            .map_err(|e| SltError(e.to_string()))?;
        let Some(last) = outputs.pop() else {
            return Ok(DBOutput::StatementComplete(0));
        };
        match last {
            StatementOutput::Done(_) => Ok(DBOutput::StatementComplete(0)),
            StatementOutput::JobStarted(job) if !job.bounded => Ok(DBOutput::StatementComplete(0)),
            StatementOutput::JobStarted(job) => {
                let info = tokio::time::timeout(STEP_TIMEOUT, self.engine.wait_for_job(&job.id))
                    .await
                    .map_err(|_| {
                        SltError(format!(
                            "job {} did not end within {STEP_TIMEOUT:?}",
                            job.id
                        ))
                    })?
                    .map_err(|e| SltError(e.to_string()))?;
                match info.state {
                    JobState::Failed(e) => Err(SltError(e)),
                    _ => Ok(DBOutput::StatementComplete(info.messages_written)),
                }
            }
            StatementOutput::Table(batches) => rows(&batches),
            StatementOutput::Explain(text) | StatementOutput::Text(text) => Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Text],
                rows: text
                    .lines()
                    .map(|l| vec![l.trim_end().to_string()])
                    .collect(),
            }),
            StatementOutput::Query(stream) => {
                let batches: Vec<_> =
                    tokio::time::timeout(STEP_TIMEOUT, stream.collect::<Vec<_>>())
                        .await
                        .map_err(|_| {
                            SltError(format!("query did not end within {STEP_TIMEOUT:?}"))
                        })?;
                let batches = batches
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| SltError(e.to_string()))?;
                rows(&batches)
            }
        }
    }
}
