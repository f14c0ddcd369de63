//! Gathers the parts of each checkpoint as its barrier passes through the pipeline (source
//! positions, operator states, sink progress), writes them, and only then lets the sources
//! acknowledge their input.
//!
//! Sources and operators send their part before they forward the barrier, and the sink
//! sends its part last, so when the sink's part of an epoch arrives every other part of that
//! epoch is already in the channel ahead of it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::{mpsc, watch};

use super::metadata::{CheckpointMetadata, SinkProgress, SourceCheckpoint};
use super::{CheckpointId, CheckpointStore, OperatorState};
use crate::error::{EngineError, Result};
use crate::runtime::Epoch;

/// One task's share of a checkpoint.
#[derive(Debug)]
pub enum CheckpointPart {
    /// A source's positions (per partition, the last message it sent downstream) and
    /// watermark state.
    Source {
        /// The source's index in the pipeline.
        index: usize,
        /// Its part.
        part: SourceCheckpoint,
    },
    /// An operator's state.
    Operator {
        /// The operator's index in the pipeline.
        index: usize,
        /// Its state.
        state: OperatorState,
    },
    /// The sink flushed everything before the barrier; this is what the broker confirmed.
    Sink(SinkProgress),
}

/// Where a task sends its parts.
#[derive(Debug, Clone)]
pub struct PartSender {
    tx: mpsc::UnboundedSender<(Epoch, CheckpointPart)>,
}

/// Where the coordinator receives them.
#[derive(Debug)]
pub struct PartReceiver {
    rx: mpsc::UnboundedReceiver<(Epoch, CheckpointPart)>,
}

/// A channel for the parts of a pipeline's checkpoints.
pub fn part_channel() -> (PartSender, PartReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (PartSender { tx }, PartReceiver { rx })
}

impl PartSender {
    /// Sends a part of the checkpoint of `epoch`; false when the coordinator is gone.
    pub fn send(&self, epoch: Epoch, part: CheckpointPart) -> bool {
        self.tx.send((epoch, part)).is_ok()
    }
}

/// Counters of a job's checkpoints, for `SHOW JOBS`.
#[derive(Debug, Default)]
pub struct CheckpointMetrics {
    /// The last complete checkpoint's id (0: none yet).
    pub last_id: AtomicU64,
    /// Its size in bytes.
    pub last_bytes: AtomicU64,
    /// How long writing it took.
    pub last_millis: AtomicU64,
    /// Checkpoints completed by this run.
    pub completed: AtomicU64,
    /// When the last one completed, in ms since the epoch (0: none yet).
    pub last_completed_ms: AtomicU64,
}

/// What is the same in every checkpoint of a job.
#[derive(Debug, Clone)]
pub struct CheckpointPlan {
    /// The store.
    pub store: CheckpointStore,
    /// The job's statement, checked on restore.
    pub sql: String,
    /// Sources in the pipeline.
    pub sources: usize,
    /// Operators in the pipeline.
    pub operators: usize,
    /// The checkpoint restored from; epochs count on from it.
    pub restored: CheckpointId,
    /// Test hook: abort the process after writing this checkpoint's states, before its
    /// manifest (as a crash in the middle of a checkpoint would).
    pub abort_before_manifest: Option<CheckpointId>,
}

impl CheckpointPlan {
    /// The id of the checkpoint that `epoch` of this run takes.
    pub fn id_of(&self, epoch: Epoch) -> CheckpointId {
        CheckpointId(self.restored.0 + epoch.0)
    }
}

/// The coordinator of one pipeline run.
#[derive(Debug)]
pub struct CheckpointCoordinator {
    plan: CheckpointPlan,
    parts: PartReceiver,
    metrics: Arc<CheckpointMetrics>,
}

#[derive(Default)]
struct Gathered {
    sources: BTreeMap<usize, SourceCheckpoint>,
    operators: BTreeMap<usize, OperatorState>,
}

impl CheckpointCoordinator {
    /// A coordinator of the parts arriving on `parts`.
    pub fn new(plan: CheckpointPlan, parts: PartReceiver, metrics: Arc<CheckpointMetrics>) -> Self {
        Self {
            plan,
            parts,
            metrics,
        }
    }

    /// Writes each checkpoint once its sink part arrives and then reports its epoch on
    /// `completed`; ends when every sender is gone. A checkpoint that cannot be written
    /// fails the run (dropping `completed`, so nothing more is acknowledged).
    pub async fn run(mut self, completed: watch::Sender<Epoch>) -> Result<()> {
        let mut pending: BTreeMap<Epoch, Gathered> = BTreeMap::new();
        while let Some((epoch, part)) = self.parts.rx.recv().await {
            let gathered = pending.entry(epoch).or_default();
            match part {
                CheckpointPart::Source { index, part } => {
                    gathered.sources.insert(index, part);
                }
                CheckpointPart::Operator { index, state } => {
                    gathered.operators.insert(index, state);
                }
                CheckpointPart::Sink(progress) => {
                    let gathered = pending.remove(&epoch).unwrap_or_default();
                    // Epochs before this one that never reached the sink cannot complete.
                    pending.retain(|e, _| *e > epoch);
                    self.write(epoch, gathered, progress).await?;
                    completed.send_replace(epoch);
                }
            }
        }
        Ok(())
    }

    async fn write(&self, epoch: Epoch, gathered: Gathered, sink: SinkProgress) -> Result<()> {
        let started = Instant::now();
        let id = self.plan.id_of(epoch);
        if gathered.sources.len() != self.plan.sources
            || gathered.operators.len() != self.plan.operators
        {
            return Err(EngineError::Internal(format!(
                "checkpoint {id}: {} of {} source part(s) and {} of {} operator part(s) arrived before the sink's",
                gathered.sources.len(),
                self.plan.sources,
                gathered.operators.len(),
                self.plan.operators
            )));
        }
        let mut writer = self.plan.store.begin(id);
        let mut operators = Vec::with_capacity(gathered.operators.len());
        let mut bytes_written = 0u64;
        for (index, state) in gathered.operators {
            if state == OperatorState::default() {
                operators.push(None);
                continue;
            }
            // Encoding a large state takes tens of milliseconds: off the async workers.
            let encoded = tokio::task::spawn_blocking(move || state.encode())
                .await
                .map_err(|e| EngineError::Internal(format!("encoding operator state: {e}")))??;
            let name = format!("operator-{index}");
            bytes_written += encoded.len() as u64;
            writer.put(&name, encoded).await?;
            operators.push(Some(name));
        }
        if self.plan.abort_before_manifest == Some(id) {
            tracing::error!(checkpoint = %id, "test hook: aborting before the manifest");
            std::process::abort();
        }
        let metadata = CheckpointMetadata {
            sql: self.plan.sql.clone(),
            sources: gathered.sources.into_values().collect(),
            operators,
            sink,
        };
        writer.commit(metadata.to_json()?).await?;
        let millis = started.elapsed().as_millis() as u64;
        self.metrics.last_id.store(id.0, Ordering::Relaxed);
        self.metrics
            .last_bytes
            .store(bytes_written, Ordering::Relaxed);
        self.metrics.last_millis.store(millis, Ordering::Relaxed);
        self.metrics.completed.fetch_add(1, Ordering::Relaxed);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.metrics
            .last_completed_ms
            .store(now_ms, Ordering::Relaxed);
        tracing::debug!(checkpoint = %id, bytes = bytes_written, millis, "checkpoint complete");
        Ok(())
    }
}
