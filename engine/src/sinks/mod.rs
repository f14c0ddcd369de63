//! Sinks: where a job's rows go.

mod pulsar;

pub use pulsar::{PulsarSinkWriter, SinkMetrics, run_sink_task};
