//! Tiered storage: Pulsar ledgers offloaded to object storage (S3, GCS, Azure, a local
//! directory), read straight from there for backfill, without loading the brokers.
//!
//! The layout is the jclouds offloader's (`shared/reference/pulsar-storage-formats.md`):
//! an index object and a data object per ledger. [`TieredStorage`] finds the offloaded
//! ledgers of a topic (through the admin REST API, or by listing the bucket), and
//! [`backfill`] streams their messages with range GETs, decoding in parallel with I/O.

pub mod backfill;
pub mod data_block;
pub mod discovery;
pub mod index;
pub mod ledger_metadata;
pub mod object_keys;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

pub use backfill::{BackfillEvent, BackfillHandle, BackfillRequest, spawn_backfill};
pub use discovery::{OffloadedLedger, TieredStorage};
pub use index::OffloadIndex;

/// Corrupt or inconsistent tiered-storage data, with the object and byte offset it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TieredError {
    /// The object (key) read.
    pub object: String,
    /// Byte offset in the object.
    pub offset: u64,
    /// What is wrong.
    pub reason: String,
}

impl TieredError {
    /// An error at `offset` of `object`.
    pub fn new(object: &str, offset: u64, reason: String) -> TieredError {
        TieredError {
            object: object.to_string(),
            offset,
            reason,
        }
    }
}

impl fmt::Display for TieredError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tiered storage object '{}' at byte {}: {}",
            self.object, self.offset, self.reason
        )
    }
}

impl std::error::Error for TieredError {}

/// How far a backfill from tiered storage is; shared with whoever shows progress.
#[derive(Debug, Default)]
pub struct BackfillProgress {
    /// Offloaded ledgers to read.
    pub ledgers_total: AtomicU64,
    /// Offloaded ledgers read completely.
    pub ledgers_done: AtomicU64,
    /// Bytes of data objects to read.
    pub bytes_total: AtomicU64,
    /// Bytes of data objects read so far.
    pub bytes_read: AtomicU64,
    /// Messages read from tiered storage.
    pub messages: AtomicU64,
    /// Partitions still backfilling.
    pub partitions_active: AtomicU64,
}

/// A point-in-time copy of [`BackfillProgress`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackfillSnapshot {
    /// Offloaded ledgers to read.
    pub ledgers_total: u64,
    /// Offloaded ledgers read completely.
    pub ledgers_done: u64,
    /// Bytes to read.
    pub bytes_total: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Messages read.
    pub messages: u64,
    /// Partitions still backfilling.
    pub partitions_active: u64,
}

impl BackfillProgress {
    /// The current figures.
    pub fn snapshot(&self) -> BackfillSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BackfillSnapshot {
            ledgers_total: get(&self.ledgers_total),
            ledgers_done: get(&self.ledgers_done),
            bytes_total: get(&self.bytes_total),
            bytes_read: get(&self.bytes_read),
            messages: get(&self.messages),
            partitions_active: get(&self.partitions_active),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl BackfillSnapshot {
    /// Sums two snapshots (several sources of one query).
    pub fn merge(self, other: BackfillSnapshot) -> BackfillSnapshot {
        BackfillSnapshot {
            ledgers_total: self.ledgers_total + other.ledgers_total,
            ledgers_done: self.ledgers_done + other.ledgers_done,
            bytes_total: self.bytes_total + other.bytes_total,
            bytes_read: self.bytes_read + other.bytes_read,
            messages: self.messages + other.messages,
            partitions_active: self.partitions_active + other.partitions_active,
        }
    }
}
