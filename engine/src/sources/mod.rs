//! Sources: tables read by the streaming runtime and by bounded DataFusion scans.

mod bounded_scan;
mod clients;
mod decode;
mod event_time;
mod pulsar_config;
mod query_commit;
mod read_stats;
mod reader;
mod source_task;
mod topics;
mod watermarks;

pub use bounded_scan::BoundedScan;
pub use clients::ClientPool;
pub use decode::{BadMessagePolicy, Decoded, SourceDecoder, SourceMetrics};
pub use event_time::{SharedWatermarkExpr, WatermarkExpr};
pub use pulsar_config::source_config;
pub use query_commit::QueryCommit;
pub use read_stats::ReadStats;
pub use reader::{ReadAck, ReadChunk, Reader, SplitAssignment};
pub use source_task::{BarrierPolicy, EventTimeSettings, SourceTask};
pub use topics::{ListedTopics, SourceWarning, topics_to_read};
pub use watermarks::WatermarkGenerator;
