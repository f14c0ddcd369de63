//! Magnetar's connectors: reading and writing Apache Pulsar topics, and message formats.
//!
//! This crate knows nothing of SQL. Its Pulsar consumer is our own, built on pulsar-rs's
//! public protocol types, because pulsar-rs 6.9.1 cannot consume from pulsar-lite; see
//! `README.md` in this directory for that and the other broker facts we work around.

pub mod admin;
pub mod error;
pub mod file;
pub mod format;
pub mod memory;
pub mod message_id;
pub mod object_url;
pub mod pulsar;
pub mod redact;
pub mod schema;
pub mod tiered;
pub mod time;

pub use error::{ConnectorError, Result};
pub use message_id::{EntryPosition, MessageId, PartitionIndex};
pub use time::UnixMillis;
