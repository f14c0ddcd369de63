//! Jobs: `INSERT INTO` statements running in the background.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

mod input_rate;
mod system_table;

use input_rate::InputRate;

pub(crate) use system_table::SystemTable;
pub use system_table::jobs_batch;

use crate::checkpoint::CheckpointMetrics;
use crate::error::{EngineError, Result};
use crate::operators::window::WindowMetrics;
use crate::runtime::{BarrierInjector, Epoch, TaskMetrics};
use crate::sinks::SinkMetrics;
use crate::sources::{QueryCommit, ReadStats, SourceMetrics};

/// Where a job is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Reading and writing.
    Running,
    /// Draining after `STOP JOB`.
    Stopping,
    /// Its bounded input is exhausted and everything is written.
    Finished,
    /// Stopped by `STOP JOB` (or shutdown) after writing what it had read.
    Stopped,
    /// Failed; the message says why.
    Failed(String),
}

impl JobState {
    /// `RUNNING`, `FINISHED`, ...
    pub fn name(&self) -> &'static str {
        match self {
            JobState::Running => "RUNNING",
            JobState::Stopping => "STOPPING",
            JobState::Finished => "FINISHED",
            JobState::Stopped => "STOPPED",
            JobState::Failed(_) => "FAILED",
        }
    }

    /// Whether the job has ended.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobState::Finished | JobState::Stopped | JobState::Failed(_)
        )
    }
}

/// A snapshot of a job, for `SHOW JOBS` and the embedding API.
#[derive(Clone, Debug)]
pub struct JobInfo {
    /// Short id.
    pub id: String,
    /// `pipeline.name`, if set.
    pub name: Option<String>,
    /// State.
    pub state: JobState,
    /// The table written to.
    pub sink_table: String,
    /// Whether the job ends by itself (all its inputs are bounded).
    pub bounded: bool,
    /// Messages read by its sources.
    pub messages_read: u64,
    /// Messages the sink's broker confirmed.
    pub messages_written: u64,
    /// Bad messages skipped.
    pub messages_skipped: u64,
    /// Bad messages written to the dead-letter topic.
    pub messages_dead_lettered: u64,
    /// Redeliveries dropped.
    pub duplicates_dropped: u64,
    /// Reads in detail: tiered storage and broker, backfill progress.
    pub reads: ReadStats,
    /// Rows dropped as late (every window they belong to had fired).
    pub late_rows: u64,
    /// The checkpoint the job resumed from when it started (or last restarted).
    pub restored_from: Option<u64>,
    /// The last complete checkpoint.
    pub last_checkpoint: Option<u64>,
    /// When the last checkpoint completed.
    pub last_checkpoint_at: Option<SystemTime>,
    /// Messages read per second over the last ten seconds (`None` right after the start).
    pub input_rate: Option<f64>,
    /// Entries its Pulsar subscriptions are behind the end of their topics (`None`:
    /// unknown, or no Pulsar input).
    pub backlog: Option<u64>,
    /// Its event-time operators' watermark (the least of them), once there is one.
    pub watermark: Option<crate::runtime::Watermark>,
    /// Approximate bytes of window state held.
    pub state_bytes: u64,
    /// Times the job restarted itself from its last checkpoint after broker trouble.
    pub restarts: u64,
    /// Results re-emitted after a restart and dropped because they were already written.
    pub replays_dropped: u64,
    /// Instances of its keyed operators (`parallelism.default` when it started).
    pub parallelism: usize,
    /// Start time.
    pub started: SystemTime,
    /// The statement.
    pub sql: String,
    /// What the job waits for without failing (a topic pattern that matches nothing yet).
    pub warnings: Vec<String>,
}

/// What settling a running graph takes: a barrier injected after the sources have taken
/// what is available to them, and the completion of that barrier.
#[derive(Debug, Clone)]
pub(crate) struct GraphSettle {
    pub injector: Arc<BarrierInjector>,
    pub completed: watch::Receiver<Epoch>,
}

