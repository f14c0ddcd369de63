//! Sinks: where a job's rows go.

mod custom;
mod memory;
mod pulsar;
mod replay_guard;
mod task;
mod writer;

pub use custom::CustomSinkWriter;
pub use memory::MemorySinkWriter;
pub use pulsar::{ExactlyOnce, PulsarSinkWriter, SinkMetrics};
pub use replay_guard::{ReplayGuard, SharedReplayGuard};
pub use task::SinkTask;
pub use writer::{ExactlyOnceInstance, SinkWriter};
