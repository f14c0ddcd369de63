//! Messages to Arrow batches in a table's (projected) schema: payload columns through the
//! table's format, metadata columns from Pulsar's message metadata. Bad messages follow the
//! table's policy: fail the query naming topic and message id, or skip and count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{
    ArrayRef, Int64Builder, MapBuilder, MapFieldNames, RecordBatch, RecordBatchOptions,
    StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use magnetar_connectors::format::{PayloadDecoder, decoder_for};
use magnetar_connectors::pulsar::{ReceivedMessage, SourceChunk};
use magnetar_sql::catalog::{ColumnSource, MetadataKey, TableDef};

use crate::error::{EngineError, Result};

/// Counters of a source, shared with `SHOW JOBS`.
#[derive(Debug, Default)]
pub struct SourceMetrics {
    /// Messages read from the broker (after deduplication).
    pub messages_read: AtomicU64,
    /// Rows produced.
    pub rows_out: AtomicU64,
    /// Bad messages skipped under `json.ignore-parse-errors`.
    pub messages_skipped: AtomicU64,
    /// Redelivered messages dropped because they were read already.
    pub duplicates_dropped: AtomicU64,
}

/// What to do with a message that cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadMessagePolicy {
    /// Fail the query or job, naming the message.
    Fail,
    /// Skip it and count it.
    Skip,
}

enum OutputColumn {
    /// Index into the decoded payload batch.
    Payload(usize),
    /// Built from metadata (then cast to the declared type).
    Metadata(MetadataKey),
}

/// Decodes chunks of one table's messages.
pub struct SourceDecoder {
    table: Arc<TableDef>,
    schema: SchemaRef,
    columns: Vec<OutputColumn>,
    decoder: Box<dyn PayloadDecoder>,
    policy: BadMessagePolicy,
    metrics: Arc<SourceMetrics>,
}

impl std::fmt::Debug for SourceDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceDecoder")
            .field("table", &self.table.name)
            .finish()
    }
}

impl SourceDecoder {
    /// A decoder producing the columns `projection` selects (all when `None`).
    pub fn new(
        table: Arc<TableDef>,
        projection: Option<&[usize]>,
        metrics: Arc<SourceMetrics>,
    ) -> Result<Self> {
        let indices: Vec<usize> = match projection {
            Some(p) => p.to_vec(),
            None => (0..table.columns.len()).collect(),
        };
        let mut payload_fields = Vec::new();
        let mut columns = Vec::with_capacity(indices.len());
        for &i in &indices {
            let column = table.columns.get(i).ok_or_else(|| {
                EngineError::Internal(format!("projection index {i} out of range"))
            })?;
            match &column.source {
                ColumnSource::Payload => {
                    columns.push(OutputColumn::Payload(payload_fields.len()));
                    payload_fields.push(column.field.clone().with_nullable(true));
                }
                ColumnSource::Metadata { key, .. } => {
                    columns.push(OutputColumn::Metadata(*key));
                }
            }
        }
        // With no payload column selected (`SELECT count(*)`), still decode the whole payload
        // so that bad messages are found and treated the same way.
        let payload_schema = if payload_fields.is_empty() {
            table.payload_schema.clone()
        } else {
            Arc::new(Schema::new(payload_fields))
        };
        let decoder = decoder_for(table.options.format, payload_schema, table.options.json)?;
        let schema = Arc::new(Schema::new(
            indices
                .iter()
                .map(|&i| table.columns[i].field.clone())
                .collect::<Vec<_>>(),
        ));
        let policy = if table.options.json.ignore_parse_errors {
            BadMessagePolicy::Skip
        } else {
            BadMessagePolicy::Fail
        };
        Ok(Self {
            table,
            schema,
            columns,
            decoder,
            policy,
            metrics,
        })
    }

