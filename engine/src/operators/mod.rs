//! Streaming operators. An operator is called with `(input, batch)`, with the watermark when
//! its task's watermark advances (the least over its inputs), and at barriers for a snapshot;
//! the task around it (`runtime::task`) does the receiving, aligning and sending.

pub mod interval_join;
mod join_keys;
mod join_output;
mod join_snapshot;
mod limit;
pub mod match_recognize;
mod registry;
mod stateless;
pub mod window;
pub mod window_join;

use datafusion::arrow::record_batch::RecordBatch;

pub use limit::LimitOperator;
pub use registry::{OperatorContext, instantiate};
pub use stateless::StatelessOperator;

use crate::checkpoint::OperatorState;
use crate::error::Result;
use crate::runtime::Watermark;

/// An operator's reaction to its input.
pub trait Operator: Send + 'static {
    /// Short name for logs and errors.
    fn name(&self) -> &'static str;

    /// Processes one batch of input `input`; `None` when nothing comes out of it.
    fn process(&mut self, input: usize, batch: RecordBatch) -> Result<Option<RecordBatch>>;

    /// Event time has advanced: returns what this releases (fired windows), which is sent
    /// before the watermark is passed on.
    fn on_watermark(&mut self, _watermark: Watermark) -> Result<Vec<RecordBatch>> {
        Ok(Vec::new())
    }

    /// The watermark to pass on after `watermark` (an interval join holds it back by how
    /// far behind its output rows' times can be).
    fn output_watermark(&self, watermark: Watermark) -> Watermark {
        watermark
    }

    /// True once the operator needs no more input (a satisfied LIMIT).
    fn is_done(&self) -> bool {
        false
    }

    /// The operator's state at a barrier, for a checkpoint (stateless operators have none).
    /// A keyed operator tags each row of its batches with its key group (see
    /// `runtime::key_groups`), so that a restore at another parallelism can split it.
    fn snapshot(&mut self) -> Result<OperatorState> {
        Ok(OperatorState::default())
    }

    /// Puts back a state [`Operator::snapshot`] took, into a fresh operator, before any
    /// input. Called once per snapshot that holds some of this instance's key groups (after
    /// a rescale, several), with only those key groups' rows and without the tag column.
    fn restore(&mut self, _state: OperatorState) -> Result<()> {
        Ok(())
    }

    /// Approximate bytes of state held (for `SHOW JOBS` and `system.job_tasks`).
    fn state_bytes(&self) -> usize {
        0
    }
}
