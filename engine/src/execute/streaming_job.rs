//! Running an unbounded `INSERT INTO` job (or statement set): its graph, its checkpoints,
//! and restarts from the latest checkpoint after broker trouble.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use magnetar_sql::plan::JobGraph;
use tokio::sync::watch;

use super::insert::finish;
use crate::checkpoint::{
    CheckpointCoordinator, CheckpointId, CheckpointPlan, CheckpointStore, Completion, load_latest,
    part_channel,
};
use crate::error::{EngineError, Result};
use crate::jobs::{GraphSettle, Job, JobState};
use crate::runtime::{Epoch, GraphContext, GraphMode, RunningGraph, start_graph};

/// Environment variable of a test hook: the process aborts after writing that checkpoint's
/// states and before its manifest, as if killed in the middle of a checkpoint.
pub const ABORT_BEFORE_MANIFEST_ENV: &str = "MAGNETAR_TEST_ABORT_BEFORE_MANIFEST";

/// How a job checkpoints.
#[derive(Debug, Clone)]
pub(crate) struct JobCheckpointing {
    /// Where its checkpoints go.
    pub store: CheckpointStore,
    /// The job's name in the store and on its producers, the same in every run.
    pub durable_name: String,
    /// Named jobs: prefix of the durable subscriptions of sources whose table names none.
    /// (An unnamed job cannot be resumed by a later process; it reads through temporary
    /// subscriptions, which leave nothing behind on the broker.)
    pub subscription_prefix: Option<Arc<std::sync::Mutex<String>>>,
}

impl JobCheckpointing {
    /// The checkpointing of job `id` (named `name`, if it is), from the settings.
    pub fn new(
        settings: &crate::settings::Settings,
        data_dir: Option<&std::path::Path>,
        id: &str,
        name: Option<&str>,
    ) -> Result<Self> {
        let dir = match (settings.checkpoint_dir(), data_dir) {
            (Some(dir), _) => dir.to_string(),
            (None, Some(data)) => data.join("checkpoints").display().to_string(),
            (None, None) => {
                return Err(EngineError::InvalidSetting {
                    key: "execution.checkpointing.dir".into(),
                    value: String::new(),
                    reason: "the engine has no data directory; set where checkpoints go".into(),
                });
            }
        };
        // The name becomes a path segment and a producer name.
        let durable_name: String = name
            .unwrap_or(id)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let store = CheckpointStore::open(&dir, &durable_name, settings.checkpoints_retained())?;
        Ok(Self {
            subscription_prefix: name
                .map(|_| Arc::new(std::sync::Mutex::new(format!("magnetar-{durable_name}")))),
            store,
            durable_name,
        })
    }

    /// Reads through fresh subscriptions from now on: the job's own are still held.
    ///
    /// Real Pulsar releases a killed client's consumers when its connection drops, so the
    /// job's subscriptions are free again within seconds. pulsar-lite was seen to keep such a
    /// consumer on its Exclusive subscription for good (refusing every later subscriber);
    /// positions come from the checkpoint, so reading through another subscription loses
    /// nothing, and the held one is named for its owner to delete.
    fn take_over_subscriptions(&self) {
        let Some(prefix) = &self.subscription_prefix else {
            return;
        };
        let mut prefix = prefix.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        let next = format!("magnetar-{}-{}", self.durable_name, &fresh[..8]);
        tracing::warn!(held = %*prefix, now = %next, "the job's subscriptions stay held by a consumer the broker did not release; reading through new ones (delete the held ones)");
        *prefix = next;
    }
}

/// Everything needed to start (and restart) a streaming job's graph.
pub(crate) struct StreamingJob {
    pub job: Arc<Job>,
    pub graph: JobGraph,
    pub ctx: GraphContext,
    pub checkpointing: Option<JobCheckpointing>,
}

/// One run of a job's graph.
pub(crate) struct Run {
    graph: RunningGraph,
    coordinator: CheckpointCoordinator,
    completed: watch::Sender<Epoch>,
}

