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
use magnetar_connectors::MessageId;
use magnetar_connectors::format::{FormatKind, FormatOptions, PayloadDecoder, decoder_for};
use magnetar_connectors::pulsar::{ReceivedMessage, SourceChunk};
use magnetar_sql::catalog::{ColumnSource, MetadataKey, TableDef};
use magnetar_sql::options::Connector;

use super::event_time::SharedWatermarkExpr;
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

enum DecodedColumn {
    /// Index into the decoded payload batch.
    Payload(usize),
    /// Built from metadata (then cast to the declared type).
    Metadata(MetadataKey),
}

/// Rows decoded from a chunk.
#[derive(Debug)]
pub struct Decoded {
    /// The rows, in the projected schema.
    pub batch: RecordBatch,
    /// The partition each row came from.
    pub slots: Vec<usize>,
    /// Each row's watermark-expression value, when watermarks are generated.
    pub event_times: Option<Vec<Option<i64>>>,
}

/// Decodes chunks of one table's messages.
pub struct SourceDecoder {
    table: Arc<TableDef>,
    schema: SchemaRef,
    /// Table columns decoded: the projection and the watermark's columns, ascending.
    decoded: Vec<usize>,
    columns: Vec<DecodedColumn>,
    /// Position in `decoded` of each output column.
    output: Vec<usize>,
    watermark: Option<(SharedWatermarkExpr, Vec<usize>, SchemaRef)>,
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
    /// A decoder producing the columns `projection` selects (all when `None`), and the
    /// watermark-expression value of each row when `watermark` is given.
    pub fn new(
        table: Arc<TableDef>,
        projection: Option<&[usize]>,
        watermark: Option<SharedWatermarkExpr>,
        metrics: Arc<SourceMetrics>,
    ) -> Result<Self> {
        let projected: Vec<usize> = match projection {
            Some(p) => p.to_vec(),
            None => (0..table.columns.len()).collect(),
        };
        let mut decoded: Vec<usize> = projected.clone();
        if let Some(w) = &watermark {
            decoded.extend(w.columns.iter().copied());
        }
        decoded.sort_unstable();
        decoded.dedup();
        let format = table.format();
        // CSV fields are positional: decode every payload column and pick ours.
        let positional = format.kind == FormatKind::Csv;
        let mut payload_fields = Vec::new();
        let mut columns = Vec::with_capacity(decoded.len());
        for &i in &decoded {
            let column = table.columns.get(i).ok_or_else(|| {
                EngineError::Internal(format!("projection index {i} out of range"))
            })?;
            match &column.source {
                ColumnSource::Payload if positional => {
                    let position = table.columns[..i]
                        .iter()
                        .filter(|c| matches!(c.source, ColumnSource::Payload))
                        .count();
                    columns.push(DecodedColumn::Payload(position));
                }
                ColumnSource::Payload => {
                    columns.push(DecodedColumn::Payload(payload_fields.len()));
                    payload_fields.push(column.field.clone().with_nullable(true));
                }
                ColumnSource::Metadata { key, .. } => columns.push(DecodedColumn::Metadata(*key)),
            }
        }
        // With no payload column selected (`SELECT count(*)`), still decode the whole payload
        // so that bad messages are found and treated the same way.
        let payload_schema = if payload_fields.is_empty() {
            table.payload_schema.clone()
        } else {
            Arc::new(Schema::new(payload_fields))
        };
        let decoder = decoder_for(
            format.kind,
            payload_schema,
            FormatOptions {
                ignore_parse_errors: format.ignore_parse_errors,
                csv_delimiter: format.csv_delimiter,
            },
        )?;
        let field_of = |i: usize| table.columns[i].field.clone();
        let schema = Arc::new(Schema::new(
            projected.iter().map(|&i| field_of(i)).collect::<Vec<_>>(),
        ));
        let position = |i: usize| decoded.iter().position(|&d| d == i).unwrap_or(0);
        let output = projected.iter().map(|&i| position(i)).collect();
        let watermark = watermark.map(|w| {
            let positions = w.columns.iter().map(|&i| position(i)).collect();
            let schema = Arc::new(Schema::new(
                w.columns.iter().map(|&i| field_of(i)).collect::<Vec<_>>(),
            ));
            (w, positions, schema)
        });
        let policy = if format.ignore_parse_errors {
            BadMessagePolicy::Skip
        } else {
            BadMessagePolicy::Fail
        };
        Ok(Self {
            table,
            schema,
            decoded,
            columns,
            output,
            watermark,
            decoder,
            policy,
            metrics,
        })
    }

    /// The schema of produced batches.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Where a message sits, in the words of the table's connector.
    fn place(&self, topic: &str, id: MessageId) -> String {
        match &self.table.connector {
            Connector::Pulsar(_) => format!("message {id} on topic '{topic}'"),
            Connector::Filesystem(_) => format!("line {} of '{topic}'", id.entry_id),
            Connector::Memory(_) => format!(
                "row {} of partition {} of '{topic}'",
                id.entry_id, id.partition
            ),
        }
    }

    fn bad_message(&self, topic: &str, id: MessageId, reason: &str) -> Result<()> {
        match self.policy {
            BadMessagePolicy::Fail => Err(EngineError::BadMessage(format!(
                "table '{}': cannot read {} as {}: {reason} (set '{}.ignore-parse-errors' = 'true' to skip such messages)",
                self.table.name,
                self.place(topic, id),
                self.table.format().kind.name(),
                self.table.format().kind.name()
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

    /// Decodes a chunk; `None` when no row is left (all skipped, or none read).
    pub fn decode(&mut self, chunk: &SourceChunk) -> Result<Option<Decoded>> {
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
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for (column, &table_index) in self.columns.iter().zip(&self.decoded) {
            let field = &self.table.columns[table_index].field;
            let array = match column {
                DecodedColumn::Payload(i) => decoded.batch.column(*i).clone(),
                DecodedColumn::Metadata(key) => metadata_array(*key, &messages),
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
            self.output.iter().map(|&p| arrays[p].clone()).collect(),
            &RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )
        .map_err(|e| {
            EngineError::BadMessage(format!(
                "table '{}': decoded rows do not fit the declared columns: {e}",
                self.table.name
            ))
        })?;
        let event_times = match &self.watermark {
            None => None,
            Some((expr, positions, schema)) => {
                let input = RecordBatch::try_new_with_options(
                    schema.clone(),
                    positions.iter().map(|&p| arrays[p].clone()).collect(),
                    &RecordBatchOptions::new().with_row_count(Some(rows.len())),
                )?;
                Some(expr.evaluate(&input)?)
            }
        };
        self.metrics
            .rows_out
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        Ok(Some(Decoded {
            batch,
            slots: rows
                .iter()
                .map(|&i| chunk.slots.get(i).copied().unwrap_or(0))
                .collect(),
            event_times,
        }))
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
