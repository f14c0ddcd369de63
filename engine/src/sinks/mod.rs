//! Sinks: where a job's rows go.

mod memory;
mod pulsar;
mod writer;

pub use memory::MemorySinkWriter;
pub use pulsar::{PulsarSinkWriter, SinkMetrics};
pub use writer::{SinkWriter, run_sink_task};