impl StreamingJob {
    /// Starts a run: from the latest complete checkpoint, if the job checkpoints and has one.
    pub async fn start_run(&self) -> Result<Run> {
        let (parts, receiver) = part_channel();
        let (completed, completed_rx) = watch::channel(Epoch(0));
        let (mode, completion, restored_id) = match &self.checkpointing {
            None => (
                GraphMode::Flush { parts },
                Completion::Flush,
                CheckpointId(0),
            ),
            Some(checkpointing) => {
                let restored = load_latest(&checkpointing.store, &self.job.sql)
                    .await?
                    .map(Arc::new);
                let restored_id = restored.as_ref().map_or(CheckpointId(0), |r| r.id);
                let abort_before_manifest = std::env::var(ABORT_BEFORE_MANIFEST_ENV)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                    .map(CheckpointId);
                let plan = CheckpointPlan {
                    store: checkpointing.store.clone(),
                    sql: self.job.sql.clone(),
                    max_parallelism: self.ctx.max_parallelism,
                    restored: restored_id,
                    abort_before_manifest,
                };
                let mode = GraphMode::Checkpoint {
                    parts,
                    restored,
                    subscription_prefix: checkpointing
                        .subscription_prefix
                        .as_ref()
                        .map(|p| p.lock().unwrap_or_else(|p| p.into_inner()).clone()),
                    exactly_once: Some(checkpointing.durable_name.clone()),
                };
                (mode, Completion::Checkpoint(plan), restored_id)
            }
        };
        let graph = start_graph(
            &self.graph,
            &self.ctx,
            mode,
            completed_rx,
            self.job.sink.clone(),
        )
        .await?;
        let coordinator = CheckpointCoordinator::new(
            completion,
            graph.reporting.clone(),
            receiver,
            self.job.checkpoints.clone(),
        );
        self.job
            .restored_from
            .store(restored_id.0, Ordering::Relaxed);
        if restored_id.0 > 0 {
            self.job
                .checkpoints
                .last_id
                .fetch_max(restored_id.0, Ordering::Relaxed);
            tracing::info!(job = %self.job.id, checkpoint = %restored_id, "resumed from checkpoint");
        }
        Ok(Run {
            graph,
            coordinator,
            completed,
        })
    }

    /// Starts the first run. A checkpointed job may find its previous process's consumers
    /// and producers still registered (a broker notices a killed client only when its
    /// connection drops): broker trouble is retried for a while before it is reported.
    pub async fn start_first_run(&self) -> Result<Run> {
        const ATTEMPTS: u32 = 8;
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            match Box::pin(self.start_run()).await {
                Err(e)
                    if self.checkpointing.is_some() && e.is_transient() && attempt < ATTEMPTS =>
                {
                    tracing::warn!(job = %self.job.id, error = %e, ?delay, "cannot start yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(3));
                    attempt += 1;
                    if attempt == 4
                        && let Some(c) = &self.checkpointing
                    {
                        c.take_over_subscriptions();
                    }
                }
                other => return other,
            }
        }
    }

    /// Publishes a run's counters on the job.
    pub fn expose(&self, run: &Run) {
        let metrics = &run.graph.metrics;
        *self.job.sources.lock().unwrap_or_else(|p| p.into_inner()) = metrics.sources.clone();
        *self.job.windows.lock().unwrap_or_else(|p| p.into_inner()) = metrics.windows.clone();
        *self.job.tasks.lock().unwrap_or_else(|p| p.into_inner()) = metrics.tasks.clone();
        self.job
            .parallelism
            .store(self.ctx.parallelism, Ordering::Relaxed);
        *self.job.settle.lock().unwrap_or_else(|p| p.into_inner()) = Some(GraphSettle {
            injector: run.graph.injector.clone(),
            completed: run.completed.subscribe(),
        });
    }

    /// Runs until the job ends. A checkpointed job that hits broker trouble restarts from
    /// its latest checkpoint, with backoff, for as long as restarts make progress.
    pub async fn run(self, first: Run) {
        /// Restarts in a row without a new checkpoint before the job gives up.
        const MAX_FRUITLESS_RESTARTS: u32 = 30;
        let mut run = first;
        let mut fruitless = 0;
        let mut delay = Duration::from_millis(200);
        loop {
            let checkpoint_before = self.job.checkpoints.completed.load(Ordering::Relaxed);
            let result = drive(&self.job, run).await;
            let restartable = self.checkpointing.is_some()
                && self.job.state() == JobState::Running
                && result.as_ref().is_err_and(EngineError::is_transient);
            let error = match result {
                Err(e) if restartable => e,
                other => return finish(&self.job, other),
            };
            if self.job.checkpoints.completed.load(Ordering::Relaxed) > checkpoint_before {
                fruitless = 0;
                delay = Duration::from_millis(200);
            }
            run = loop {
                fruitless += 1;
                if fruitless > MAX_FRUITLESS_RESTARTS {
                    return finish(
                        &self.job,
                        Err(EngineError::Pipeline(format!(
                            "gave up after {MAX_FRUITLESS_RESTARTS} restarts without a new checkpoint: {error}"
                        ))),
                    );
                }
                tracing::warn!(job = %self.job.id, %error, ?delay, "job failed; restarting from its latest checkpoint");
                let mut stop = self.job.stop.subscribe();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => return finish(&self.job, Ok(())),
                }
                delay = (delay * 2).min(Duration::from_secs(10));
                self.job.restarts.fetch_add(1, Ordering::Relaxed);
                if fruitless == 4
                    && let Some(c) = &self.checkpointing
                {
                    c.take_over_subscriptions();
                }
                match Box::pin(self.start_run()).await {
                    Ok(next) => break next,
                    Err(e) if e.is_transient() => {
                        tracing::warn!(job = %self.job.id, error = %e, "restart failed");
                    }
                    Err(e) => return finish(&self.job, Err(e)),
                }
            };
            self.expose(&run);
        }
    }
}

