//! What a query's or job's sources have read: totals over their counters.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use magnetar_connectors::tiered::BackfillSnapshot;

use super::decode::SourceMetrics;

/// Reads of a query or job so far (every source together).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Messages read (after deduplication), from the broker and from tiered storage.
    pub messages_read: u64,
    /// Of those, messages read from offloaded ledgers in object storage.
    pub from_tiered_storage: u64,
    /// Redeliveries dropped because they had been read already.
    pub duplicates_dropped: u64,
    /// Backfill progress from tiered storage.
    pub backfill: BackfillSnapshot,
}

impl ReadStats {
    /// Messages read from the broker.
    pub fn from_broker(&self) -> u64 {
        self.messages_read - self.from_tiered_storage.min(self.messages_read)
    }

    /// Totals over some sources' counters.
    pub fn of(sources: &[Arc<SourceMetrics>]) -> ReadStats {
        sources
            .iter()
            .fold(ReadStats::default(), |acc, m| ReadStats {
                messages_read: acc.messages_read + m.messages_read.load(Ordering::Relaxed),
                from_tiered_storage: acc.from_tiered_storage
                    + m.messages_from_tiered_storage.load(Ordering::Relaxed),
                duplicates_dropped: acc.duplicates_dropped
                    + m.duplicates_dropped.load(Ordering::Relaxed),
                backfill: acc.backfill.merge(m.backfill.snapshot()),
            })
    }
}
