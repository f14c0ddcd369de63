//! A sink task: one instance of a sink node. It writes what its input gate delivers, and at
//! each aligned barrier waits until everything before it is durable, then reports its
//! progress to the coordinator (which completes the barrier once every instance has).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::SinkWriter;
use crate::checkpoint::{CheckpointPart, PartSender};
use crate::error::{EngineError, Result};
use crate::runtime::{GateEvent, InputGate, TaskId, TaskMetrics};

/// One instance of a sink node.
pub struct SinkTask {
    /// Who it is.
    pub id: TaskId,
    /// Its inputs.
    pub gate: InputGate,
    /// The table's writer.
    pub writer: SinkWriter,
    /// Where its part of each barrier goes.
    pub parts: PartSender,
    /// Its counters.
    pub metrics: Arc<TaskMetrics>,
}

impl SinkTask {
    /// Runs until the input ends (then closes the writer) or fails.
    pub async fn run(self) -> Result<()> {
        let SinkTask {
            id,
            mut gate,
            mut writer,
            parts,
            metrics,
        } = self;
        let result = async {
            loop {
                match gate.next().await {
                    GateEvent::Batch(_, batch) => {
                        let rows = batch.num_rows() as u64;
                        writer.write(&batch).await?;
                        metrics.rows_in.fetch_add(rows, Ordering::Relaxed);
                        metrics.rows_out.fetch_add(rows, Ordering::Relaxed);
                    }
                    GateEvent::Watermark(w) => metrics.observe_watermark(w),
                    GateEvent::Idle => {}
                    GateEvent::Barrier(epoch) => {
                        writer.flush().await?;
                        let part = CheckpointPart::Sink(writer.checkpoint(epoch));
                        if !parts.send(epoch, &id, part) {
                            return Err(EngineError::Pipeline(
                                "the checkpoint coordinator is gone".into(),
                            ));
                        }
                    }
                    GateEvent::End => return writer.close().await,
                    GateEvent::Error(e) => return Err(EngineError::from_shared(e)),
                }
            }
        }
        .await;
        parts.finished(&id);
        result
    }
}
