//! The streaming runtime: a job graph's nodes run as parallel task instances connected by
//! bounded channels (exchanges), with barriers injected into every source and aligned by
//! every task with several inputs, and watermarks merged by minimum.

mod barriers;
mod clock;
mod dispatch;
mod gate;
mod graph;
mod key_groups;
mod message;
mod output;
mod subplan_scan;
mod task;
mod time;

pub use barriers::{BarrierInjector, Injection};
pub use clock::{Clock, ManualClock};
pub use dispatch::{Branch, Exchange, TaskOutput, partition};
pub use gate::{GateEvent, InputChannel, InputGate};
pub use graph::{
    GraphContext, GraphMetrics, GraphMode, RunningGraph, node_instances, service_url_for,
    start_graph,
};
pub use key_groups::{
    DEFAULT_MAX_PARALLELISM, KEY_GROUP_COLUMN, KeyGroup, KeyGroupRange, KeyHasher, instance_of,
};
pub use message::{Epoch, StreamMessage};
pub(crate) use output::unwrap_external;
pub use output::{QueryStream, ReadStatsHandle};
pub use subplan_scan::SubplanTable;
pub use task::{OperatorTask, TaskId, TaskMetrics, run_output_task};
pub use time::{EventTime, Watermark};

/// Capacity of the channel between two task instances (in messages); backpressure from a
/// slow task reaches the sources, which then stop granting flow permits.
pub const CHANNEL_CAPACITY: usize = 16;
