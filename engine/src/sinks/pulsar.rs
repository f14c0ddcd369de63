//! Writing rows to a Pulsar table: payload through the table's format, the message key from
//! `key.fields` (or a `key` metadata column), event time and properties from metadata
//! columns. A barrier waits for the broker's confirmation of everything before it, and only
//! then lets the sources acknowledge their input: at-least-once delivery.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{Array, AsArray, MapArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};
use magnetar_connectors::UnixMillis;
use magnetar_connectors::format::{
    AvroEncoder, FormatOptions, JsonEncoder, PayloadEncoder, RawEncoder, encoder_for,
};
use magnetar_connectors::pulsar::{OutgoingMessage, PulsarClient, PulsarSink, SinkConfig};
use magnetar_connectors::schema::SchemaKind;
use magnetar_connectors::schema::binary::to_protocol;
use magnetar_sql::catalog::{ColumnSource, MetadataKey, TableDef};
use magnetar_sql::options::KeyFormat;

use super::replay_guard::{SharedReplayGuard, fingerprint, topic_ends};
use crate::checkpoint::{SinkCheckpoint, SinkProgress};
use crate::error::{EngineError, Result};
use crate::runtime::Epoch;

/// Counters of a sink, shared with `SHOW JOBS`.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    /// Messages the broker confirmed.
    pub messages_written: AtomicU64,
    /// Re-emitted messages dropped after a restart because the crashed run had written them.
    pub replays_dropped: AtomicU64,
}

/// How a checkpointed job's sink instance writes exactly once (see
/// [`super::replay_guard`]).
#[derive(Debug, Clone)]
pub struct ExactlyOnce {
    /// The instance's producer name, the same in every run, which marks its messages.
    pub producer_name: String,
    /// For reading the output topic's ends.
    pub client: Arc<PulsarClient>,
    /// The replays of a crashed run, shared by the sink's instances.
    pub guard: SharedReplayGuard,
    /// This instance's index.
    pub instance: usize,
}

/// Where a written message's key comes from: a non-NULL `key` metadata column wins, else
/// `key.fields`.
struct KeySource {
    /// A writable `key` metadata column.
    column: Option<usize>,
    /// `key.fields` with `key.format`.
    fields: Option<(Vec<usize>, KeyFormat)>,
}

/// Turns batches of a table's writable columns into messages and sends them.
pub struct PulsarSinkWriter {
    table: Arc<TableDef>,
    sink: PulsarSink,
    encoder: Box<dyn PayloadEncoder>,
    payload: Vec<usize>,
    payload_schema: Arc<Schema>,
    key: KeySource,
    event_time: Option<usize>,
    properties: Option<usize>,
    metrics: Arc<SinkMetrics>,
    /// Exactly-once: the shared guard and this instance's index.
    replay: Option<(SharedReplayGuard, usize)>,
    /// `sink.message-delay-interval`.
    delay: Option<std::time::Duration>,
    /// The writable `deliver_at` metadata column: each row's delivery time.
    deliver_at: Option<usize>,
    producer: Option<String>,
}

impl std::fmt::Debug for PulsarSinkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarSinkWriter")
            .field("table", &self.table.name)
            .finish()
    }
}

