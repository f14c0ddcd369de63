//! Completes a job's barriers. Every task instance that takes part reports its part of
//! each epoch (a source's positions, an operator's state, a sink's progress) once the
//! barrier has passed it; when every instance has reported an epoch (an instance that has
//! finished counts with its last part), the coordinator writes the checkpoint (in a
//! checkpointed job) and then reports the epoch complete, which lets the sources acknowledge
//! their input. Without checkpoints only the sinks report: an epoch completes once every
//! sink instance has flushed it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::{mpsc, watch};

use super::metadata::{
    CheckpointMetadata, METADATA_FORMAT, OperatorBlob, SinkCheckpoint, SourceCheckpoint,
};
use super::{CheckpointId, CheckpointStore, OperatorState};
use crate::error::{EngineError, Result};
use crate::runtime::{Epoch, KeyGroupRange, TaskId};

/// One task instance's share of an epoch.
#[derive(Debug, Clone)]
pub enum CheckpointPart {
    /// A source's positions (per partition, the last message it sent downstream) and
    /// watermark state.
    Source(SourceCheckpoint),
    /// An operator's state and the key groups it owns.
    Operator {
        /// Its state.
        state: OperatorState,
        /// Its key groups.
        key_groups: KeyGroupRange,
    },
    /// The sink flushed everything before the barrier; this is what the broker confirmed.
    Sink(SinkCheckpoint),
}

#[derive(Debug)]
enum Report {
    Part(Epoch, TaskId, CheckpointPart),
    Finished(TaskId),
}

/// Where tasks send their parts.
#[derive(Debug, Clone)]
pub struct PartSender {
    tx: mpsc::UnboundedSender<Report>,
}

/// Where the coordinator receives them.
#[derive(Debug)]
pub struct PartReceiver {
    rx: mpsc::UnboundedReceiver<Report>,
}

/// A channel for the parts of a job's epochs.
pub fn part_channel() -> (PartSender, PartReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (PartSender { tx }, PartReceiver { rx })
}

impl PartSender {
    /// Sends a task's part of `epoch`; false when the coordinator is gone.
    pub fn send(&self, epoch: Epoch, task: &TaskId, part: CheckpointPart) -> bool {
        self.tx
            .send(Report::Part(epoch, task.clone(), part))
            .is_ok()
    }

