//! The streaming runtime: operator tasks connected by bounded channels, with barriers that
//! tell sources what the end of the pipeline has made safe.

mod clock;
mod message;
mod output;
mod pipeline;
mod settle;
mod subplan_scan;
mod time;

pub use clock::{Clock, ManualClock};
pub use message::{Epoch, StreamMessage};
pub(crate) use output::unwrap_external;
pub use output::{QueryStream, ReadStatsHandle};
pub use pipeline::{
    Pipeline, PipelineCheckpoint, PipelineContext, PipelineMetrics, build_pipeline, service_url_for,
};
pub use settle::{SettleHandle, SettleRequest, Settled, SourceSettle};
pub use subplan_scan::SubplanTable;
pub use time::{EventTime, Watermark};

/// Capacity of the channel in front of each operator (in messages); backpressure from a
/// slow operator reaches the source, which then stops granting flow permits.
pub const CHANNEL_CAPACITY: usize = 16;
