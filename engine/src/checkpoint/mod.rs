//! Checkpoints: the durable snapshots (source positions, operator state, sink progress) a job
//! is restored from after a crash. The store writes them, the coordinator gathers their parts
//! as barriers pass, recovery reads the latest complete one back.

mod coordinator;
mod metadata;
mod recovery;
mod state;
mod store;

pub use coordinator::{
    CheckpointCoordinator, CheckpointMetrics, CheckpointPart, CheckpointPlan, Completion,
    PartReceiver, PartSender, part_channel,
};
pub use metadata::{
    CarriedReplays, CheckpointMetadata, OperatorBlob, SinkCheckpoint, SinkProgress,
    SourceCheckpoint, SourcePositions,
};
pub use recovery::{Restored, load_latest};
pub use state::OperatorState;
pub use store::{CheckpointId, CheckpointStore, CheckpointWriter, CompleteCheckpoint};
