//! An operator task: one instance of a graph node whose head is an operator. It reads its
//! input gate (merged, aligned channels), calls the operator, runs the output through its
//! branches' fused operators and exchanges, and at each aligned barrier reports a snapshot of
//! the operator's state before passing the barrier on.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::dispatch::TaskOutput;
use super::gate::{GateEvent, InputGate};
use super::key_groups::KeyGroupRange;
use super::{StreamMessage, Watermark};
use crate::checkpoint::{CheckpointPart, PartSender};
use crate::error::{EngineError, Result};
use crate::operators::Operator;

/// A task instance: its node's stable id and its index among the node's instances.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// The node's stable id.
    pub node: Arc<str>,
    /// The instance's index.
    pub instance: usize,
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.node, self.instance)
    }
}

/// Counters of one task instance, for `system.job_tasks`.
#[derive(Debug)]
pub struct TaskMetrics {
    /// The instance.
    pub task: TaskId,
    /// What it runs (`PulsarSource`, `WindowAggregate`, `Sink`, ...).
    pub kind: String,
    /// How many instances its node runs.
    pub parallelism: usize,
    /// Rows received (read, for a source).
    pub rows_in: AtomicU64,
    /// Rows sent on (written, for a sink).
    pub rows_out: AtomicU64,
    /// Its watermark in ms since the epoch (`i64::MIN`: none yet).
    pub watermark_ms: AtomicI64,
    /// Approximate bytes of operator state.
    pub state_bytes: AtomicU64,
}

impl TaskMetrics {
    /// Counters for `task` of a node of `parallelism` instances running `kind`.
    pub fn new(task: TaskId, kind: impl Into<String>, parallelism: usize) -> Self {
        Self {
            task,
            kind: kind.into(),
            parallelism,
            rows_in: AtomicU64::new(0),
            rows_out: AtomicU64::new(0),
            watermark_ms: AtomicI64::new(i64::MIN),
            state_bytes: AtomicU64::new(0),
        }
    }

    /// The watermark, once one arrived.
    pub fn watermark(&self) -> Option<Watermark> {
        let ms = self.watermark_ms.load(Ordering::Relaxed);
        (ms != i64::MIN).then_some(Watermark(super::EventTime(ms)))
    }

    pub(crate) fn observe_watermark(&self, watermark: Watermark) {
        self.watermark_ms.store(watermark.0.0, Ordering::Relaxed);
    }
}

/// One instance of an operator node.
pub struct OperatorTask {
    /// Who it is.
    pub id: TaskId,
    /// Its inputs.
    pub gate: InputGate,
    /// The operator.
    pub head: Box<dyn Operator>,
    /// Its output.
    pub output: TaskOutput,
    /// Where checkpoint parts go (checkpointed jobs).
    pub parts: Option<PartSender>,
    /// The key groups it owns.
    pub key_groups: KeyGroupRange,
    /// Its counters.
    pub metrics: Arc<TaskMetrics>,
}

/// How a task's loop ended.
enum Outcome {
    /// Its input ended and the end was passed on.
    Ended,
    /// A consumer is gone (the query was closed, or a LIMIT is satisfied downstream).
    DownstreamGone,
}

impl OperatorTask {
    /// Runs until the input ends, an error, or a consumer is gone.
    pub async fn run(mut self) {
        let outcome = self.run_inner().await;
        if let Err(e) = outcome {
            tracing::debug!(task = %self.id, error = %e, "task failed");
            self.output.control(StreamMessage::Error(Arc::new(e))).await;
        }
        if let Some(parts) = &self.parts {
            parts.finished(&self.id);
        }
    }

    async fn run_inner(&mut self) -> Result<Outcome> {
        loop {
            let gone = match self.gate.next().await {
                GateEvent::Batch(input, batch) => {
                    self.metrics
                        .rows_in
                        .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    if self.head.is_done() {
                        continue;
                    }
                    match self.head.process(input, batch)? {
                        Some(out) if out.num_rows() > 0 => !self.output.batch(out).await?,
                        _ => false,
                    }
                }
                GateEvent::Watermark(watermark) => {
                    let mut gone = false;
                    for out in self.head.on_watermark(watermark)? {
                        if out.num_rows() > 0 && !self.output.batch(out).await? {
                            gone = true;
                            break;
                        }
                    }
                    self.metrics.observe_watermark(watermark);
                    self.metrics
                        .state_bytes
                        .store(self.head.state_bytes() as u64, Ordering::Relaxed);
                    let passed = self.head.output_watermark(watermark);
                    gone || !self.output.watermark(passed).await?
                }
                GateEvent::Idle => !self.output.control(StreamMessage::Idle).await,
                GateEvent::Barrier(epoch) => {
                    if let Some(parts) = &self.parts {
                        let state = self.head.snapshot()?;
                        let part = CheckpointPart::Operator {
                            state,
                            key_groups: self.key_groups,
                        };
                        if !parts.send(epoch, &self.id, part) {
                            return Err(EngineError::Pipeline(
                                "the checkpoint coordinator is gone".into(),
                            ));
                        }
                    }
                    if !self.output.control(StreamMessage::Barrier(epoch)).await {
                        return Ok(Outcome::DownstreamGone);
                    }
                    if self.head.is_done() {
                        // Enough: the barrier lets the sources acknowledge what was consumed;
                        // then this task ends, and dropping its input stops its upstream.
                        self.output.control(StreamMessage::End).await;
                        return Ok(Outcome::Ended);
                    }
                    false
                }
                GateEvent::End => {
                    self.output.control(StreamMessage::End).await;
                    return Ok(Outcome::Ended);
                }
                GateEvent::Error(e) => {
                    self.output.control(StreamMessage::Error(e)).await;
                    return Ok(Outcome::Ended);
                }
            };
            if gone {
                return Ok(Outcome::DownstreamGone);
            }
        }
    }
}

/// The one instance handing a query's rows to its caller: batches and barriers go on to
/// `out` (whose reader completes the barriers); watermarks stay here.
pub async fn run_output_task(mut gate: InputGate, out: mpsc::Sender<StreamMessage>) {
    loop {
        let message = match gate.next().await {
            GateEvent::Batch(_, batch) => StreamMessage::Batch(batch),
            GateEvent::Watermark(_) | GateEvent::Idle => continue,
            GateEvent::Barrier(epoch) => StreamMessage::Barrier(epoch),
            GateEvent::End => {
                let _ = out.send(StreamMessage::End).await;
                return;
            }
            GateEvent::Error(e) => {
                let _ = out.send(StreamMessage::Error(e)).await;
                return;
            }
        };
        if out.send(message).await.is_err() {
            return;
        }
    }
}
