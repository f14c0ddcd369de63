//! Streaming operators. Each runs as a task between two bounded channels; the driver in
//! this file forwards control messages and calls the operator for data.

mod limit;
mod stateless;
pub mod window;

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;

pub use limit::LimitOperator;
pub use stateless::StatelessOperator;

use crate::checkpoint::{CheckpointPart, OperatorState, PartSender};
use crate::error::Result;
use crate::runtime::{StreamMessage, Watermark};

/// An operator's reaction to a batch.
pub trait Operator: Send + 'static {
    /// Short name for logs and errors.
    fn name(&self) -> &'static str;

    /// Processes one batch; `None` when nothing comes out of it.
    fn process(&mut self, batch: RecordBatch) -> Result<Option<RecordBatch>>;

    /// Event time has advanced: returns what this releases (fired windows), which is sent
    /// before the watermark is passed on.
    fn on_watermark(&mut self, _watermark: Watermark) -> Result<Vec<RecordBatch>> {
        Ok(Vec::new())
    }

    /// True once the operator needs no more input (a satisfied LIMIT).
    fn is_done(&self) -> bool {
        false
    }

    /// The operator's state at a barrier, for a checkpoint (stateless operators have none).
    fn snapshot(&mut self) -> Result<OperatorState> {
        Ok(OperatorState::default())
    }

    /// Puts back a state [`Operator::snapshot`] took, into a fresh operator, before any input.
    fn restore(&mut self, _state: OperatorState) -> Result<()> {
        Ok(())
    }
}

/// Runs `operator` between `input` and `output` until the end of the stream. In a
/// checkpointed job (`checkpoint` is its index and where parts go) it snapshots its state
/// at each barrier, before forwarding the barrier.
///
/// When the operator is done early, it keeps reading until the next barrier and forwards it
/// before ending, so the source can acknowledge what the query consumed; then it drops its
/// input, which stops everything upstream.
pub async fn run_operator(
    mut operator: impl Operator,
    mut input: mpsc::Receiver<StreamMessage>,
    output: mpsc::Sender<StreamMessage>,
    checkpoint: Option<(usize, PartSender)>,
) {
    while let Some(message) = input.recv().await {
        let forward = match message {
            StreamMessage::Batch(batch) => {
                if operator.is_done() {
                    continue;
                }
                match operator.process(batch) {
                    Ok(Some(out)) if out.num_rows() > 0 => Some(StreamMessage::Batch(out)),
                    Ok(_) => None,
                    Err(e) => Some(StreamMessage::Error(Arc::new(e))),
                }
            }
            StreamMessage::Watermark(watermark) => match operator.on_watermark(watermark) {
                Ok(outputs) => {
                    for out in outputs {
                        if out.num_rows() > 0
                            && output.send(StreamMessage::Batch(out)).await.is_err()
                        {
                            return;
                        }
                    }
                    Some(StreamMessage::Watermark(watermark))
                }
                Err(e) => Some(StreamMessage::Error(Arc::new(e))),
            },
            StreamMessage::Barrier(epoch) => {
                if let Some((index, parts)) = &checkpoint {
                    match operator.snapshot() {
                        Ok(state) => {
                            let part = CheckpointPart::Operator {
                                index: *index,
                                state,
                            };
                            if !parts.send(epoch, part) {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = output.send(StreamMessage::Error(Arc::new(e))).await;
                            return;
                        }
                    }
                }
                if output.send(StreamMessage::Barrier(epoch)).await.is_err() {
                    return;
                }
                if operator.is_done() {
                    let _ = output.send(StreamMessage::End).await;
                    return;
                }
                None
            }
            end @ (StreamMessage::End | StreamMessage::Error(_)) => {
                let _ = output.send(end).await;
                return;
            }
        };
        if let Some(message) = forward {
            let failed = matches!(message, StreamMessage::Error(_));
            if output.send(message).await.is_err() || failed {
                return;
            }
        }
    }
}
