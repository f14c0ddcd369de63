//! Apache Pulsar: our consumer-side protocol client, the producer, and pulsar-lite.

mod auth;
pub(crate) mod chunks;
mod client;
mod compression;
mod connection;
mod consumer;
mod entry;
mod frame;
pub mod lite;
mod oauth2;
mod positions;
mod sink;
mod source;
mod tls;
mod topic;
mod topic_discovery;
mod topic_pattern;

pub use auth::Authentication;
pub use client::{ClientConfig, PulsarClient};
pub use compression::{PayloadCodec, decompress, max_ratio};
pub use connection::{ClientSecurity, Connection, ConsumerEvent, RoutedEvent, Timeouts};
pub use consumer::{Consumer, InitialPosition, LastMessage, SubscribeOptions, SubscriptionType};
pub use entry::{ParsedEntry, ReceivedMessage, messages_of_entry, parse_entry};
pub use frame::{Frame, FrameCodec};
pub use lite::{LiteOptions, PulsarLite};
pub use oauth2::OAuth2Settings;
pub use positions::{PositionFile, PositionKey, PositionStore};
pub use sink::{OutgoingMessage, PulsarSink, RoutingMode, SinkConfig, java_key_partition};
pub use source::{
    AckToken, MalformedEntry, PartitionPosition, PartitionShare, PulsarSource, SourceChunk,
    SourceConfig, StartPosition, StopPosition, TieredSource,
};
pub use tls::TlsSettings;
pub use topic::TopicName;
pub use topic_discovery::{TopicDiscovery, TopicLister};
pub use topic_pattern::TopicPattern;