/// A job's shared state.
#[derive(Debug)]
pub(crate) struct Job {
    pub id: String,
    pub name: Option<String>,
    pub sql: String,
    pub sink_table: String,
    pub bounded: bool,
    pub started: SystemTime,
    state: Mutex<JobState>,
    pub stop: watch::Sender<bool>,
    /// `true` ends the job at once, as a crash would (tests of recovery).
    pub abort: watch::Sender<bool>,
    done: watch::Sender<bool>,
    pub sources: Mutex<Vec<Arc<SourceMetrics>>>,
    /// Event-time operators' counters.
    pub windows: Mutex<Vec<Arc<WindowMetrics>>>,
    /// Bounded jobs: their scans register counters here as they start.
    pub scans: Mutex<Option<Arc<QueryCommit>>>,
    pub sink: Arc<SinkMetrics>,
    /// Streaming jobs: settles their graph.
    pub settle: Mutex<Option<GraphSettle>>,
    /// Streaming jobs: their task instances' counters.
    pub tasks: Mutex<Vec<Arc<TaskMetrics>>>,
    /// Instances of keyed operators.
    pub parallelism: std::sync::atomic::AtomicUsize,
    /// Checkpoint counters (the last complete one, over every run).
    pub checkpoints: Arc<CheckpointMetrics>,
    /// The checkpoint the current run restored (0: none).
    pub restored_from: AtomicU64,
    /// Restarts after broker trouble.
    pub restarts: AtomicU64,
    /// Samples of the read counter, for the input rate.
    pub input_rate: InputRate,
}

impl Job {
    pub fn new(
        id: String,
        name: Option<String>,
        sql: String,
        sink_table: String,
        bounded: bool,
    ) -> Arc<Job> {
        Arc::new(Job {
            id,
            name,
            sql,
            sink_table,
            bounded,
            started: SystemTime::now(),
            state: Mutex::new(JobState::Running),
            stop: watch::channel(false).0,
            abort: watch::channel(false).0,
            done: watch::channel(false).0,
            sources: Mutex::new(Vec::new()),
            windows: Mutex::new(Vec::new()),
            scans: Mutex::new(None),
            sink: Arc::new(SinkMetrics::default()),
            settle: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            parallelism: std::sync::atomic::AtomicUsize::new(1),
            checkpoints: Arc::default(),
            restored_from: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            input_rate: InputRate::default(),
        })
    }

