//! Sinks: where a job's rows go.

mod custom;
mod memory;
mod pulsar;
mod replay_guard;
mod writer;

pub use custom::CustomSinkWriter;
pub use memory::MemorySinkWriter;
pub use pulsar::{ExactlyOnce, PulsarSinkWriter, SinkMetrics};
pub use replay_guard::ReplayGuard;
pub use writer::{BarrierReport, SinkWriter, run_sink_task};
