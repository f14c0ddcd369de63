//! Jobs: `INSERT INTO` statements running in the background.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::watch;

mod system_table;

pub(crate) use system_table::JobsTable;
pub use system_table::jobs_batch;

use crate::checkpoint::CheckpointMetrics;
use crate::error::{EngineError, Result};
use crate::operators::window::WindowMetrics;
use crate::runtime::{SettleHandle, Settled};
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
    /// Times the job restarted itself from its last checkpoint after broker trouble.
    pub restarts: u64,
    /// Results re-emitted after a restart and dropped because they were already written.
    pub replays_dropped: u64,
    /// Start time.
    pub started: SystemTime,
    /// The statement.
    pub sql: String,
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
    /// Streaming jobs: settles their pipeline.
    pub settle: Mutex<Option<Arc<SettleHandle>>>,
    /// Checkpoint counters (the last complete one, over every run).
    pub checkpoints: Arc<CheckpointMetrics>,
    /// The checkpoint the current run restored (0: none).
    pub restored_from: AtomicU64,
    /// Restarts after broker trouble.
    pub restarts: AtomicU64,
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
            checkpoints: Arc::default(),
            restored_from: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
        })
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

    /// Waits until the job has processed what is available to it (see
    /// [`SettleHandle`]), or has ended if it is ending.
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
        match handle {
            Some(h) if h.settle().await == Settled::Running => {}
            _ => {
                self.wait().await;
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
        JobInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            state: self.state(),
            sink_table: self.sink_table.clone(),
            bounded: self.bounded,
            messages_read: sum(|m| m.messages_read.load(Ordering::Relaxed)),
            messages_written: self.sink.messages_written.load(Ordering::Relaxed),
            messages_skipped: sum(|m| m.messages_skipped.load(Ordering::Relaxed)),
            messages_dead_lettered: sum(|m| m.messages_dead_lettered.load(Ordering::Relaxed)),
            duplicates_dropped: sum(|m| m.duplicates_dropped.load(Ordering::Relaxed)),
            reads: ReadStats::of(&sources),
            late_rows: windows
                .iter()
                .map(|w| w.late_rows.load(Ordering::Relaxed))
                .sum(),
            restored_from: Some(self.restored_from.load(Ordering::Relaxed)).filter(|id| *id > 0),
            last_checkpoint: Some(self.checkpoints.last_id.load(Ordering::Relaxed))
                .filter(|id| *id > 0),
            restarts: self.restarts.load(Ordering::Relaxed),
            replays_dropped: self.sink.replays_dropped.load(Ordering::Relaxed),
            started: self.started,
            sql: self.sql.clone(),
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