impl PulsarSinkWriter {
    /// Connects a producer for `table`, whose input batches have its writable columns.
    pub async fn connect(
        table: Arc<TableDef>,
        service_url: String,
        metrics: Arc<SinkMetrics>,
        exactly_once: Option<ExactlyOnce>,
    ) -> Result<Self> {
        let Some(options) = table.pulsar().cloned() else {
            return Err(EngineError::Internal(format!(
                "table '{}' is not a Pulsar table",
                table.name
            )));
        };
        let writable = table.writable_columns();
        let position = |name: &str| writable.iter().position(|c| c.field.name() == name);
        let mut payload = Vec::new();
        let mut key_column = None;
        let mut event_time = None;
        let mut deliver_at = None;
        let mut properties = None;
        for (i, column) in writable.iter().enumerate() {
            match &column.source {
                ColumnSource::Payload => payload.push(i),
                ColumnSource::Metadata { key, .. } => match key {
                    MetadataKey::Key => key_column = Some(i),
                    MetadataKey::EventTime => event_time = Some(i),
                    MetadataKey::DeliverAt => deliver_at = Some(i),
                    MetadataKey::Properties => properties = Some(i),
                    _ => {}
                },
            }
        }
        let fields = if options.key_fields.is_empty() {
            None
        } else {
            let mut indices = Vec::new();
            for f in &options.key_fields {
                indices.push(position(f).ok_or_else(|| {
                    EngineError::Internal(format!("key field '{f}' is not a writable column"))
                })?);
            }
            Some((indices, options.key_format))
        };
        let key = KeySource {
            column: key_column,
            fields,
        };
        let payload_schema = Arc::new(Schema::new(
            payload
                .iter()
                .map(|&i| writable[i].field.clone())
                .collect::<Vec<_>>(),
        ));
        let format = options.format;
        let encoder: Box<dyn PayloadEncoder> = match table.value_schema.as_deref() {
            None => encoder_for(
                format.kind,
                payload_schema.clone(),
                FormatOptions {
                    ignore_parse_errors: format.ignore_parse_errors,
                    csv_delimiter: format.csv_delimiter,
                },
            )?,
            // Write by the topic's registry schema, so its typed consumers read the output.
            Some(info) => match &info.kind {
                SchemaKind::Avro => Box::new(AvroEncoder::new(&payload_schema, Some(&info.data))?),
                SchemaKind::Json => Box::new(JsonEncoder::new().with_schema(&payload_schema)),
                SchemaKind::String | SchemaKind::None => {
                    Box::new(RawEncoder::new(payload_schema.clone())?)
                }
                other => {
                    return Err(EngineError::Sql(magnetar_sql::SqlError::unsupported(
                        format!(
                            "table '{}': writing {} schemas is not supported; declare the columns with 'format' = 'avro' or 'json'",
                            table.name,
                            other.name()
                        ),
                        None,
                    )));
                }
            },
        };
        let topic = match options.topics.as_slice() {
            [one] if options.topic_patterns.is_empty() => one.clone(),
            _ if !options.topic_patterns.is_empty() => {
                return Err(EngineError::Sql(magnetar_sql::SqlError::unsupported(
                    format!(
                        "table '{}' reads a topic pattern; a sink writes to exactly one named topic",
                        table.name
                    ),
                    None,
                )));
            }
            _ => {
                return Err(EngineError::Sql(magnetar_sql::SqlError::unsupported(
                    format!(
                        "table '{}' lists {} topics; a sink writes to exactly one",
                        table.name,
                        options.topics.len()
                    ),
                    None,
                )));
            }
        };
        let topic_name = topic.clone();
        let mut sink = PulsarSink::connect(SinkConfig {
            service_url,
            topic,
            producer_name: exactly_once.as_ref().map(|e| e.producer_name.clone()),
            routing: options.routing,
            // Delayed messages go unbatched: a batch has one delivery time.
            // (pulsar-rs would drop a batched message's deliverAtTime.)
            batch_size: if options.message_delay.is_some() || deliver_at.is_some() {
                1
            } else {
                options.client.batch_messages
            },
            schema: encoder
                .schema_definition()
                .map(|(kind, definition)| to_protocol(&kind, &table.name, &definition)),
            security: options.client.security.clone(),
            compression: options.client.compression,
        })
        .await?;
        let (replay, producer) = match exactly_once {
            None => (None, None),
            Some(e) => {
                // Where this run's output begins: a later restart reads its tail from here
                // (what earlier runs wrote after the checkpoint is in the shared guard).
                sink.assume_confirmed(&topic_ends(e.client, &topic_name).await?);
                (Some((e.guard, e.instance)), Some(e.producer_name))
            }
        };
        Ok(Self {
            replay,
            producer,
            table,
            sink,
            encoder,
            payload,
            payload_schema,
            key,
            event_time,
            properties,
            metrics,
            delay: options.message_delay,
            deliver_at,
        })
    }