    /// Samples the read counter once a second while the job runs, for its input rate.
    fn sample_input_rate(job: &Arc<Job>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(job);
        runtime.spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            loop {
                ticker.tick().await;
                let Some(job) = weak.upgrade() else { return };
                if job.state().is_terminal() {
                    return;
                }
                let read = job.info().messages_read;
                job.input_rate.sample(Instant::now(), read);
            }
        });
    }

    pub fn state(&self) -> JobState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_state(&self, state: JobState) {
        let terminal = state.is_terminal();
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
        if terminal {
            self.done.send_replace(true);
        }
    }

    /// Waits until the job has ended.
    pub async fn wait(&self) -> JobState {
        let mut done = self.done.subscribe();
        while !*done.borrow_and_update() {
            if done.changed().await.is_err() {
                break;
            }
        }
        self.state()
    }

    /// Waits until the job has processed what is available to it (its sources took every
    /// row available now and a barrier injected after them completed), or has ended if it
    /// is ending.
    pub async fn settle(&self) {
        if self.bounded || self.state() != JobState::Running {
            self.wait().await;
            return;
        }
        let handle = self
            .settle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(GraphSettle {
            injector,
            mut completed,
        }) = handle
        else {
            self.wait().await;
            return;
        };
        let epoch = injector.inject_drained();
        loop {
            if *completed.borrow_and_update() >= epoch {
                return;
            }
            if completed.changed().await.is_err() {
                // The run ended (or restarts): wait for the job if it is ending.
                if self.state() != JobState::Running {
                    self.wait().await;
                }
                return;
            }
        }
    }

    pub fn info(&self) -> JobInfo {
        let mut sources = self
            .sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(scans) = &*self.scans.lock().unwrap_or_else(|p| p.into_inner()) {
            sources.extend(scans.metrics());
            windows.extend(scans.window_metrics());
        }
        let sum = |f: fn(&SourceMetrics) -> u64| sources.iter().map(|m| f(m)).sum();
        let read: u64 = sum(|m| m.messages_read.load(Ordering::Relaxed));
        JobInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            state: self.state(),
            sink_table: self.sink_table.clone(),
            bounded: self.bounded,
            messages_read: read,
            messages_written: self.sink.messages_written.load(Ordering::Relaxed),
            messages_skipped: sum(|m| m.messages_skipped.load(Ordering::Relaxed)),
            messages_dead_lettered: sum(|m| m.messages_dead_lettered.load(Ordering::Relaxed)),
            duplicates_dropped: sum(|m| m.duplicates_dropped.load(Ordering::Relaxed)),
            reads: ReadStats::of(&sources),
            late_rows: windows
                .iter()
                .map(|w| w.late_rows.load(Ordering::Relaxed))
                .sum(),
            last_checkpoint_at: Some(self.checkpoints.last_completed_ms.load(Ordering::Relaxed))
                .filter(|ms| *ms > 0)
                .map(|ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)),
            input_rate: self.input_rate.per_second(Instant::now(), read),
            backlog: sources
                .iter()
                .filter_map(|m| *m.backlog.lock().unwrap_or_else(|p| p.into_inner()))
                .reduce(|a, b| a + b),
            watermark: windows.iter().filter_map(|w| w.watermark()).min(),
            state_bytes: windows
                .iter()
                .map(|w| w.state_bytes.load(Ordering::Relaxed))
                .sum(),
            restored_from: Some(self.restored_from.load(Ordering::Relaxed)).filter(|id| *id > 0),
            last_checkpoint: Some(self.checkpoints.last_id.load(Ordering::Relaxed))
                .filter(|id| *id > 0),
            restarts: self.restarts.load(Ordering::Relaxed),
            replays_dropped: self.sink.replays_dropped.load(Ordering::Relaxed),
            parallelism: self.parallelism.load(Ordering::Relaxed),
            started: self.started,
            sql: self.sql.clone(),
            warnings: {
                let mut warnings: Vec<String> =
                    sources.iter().filter_map(|m| m.warning.get()).collect();
                warnings.sort();
                warnings.dedup();
                warnings
            },
        }
    }
}

/// All jobs of an engine.
#[derive(Debug, Default)]
pub(crate) struct JobRegistry {
    jobs: Mutex<Vec<Arc<Job>>>,
}

impl JobRegistry {
    pub fn add(&self, job: Arc<Job>) {
        Job::sample_input_rate(&job);
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(job);
    }

    pub fn all(&self) -> Vec<Arc<Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Finds a job by id, id prefix (if unambiguous) or name (the latest job of that name:
    /// a restarted pipeline is the same job to its user).
    pub fn find(&self, key: &str) -> Result<Arc<Job>> {
        let jobs = self.all();
        if let Some(job) = jobs
            .iter()
            .rev()
            .find(|j| j.id == key || j.name.as_deref() == Some(key))
        {
            return Ok(job.clone());
        }
        let prefixed: Vec<&Arc<Job>> = jobs.iter().filter(|j| j.id.starts_with(key)).collect();
        if let [one] = prefixed.as_slice() {
            return Ok((*one).clone());
        }
        Err(EngineError::UnknownJob {
            id: key.to_string(),
            suggestion: magnetar_sql::error::nearest(key, jobs.iter().map(|j| j.id.as_str())),
        })
    }
}