    /// The schema of produced batches.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn bad_message(&self, topic: &str, id: impl std::fmt::Display, reason: &str) -> Result<()> {
        match self.policy {
            BadMessagePolicy::Fail => Err(EngineError::BadMessage(format!(
                "table '{}': cannot read message {id} on topic '{topic}' as {}: {reason} (set 'json.ignore-parse-errors' = 'true' to skip such messages)",
                self.table.name,
                self.table.options.format.name()
            ))),
            BadMessagePolicy::Skip => {
                self.metrics
                    .messages_skipped
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(table = %self.table.name, %topic, %id, reason, "skipped a bad message");
                Ok(())
            }
        }
    }

    /// Decodes a chunk; `None` when no row is left (all filtered or skipped).
    pub fn decode(&mut self, chunk: &SourceChunk) -> Result<Option<RecordBatch>> {
        self.metrics
            .duplicates_dropped
            .fetch_add(chunk.duplicates_dropped, Ordering::Relaxed);
        for bad in &chunk.malformed {
            self.bad_message(&bad.topic, bad.id, &bad.reason)?;
        }
        if chunk.messages.is_empty() {
            return Ok(None);
        }
        self.metrics
            .messages_read
            .fetch_add(chunk.messages.len() as u64, Ordering::Relaxed);
        let decoded = self.decoder.decode(&chunk.messages)?;
        for (i, reason) in &decoded.errors {
            let m = &chunk.messages[*i];
            self.bad_message(&m.topic, m.id, reason)?;
        }
        let rows = &decoded.rows;
        if rows.is_empty() {
            return Ok(None);
        }
        let messages: Vec<&ReceivedMessage> = rows.iter().map(|&i| &chunk.messages[i]).collect();
        let mut arrays = Vec::with_capacity(self.columns.len());
        for (column, field) in self.columns.iter().zip(self.schema.fields()) {
            let array = match column {
                OutputColumn::Payload(i) => decoded.batch.column(*i).clone(),
                OutputColumn::Metadata(key) => metadata_array(*key, &messages),
            };
            let array = if array.data_type() == field.data_type() {
                array
            } else {
                cast(&array, field.data_type()).map_err(|e| {
                    EngineError::BadMessage(format!(
                        "table '{}': column '{}' cannot be read as {}: {e}",
                        self.table.name,
                        field.name(),
                        field.data_type()
                    ))
                })?
            };
            arrays.push(array);
        }
        let batch = RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )
        .map_err(|e| {
            EngineError::BadMessage(format!(
                "table '{}': decoded rows do not fit the declared columns: {e}",
                self.table.name
            ))
        })?;
        self.metrics
            .rows_out
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        Ok(Some(batch))
    }
}

/// A metadata column in its natural type.
fn metadata_array(key: MetadataKey, messages: &[&ReceivedMessage]) -> ArrayRef {
    let n = messages.len();
    match key {
        MetadataKey::Topic
        | MetadataKey::MessageId
        | MetadataKey::ProducerName
        | MetadataKey::Key => {
            let mut b = StringBuilder::with_capacity(n, n * 16);
            for m in messages {
                match key {
                    MetadataKey::Topic => b.append_value(&*m.topic),
                    MetadataKey::MessageId => b.append_value(m.id.to_string()),
                    MetadataKey::ProducerName => b.append_value(&*m.producer_name),
                    _ => b.append_option(m.key.as_deref()),
                }
            }
            Arc::new(b.finish())
        }
        MetadataKey::SequenceId => {
            let mut b = Int64Builder::with_capacity(n);
            for m in messages {
                b.append_value(m.sequence_id as i64);
            }
            Arc::new(b.finish())
        }
        MetadataKey::PublishTime | MetadataKey::EventTime => {
            let mut b = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
            for m in messages {
                let t = if key == MetadataKey::PublishTime {
                    Some(m.publish_time)
                } else {
                    m.event_time
                };
                b.append_option(t.map(|t| t.0 as i64));
            }
            Arc::new(b.finish())
        }
        MetadataKey::Properties => {
            // Field names as our MAP<k, v> type declares them, so no cast is needed.
            let names = MapFieldNames {
                entry: "entries".into(),
                key: "key".into(),
                value: "value".into(),
            };
            let mut b = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
            for m in messages {
                for (k, v) in &m.properties {
                    b.keys().append_value(k);
                    b.values().append_value(v);
                }
                // Appending a map entry cannot fail when keys and values were appended in pairs.
                let _ = b.append(true);
            }
            Arc::new(b.finish())
        }
    }
}
