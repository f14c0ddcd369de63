//! What flows between tasks: data and control, in order, in the same channel.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;

use super::Watermark;
use crate::error::EngineError;

/// Identifies a barrier: the job's checkpoint coordinator numbers them from 1 and injects
/// each into every source instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The epoch after this one.
    pub fn next(self) -> Epoch {
        Epoch(self.0 + 1)
    }
}

/// A message between tasks.
#[derive(Debug, Clone)]
pub enum StreamMessage {
    /// Rows.
    Batch(RecordBatch),
    /// Event time has reached this point: windows that end before it can fire. Sent only
    /// when it advances; [`Watermark::END`] when the sender's input ends.
    Watermark(Watermark),
    /// Every input of the sender is idle: until it sends rows or a watermark again, it does
    /// not hold its consumers' watermark back (Flink's idle watermark status).
    Idle,
    /// Everything before this point has been sent. A task with several inputs waits until
    /// each has delivered it (alignment), then snapshots and passes it on.
    Barrier(Epoch),
    /// No more messages from this sender.
    End,
    /// An upstream task failed; the job stops.
    Error(Arc<EngineError>),
}
