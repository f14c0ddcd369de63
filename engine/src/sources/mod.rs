//! Sources: Pulsar tables read by the streaming runtime and by bounded DataFusion scans.

mod bounded_scan;
mod clients;
mod decode;
mod pulsar_task;

pub use bounded_scan::{BoundedPulsarScan, QueryCommit};
pub use clients::ClientPool;
pub use decode::{BadMessagePolicy, SourceDecoder, SourceMetrics};
pub use pulsar_task::{BarrierPolicy, PulsarSourceTask, source_config};
