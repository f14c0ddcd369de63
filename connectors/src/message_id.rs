//! Pulsar message ids: where a message sits in a topic partition.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::error::ConnectorError;

/// Index of a topic partition; `-1` for a non-partitioned topic, as in Pulsar.
pub type PartitionIndex = i32;

/// A message's position: ledger and entry, the partition it belongs to, and its index in a batch.
///
/// Ordering is by (ledger, entry, batch index) and is only meaningful within one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageId {
    /// BookKeeper ledger id.
    pub ledger_id: u64,
    /// Entry id within the ledger.
    pub entry_id: u64,
    /// Partition index, `-1` for non-partitioned topics.
    pub partition: PartitionIndex,
    /// Index within a batched entry, `-1` for a message that was not batched.
    pub batch_index: i32,
}

impl MessageId {
    /// The id of a non-batched message.
    pub fn new(ledger_id: u64, entry_id: u64, partition: PartitionIndex) -> Self {
        Self {
            ledger_id,
            entry_id,
            partition,
            batch_index: -1,
        }
    }

    /// The entry this message was stored in.
    pub fn entry(&self) -> EntryPosition {
        EntryPosition {
            ledger_id: self.ledger_id,
            entry_id: self.entry_id,
        }
    }

    /// Compares positions within a partition (ledger, entry, batch index).
    pub fn cmp_position(&self, other: &MessageId) -> Ordering {
        (self.ledger_id, self.entry_id, self.batch_index).cmp(&(
            other.ledger_id,
            other.entry_id,
            other.batch_index,
        ))
    }

    /// Converts to the protocol's `MessageIdData`.
    pub fn to_proto(&self) -> pulsar::proto::MessageIdData {
        pulsar::proto::MessageIdData {
            ledger_id: self.ledger_id,
            entry_id: self.entry_id,
            partition: Some(self.partition),
            batch_index: (self.batch_index >= 0).then_some(self.batch_index),
            ..Default::default()
        }
    }

    /// Converts from the protocol's `MessageIdData`.
    pub fn from_proto(id: &pulsar::proto::MessageIdData) -> Self {
        Self {
            ledger_id: id.ledger_id,
            entry_id: id.entry_id,
            partition: id.partition.unwrap_or(-1),
            batch_index: id.batch_index.unwrap_or(-1),
        }
    }
}

impl fmt::Display for MessageId {
    /// Java's string forms: `L:E:P`, and `L:E:P:B` for batched messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.batch_index >= 0 {
            write!(
                f,
                "{}:{}:{}:{}",
                self.ledger_id, self.entry_id, self.partition, self.batch_index
            )
        } else {
            write!(f, "{}:{}:{}", self.ledger_id, self.entry_id, self.partition)
        }
    }
}

impl FromStr for MessageId {
    type Err = ConnectorError;

    /// Parses `ledger:entry:partition` or `ledger:entry:partition:batch`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| ConnectorError::InvalidMessageId {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = text.trim().split(':').collect();
        if !(parts.len() == 3 || parts.len() == 4) {
            return Err(invalid(
                "expected ledgerId:entryId:partition (or ledgerId:entryId:partition:batchIndex)",
            ));
        }
        let ledger_id = parts[0]
            .parse::<u64>()
            .map_err(|_| invalid("ledger id is not a non-negative integer"))?;
        let entry_id = parts[1]
            .parse::<u64>()
            .map_err(|_| invalid("entry id is not a non-negative integer"))?;
        let partition = parts[2]
            .parse::<i32>()
            .ok()
            .filter(|p| *p >= -1)
            .ok_or_else(|| invalid("partition is not -1 or a partition index"))?;
        let batch_index = match parts.get(3) {
            Some(b) => b
                .parse::<i32>()
                .ok()
                .filter(|b| *b >= -1)
                .ok_or_else(|| invalid("batch index is not -1 or a batch position"))?,
            None => -1,
        };
        Ok(Self {
            ledger_id,
            entry_id,
            partition,
            batch_index,
        })
    }
}

/// A ledger entry's position within a partition; ordered as the broker stores entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryPosition {
    /// BookKeeper ledger id.
    pub ledger_id: u64,
    /// Entry id within the ledger.
    pub entry_id: u64,
}

impl FromStr for EntryPosition {
    type Err = String;

    /// `ledgerId:entryId`, as [`EntryPosition`]'s `Display` writes it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split_once(':')
            .and_then(|(l, e)| {
                Some(EntryPosition {
                    ledger_id: l.trim().parse().ok()?,
                    entry_id: e.trim().parse().ok()?,
                })
            })
            .ok_or_else(|| format!("'{text}' is not a position (ledgerId:entryId)"))
    }
}

impl fmt::Display for EntryPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ledger_id, self.entry_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_java_forms() {
        let id: MessageId = "12:34:-1".parse().expect("valid id");
        assert_eq!(id, MessageId::new(12, 34, -1));
        assert_eq!(id.to_string(), "12:34:-1");
        let batched: MessageId = "1:2:3:4".parse().expect("valid id");
        assert_eq!(batched.batch_index, 4);
        assert_eq!(batched.to_string(), "1:2:3:4");
    }

    #[test]
    fn rejects_malformed_ids_with_reason() {
        for bad in ["", "1:2", "a:1:0", "1:-2:0", "1:2:-7", "1:2:3:4:5"] {
            let err = bad.parse::<MessageId>().expect_err(bad).to_string();
            assert!(err.contains("invalid message id"), "{bad}: {err}");
        }
    }

    #[test]
    fn orders_within_a_partition_by_entry_then_batch() {
        let a = MessageId {
            batch_index: 5,
            ..MessageId::new(1, 1, 0)
        };
        let b = MessageId::new(1, 2, 0);
        assert_eq!(a.cmp_position(&b), Ordering::Less);
        assert_eq!(b.cmp_position(&a), Ordering::Greater);
        assert!(a.entry() < b.entry());
    }

    #[test]
    fn converts_to_and_from_the_protocol() {
        let id = MessageId {
            batch_index: 3,
            ..MessageId::new(7, 8, 2)
        };
        assert_eq!(MessageId::from_proto(&id.to_proto()), id);
    }
}