    /// The task has ended: it reports nothing more, and its last part stands for it.
    pub fn finished(&self, task: &TaskId) {
        let _ = self.tx.send(Report::Finished(task.clone()));
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
    /// The number of key groups.
    pub max_parallelism: u16,
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

/// What completing an epoch takes.
#[derive(Debug)]
pub enum Completion {
    /// Every reporting instance flushed it (the sinks).
    Flush,
    /// A checkpoint was written.
    Checkpoint(CheckpointPlan),
}

/// The coordinator of one run of a job's graph.
#[derive(Debug)]
pub struct CheckpointCoordinator {
    completion: Completion,
    /// The instances whose reports an epoch needs.
    expected: BTreeSet<TaskId>,
    parts: PartReceiver,
    metrics: Arc<CheckpointMetrics>,
}

impl CheckpointCoordinator {
    /// A coordinator of the parts arriving on `parts`, from the `expected` instances.
    pub fn new(
        completion: Completion,
        expected: BTreeSet<TaskId>,
        parts: PartReceiver,
        metrics: Arc<CheckpointMetrics>,
    ) -> Self {
        Self {
            completion,
            expected,
            parts,
            metrics,
        }
    }

    /// Completes each epoch once every expected instance has reported it (or finished),
    /// reporting it on `completed`; ends when every sender is gone. A checkpoint that cannot
    /// be written fails the run (dropping `completed`, so nothing more is acknowledged).
    pub async fn run(mut self, completed: watch::Sender<Epoch>) -> Result<()> {
        let mut pending: BTreeMap<Epoch, HashMap<TaskId, CheckpointPart>> = BTreeMap::new();
        let mut finished: HashSet<TaskId> = HashSet::new();
        // The last part of every source and sink instance: a finished one's stands for it.
        let mut last: HashMap<TaskId, CheckpointPart> = HashMap::new();
        while let Some(report) = self.parts.rx.recv().await {
            match report {
                Report::Part(epoch, task, part) => {
                    if !matches!(part, CheckpointPart::Operator { .. }) {
                        last.insert(task.clone(), part.clone());
                    }
                    pending.entry(epoch).or_default().insert(task, part);
                }
                Report::Finished(task) => {
                    finished.insert(task);
                }
            }
            while let Some((&epoch, parts)) = pending.first_key_value() {
                let complete = self
                    .expected
                    .iter()
                    .all(|t| parts.contains_key(t) || finished.contains(t));
                if !complete {
                    break;
                }
                let mut parts = pending.remove(&epoch).unwrap_or_default();
                for task in &self.expected {
                    if !parts.contains_key(task)
                        && let Some(part) = last.get(task)
                    {
                        parts.insert(task.clone(), part.clone());
                    }
                }
                if let Completion::Checkpoint(plan) = &self.completion {
                    self.write(plan, epoch, parts).await?;
                }
                completed.send_replace(epoch);
            }
        }
        Ok(())
    }

    async fn write(
        &self,
        plan: &CheckpointPlan,
        epoch: Epoch,
        parts: HashMap<TaskId, CheckpointPart>,
    ) -> Result<()> {
        let started = Instant::now();
        let id = plan.id_of(epoch);
        let mut writer = plan.store.begin(id);
        let mut sources: BTreeMap<String, BTreeMap<usize, SourceCheckpoint>> = BTreeMap::new();
        let mut sinks: BTreeMap<String, BTreeMap<usize, SinkCheckpoint>> = BTreeMap::new();
        let mut operators: BTreeMap<String, Vec<OperatorBlob>> = BTreeMap::new();
        let mut bytes_written = 0u64;
        let mut ordered: Vec<(TaskId, CheckpointPart)> = parts.into_iter().collect();
        ordered.sort_by(|a, b| a.0.cmp(&b.0));
        for (task, part) in ordered {
            match part {
                CheckpointPart::Source(s) => {
                    sources
                        .entry(task.node.to_string())
                        .or_default()
                        .insert(task.instance, s);
                }
                CheckpointPart::Sink(s) => {
                    sinks
                        .entry(task.node.to_string())
                        .or_default()
                        .insert(task.instance, s);
                }
                CheckpointPart::Operator { state, key_groups } => {
                    let blob = if state == OperatorState::default() {
                        None
                    } else {
                        // Encoding a large state takes tens of milliseconds: off the workers.
                        let encoded = tokio::task::spawn_blocking(move || state.encode())
                            .await
                            .map_err(|e| {
                            EngineError::Internal(format!("encoding operator state: {e}"))
                        })??;
                        let name = blob_name(&task);
                        bytes_written += encoded.len() as u64;
                        writer.put(&name, encoded).await?;
                        Some(name)
                    };
                    operators
                        .entry(task.node.to_string())
                        .or_default()
                        .push(OperatorBlob {
                            instance: task.instance,
                            key_groups,
                            blob,
                        });
                }
            }
        }
        if plan.abort_before_manifest == Some(id) {
            tracing::error!(checkpoint = %id, "test hook: aborting before the manifest");
            std::process::abort();
        }
        let metadata = CheckpointMetadata {
            format: METADATA_FORMAT,
            // Stored as shown to people: never with a secret in it.
            sql: magnetar_sql::redact::statement(&plan.sql),
            max_parallelism: plan.max_parallelism,
            sources: sources
                .into_iter()
                .map(|(k, v)| (k, v.into_values().collect()))
                .collect(),
            operators,
            sinks: sinks
                .into_iter()
                .map(|(k, v)| (k, v.into_values().collect()))
                .collect(),
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

/// A blob name for an instance's state: its node's id (anything but letters, digits, `-`,
/// `_`, `.` and `~` replaced) and its index.
fn blob_name(task: &TaskId) -> String {
    let node: String = task
        .node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{node}-{}", task.instance)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(node: &str, instance: usize) -> TaskId {
        TaskId {
            node: Arc::from(node),
            instance,
        }
    }

    #[tokio::test]
    async fn an_epoch_completes_once_every_instance_reported_or_finished() {
        let (parts, receiver) = part_channel();
        let expected: BTreeSet<TaskId> = [task("sink", 0), task("sink", 1)].into_iter().collect();
        let coordinator =
            CheckpointCoordinator::new(Completion::Flush, expected, receiver, Arc::default());
        let (completed, mut done) = watch::channel(Epoch(0));
        let running = tokio::spawn(coordinator.run(completed));
        let sink = |_: usize| CheckpointPart::Sink(SinkCheckpoint::default());
        assert!(parts.send(Epoch(1), &task("sink", 0), sink(0)));
        tokio::task::yield_now().await;
        assert_eq!(
            *done.borrow_and_update(),
            Epoch(0),
            "instance 1 has not flushed"
        );
        assert!(parts.send(Epoch(1), &task("sink", 1), sink(1)));
        done.changed().await.expect("completes");
        assert_eq!(*done.borrow_and_update(), Epoch(1));
        // Instance 0 ends; epoch 2 needs only instance 1.
        parts.finished(&task("sink", 0));
        assert!(parts.send(Epoch(2), &task("sink", 1), sink(1)));
        done.changed().await.expect("completes");
        assert_eq!(*done.borrow_and_update(), Epoch(2));
        drop(parts);
        running.await.expect("joins").expect("runs");
    }
}