    /// Queues one message per row.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let payload_batch = RecordBatch::try_new(
            self.payload_schema.clone(),
            self.payload
                .iter()
                .map(|&i| batch.column(i).clone())
                .collect(),
        )?;
        let payloads = self.encoder.encode(&payload_batch)?;
        let keys = self.keys(batch)?;
        let millis = |column: Option<usize>| -> Result<_> {
            Ok(match column {
                Some(i) => Some(
                    cast(
                        batch.column(i),
                        &DataType::Timestamp(TimeUnit::Millisecond, None),
                    )?
                    .as_primitive::<datafusion::arrow::datatypes::TimestampMillisecondType>()
                    .clone(),
                ),
                None => None,
            })
        };
        let event_times = millis(self.event_time)?;
        let deliver_times = millis(self.deliver_at)?;
        let properties = match self.properties {
            Some(i) => Some(
                batch
                    .column(i)
                    .as_any()
                    .downcast_ref::<MapArray>()
                    .cloned()
                    .ok_or_else(|| {
                        EngineError::Internal("properties column is not a map".into())
                    })?,
            ),
            None => None,
        };
        for (row, payload) in payloads.into_iter().enumerate() {
            let event_time = event_times
                .as_ref()
                .filter(|c| c.is_valid(row))
                .map(|c| UnixMillis(c.value(row).max(0) as u64));
            let message = OutgoingMessage {
                payload,
                key: keys
                    .as_ref()
                    .and_then(|k| k.is_valid(row).then(|| k.value(row).to_string())),
                properties: properties
                    .as_ref()
                    .map(|p| map_row(p, row))
                    .unwrap_or_default(),
                event_time,
                // The row's own delivery time, else the table's delay from now.
                deliver_at: deliver_times
                    .as_ref()
                    .filter(|c| c.is_valid(row))
                    .map(|c| UnixMillis(c.value(row).max(0) as u64))
                    .or_else(|| {
                        self.delay.map(|d| {
                            UnixMillis(UnixMillis::now().0.saturating_add(d.as_millis() as u64))
                        })
                    }),
            };
            if let Some((guard, instance)) = &self.replay {
                let mut guard = guard.lock().unwrap_or_else(|p| p.into_inner());
                if guard.remaining() > 0 {
                    let fp = fingerprint(
                        &message.payload,
                        message.key.as_deref(),
                        message.event_time.map(|t| t.0),
                        message
                            .properties
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str())),
                    );
                    if guard.take(*instance, fp) {
                        self.metrics.replays_dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            }
            self.sink.send(message).await?;
        }
        Ok(())
    }

    fn keys(&self, batch: &RecordBatch) -> Result<Option<StringArray>> {
        let as_strings = |array: &dyn Array| -> Result<StringArray> {
            let c = cast(array, &DataType::Utf8)?;
            Ok(c.as_string::<i32>().clone())
        };
        let from_fields = match &self.key.fields {
            None => None,
            Some((indices, KeyFormat::Raw)) => match indices.as_slice() {
                [i] => Some(as_strings(batch.column(*i))?),
                _ => None,
            },
            Some((indices, KeyFormat::Json)) => {
                let key_batch = batch.project(indices)?;
                let rows = JsonEncoder::new().encode(&key_batch)?;
                Some(StringArray::from_iter_values(
                    rows.into_iter()
                        .map(|r| String::from_utf8_lossy(&r).into_owned()),
                ))
            }
        };
        let from_column = match self.key.column {
            Some(i) => Some(as_strings(batch.column(i))?),
            None => None,
        };
        Ok(match (from_column, from_fields) {
            (Some(column), Some(fields)) => Some(
                (0..column.len())
                    .map(|r| {
                        if column.is_valid(r) {
                            Some(column.value(r))
                        } else {
                            fields.is_valid(r).then(|| fields.value(r))
                        }
                    })
                    .collect(),
            ),
            (column, fields) => column.or(fields),
        })
    }

    /// Per output partition, the last entry the broker confirmed.
    pub fn progress(&self) -> SinkProgress {
        self.sink
            .confirmed()
            .into_iter()
            .filter_map(|(topic, entry)| Some((topic, entry?.to_string())))
            .collect()
    }

    /// The instance's part of barrier `epoch` (after [`Self::flush`]).
    pub fn checkpoint(&self, epoch: Epoch) -> SinkCheckpoint {
        let replays = self.replay.as_ref().and_then(|(guard, instance)| {
            guard
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .barrier(*instance, epoch)
        });
        SinkCheckpoint {
            producer: self.producer.clone(),
            progress: self.progress(),
            replays,
        }
    }

    /// The instance ended: the shared guard no longer waits for its barriers.
    fn leave_guard(&self) {
        if let Some((guard, instance)) = &self.replay {
            guard
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .finished(*instance);
        }
    }

    /// Waits until the broker confirmed every queued message.
    pub async fn flush(&mut self) -> Result<()> {
        let n = self.sink.flush().await?;
        self.metrics
            .messages_written
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Flushes and closes the producer.
    pub async fn close(mut self) -> Result<()> {
        self.leave_guard();
        self.flush().await?;
        Ok(self.sink.close().await?)
    }
}

fn map_row(map: &MapArray, row: usize) -> HashMap<String, String> {
    if map.is_null(row) {
        return HashMap::new();
    }
    let entries = map.value(row);
    let (Ok(keys), Ok(values)) = (
        cast(entries.column(0), &DataType::Utf8),
        cast(entries.column(1), &DataType::Utf8),
    ) else {
        return HashMap::new();
    };
    let (keys, values) = (keys.as_string::<i32>(), values.as_string::<i32>());
    (0..keys.len())
        .filter(|&i| keys.is_valid(i) && values.is_valid(i))
        .map(|i| (keys.value(i).to_string(), values.value(i).to_string()))
        .collect()
}
