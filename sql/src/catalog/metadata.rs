//! Pulsar message metadata that a table can expose as columns (`METADATA FROM 'key'`).

use datafusion::arrow::datatypes::{DataType, TimeUnit};

/// A metadata key, by the name Flink's Pulsar connector uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetadataKey {
    /// The partition topic the message was read from.
    Topic,
    /// `ledger:entry:partition[:batch]`.
    MessageId,
    /// The producer's sequence id.
    SequenceId,
    /// Broker publish time.
    PublishTime,
    /// Producer-set event time (NULL when unset).
    EventTime,
    /// The producer's name.
    ProducerName,
    /// The message key.
    Key,
    /// User properties.
    Properties,
    /// Delayed delivery time (`deliverAtTime`); NULL when the message was not delayed.
    DeliverAt,
}

impl MetadataKey {
    /// Every key.
    pub const ALL: [MetadataKey; 9] = [
        MetadataKey::Topic,
        MetadataKey::MessageId,
        MetadataKey::SequenceId,
        MetadataKey::PublishTime,
        MetadataKey::EventTime,
        MetadataKey::ProducerName,
        MetadataKey::Key,
        MetadataKey::Properties,
        MetadataKey::DeliverAt,
    ];

    /// The key's name.
    pub fn name(self) -> &'static str {
        match self {
            MetadataKey::Topic => "topic",
            MetadataKey::MessageId => "message_id",
            MetadataKey::SequenceId => "sequence_id",
            MetadataKey::PublishTime => "publish_time",
            MetadataKey::EventTime => "event_time",
            MetadataKey::ProducerName => "producer_name",
            MetadataKey::Key => "key",
            MetadataKey::Properties => "properties",
            MetadataKey::DeliverAt => "deliver_at",
        }
    }

    /// Parses a key name.
    pub fn parse(name: &str) -> Option<MetadataKey> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The type the engine produces; a declared type must be castable from it.
    pub fn natural_type(self) -> DataType {
        match self {
            MetadataKey::Topic
            | MetadataKey::MessageId
            | MetadataKey::ProducerName
            | MetadataKey::Key => DataType::Utf8,
            MetadataKey::SequenceId => DataType::Int64,
            MetadataKey::PublishTime | MetadataKey::EventTime | MetadataKey::DeliverAt => {
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
            }
            MetadataKey::Properties => DataType::Map(
                std::sync::Arc::new(datafusion::arrow::datatypes::Field::new(
                    "entries",
                    DataType::Struct(
                        vec![
                            datafusion::arrow::datatypes::Field::new("key", DataType::Utf8, false),
                            datafusion::arrow::datatypes::Field::new("value", DataType::Utf8, true),
                        ]
                        .into(),
                    ),
                    false,
                )),
                false,
            ),
        }
    }

    /// Whether a sink can write this metadata.
    pub fn is_writable(self) -> bool {
        matches!(
            self,
            MetadataKey::Key
                | MetadataKey::EventTime
                | MetadataKey::Properties
                | MetadataKey::DeliverAt
        )
    }

    /// Checks that a declared column type can hold this metadata.
    pub fn check_type(self, declared: &DataType) -> Result<(), String> {
        let natural = self.natural_type();
        let ok = match self {
            MetadataKey::Properties => matches!(declared, DataType::Map(..)),
            _ => datafusion::arrow::compute::can_cast_types(&natural, declared),
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "'{}' is {natural} and cannot be read as {declared}",
                self.name()
            ))
        }
    }
}
