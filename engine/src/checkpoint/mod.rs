//! Checkpoints: the durable snapshots (source positions, operator state, sink progress) a job
//! is restored from after a crash. This module holds the store; barriers and snapshots
//! reach it through the runtime.

mod state;
mod store;

pub use state::OperatorState;
pub use store::{CheckpointId, CheckpointStore, CheckpointWriter, CompleteCheckpoint};
