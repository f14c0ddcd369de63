//! What flows between operators: data and control, in order, in the same channel.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;

use super::Watermark;
use crate::error::EngineError;

/// Identifies a barrier; barriers are numbered from 1 in the order a source emits them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(pub u64);

/// A message between operators.
#[derive(Debug, Clone)]
pub enum StreamMessage {
    /// Rows.
    Batch(RecordBatch),
    /// Event time has reached this point: windows that end before it can fire. Sources
    /// emit a watermark only when it advances, and [`Watermark::END`] when their input ends.
    Watermark(Watermark),
    /// Everything before this point has been sent; once the sink has made it durable, the
    /// source may acknowledge the input it read before the barrier.
    Barrier(Epoch),
    /// No more messages.
    End,
    /// An upstream operator failed; the pipeline stops.
    Error(Arc<EngineError>),
}