/// Waits for every sink instance; the first failure ends the wait.
async fn all_sinks(sinks: Vec<tokio::task::JoinHandle<Result<()>>>) -> Result<()> {
    let waits = sinks.into_iter().map(|handle| async move {
        match handle.await {
            Ok(result) => result,
            Err(e) if e.is_cancelled() => Err(EngineError::Pipeline("aborted".into())),
            Err(e) => Err(EngineError::Internal(format!("sink task: {e}"))),
        }
    });
    futures::future::try_join_all(waits).await.map(|_| ())
}

/// Drives one run to its end: the sinks, the checkpoint coordinator, and STOP JOB.
async fn drive(job: &Job, run: Run) -> Result<()> {
    let Run {
        mut graph,
        coordinator,
        completed,
    } = run;
    let coordinator = tokio::spawn(coordinator.run(completed));
    let sink_handles = std::mem::take(&mut graph.sinks);
    let aborts: Vec<tokio::task::AbortHandle> =
        sink_handles.iter().map(|h| h.abort_handle()).collect();
    // Boxed, so that an abort can drop it on the spot.
    let mut sinks = Box::pin(all_sinks(sink_handles));
    let injector = graph.injector.clone();
    // A STOP or abort sent before this run subscribed must still count.
    let mut job_stop = job.stop.subscribe();
    job_stop.mark_changed();
    let mut job_abort = job.abort.subscribe();
    job_abort.mark_changed();
    let result = loop {
        tokio::select! {
            result = &mut sinks => break result,
            changed = job_abort.changed() => {
                if changed.is_err() || !*job_abort.borrow_and_update() {
                    continue;
                }
                // As a crash: whatever is in flight is dropped. Without their sinks the
                // operators end, then the sources (which close their subscriptions); the
                // last barrier the stop asks of idle sources completes nothing.
                coordinator.abort();
                for sink in &aborts {
                    sink.abort();
                }
                drop(sinks);
                injector.stop();
                for task in std::mem::take(&mut graph.tasks) {
                    let _ = task.await;
                }
                return Err(EngineError::Pipeline("aborted".into()));
            }
            changed = job_stop.changed() => {
                if changed.is_err() || *job_stop.borrow_and_update() {
                    // Sources drain: a last barrier (a final checkpoint), the sinks flush,
                    // input is acknowledged.
                    injector.stop();
                }
            }
        }
    };
    if result.is_err() {
        injector.stop();
        // The barrier the sources send as they stop can no longer complete: without the
        // coordinator (and its `completed` sender) they stop waiting for it.
        coordinator.abort();
        for sink in &aborts {
            sink.abort();
        }
    }
    for task in std::mem::take(&mut graph.tasks) {
        let _ = task.await;
    }
    let checkpoints = match coordinator.await {
        Ok(written) => written,
        // Aborted above, after a sink failed: the sink's error is the cause.
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(EngineError::Internal(format!(
            "checkpoint coordinator: {e}"
        ))),
    };
    // A failed checkpoint is the cause when a sink then lost its coordinator.
    checkpoints.and(result)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{Engine, EngineConfig, JobState};

    /// An abort ends the job even when no input arrives to carry the news down the pipeline.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_job_aborts_promptly_and_its_statement_resumes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::new(EngineConfig {
            data_dir: Some(dir.path().to_path_buf()),
            ..EngineConfig::default()
        });
        let job = "INSERT INTO counts SELECT user_id, window_end, count(*) FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, user_id";
        engine
            .execute(&format!(
                "CREATE TABLE clicks (user_id STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'memory');
                 CREATE TABLE counts (user_id STRING, window_end TIMESTAMP(3), clicks BIGINT) WITH ('connector' = 'memory');
                 SET 'execution.checkpointing.interval' = '1 h';
                 SET 'table.dml-sync' = 'true';
                 INSERT INTO clicks VALUES ('a', TIMESTAMP '2024-01-01 00:00:01');
                 SET 'table.dml-sync' = 'false';
                 SET 'pipeline.name' = 'idle';
                 {job}"
            ))
            .await
            .expect("start");
        engine.settle().await.expect("settle");
        // Settled twice: two checkpoints, nothing more to read.
        engine.settle().await.expect("settle");
        let aborted = tokio::time::timeout(Duration::from_secs(10), engine.abort_job("idle"))
            .await
            .expect("the abort returns although no input arrives")
            .expect("abort");
        assert!(matches!(aborted.state, JobState::Failed(_)), "{aborted:?}");
        let last = aborted.last_checkpoint.expect("checkpoints were taken");
        let outputs = engine
            .execute(&format!("SET 'pipeline.name' = 'idle'; {job}"))
            .await
            .expect("restart");
        let restored = outputs.iter().find_map(|o| match o {
            crate::StatementOutput::JobStarted(j) => j.restored_from,
            _ => None,
        });
        assert_eq!(restored, Some(last));
        let stopped = tokio::time::timeout(Duration::from_secs(10), engine.stop_job("idle"))
            .await
            .expect("the restored job stops")
            .expect("stop");
        assert_eq!(stopped.state, JobState::Stopped);
        engine.shutdown().await;
    }
}
