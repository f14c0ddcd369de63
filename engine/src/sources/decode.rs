//! Messages to Arrow batches in a table's (projected) schema: payload columns through the
//! table's format or registry schema (fetching writer schema versions as messages bring
//! them), metadata columns from Pulsar's message metadata. Bad messages follow the table's
//! policy: fail the query naming topic and message id, skip and count, or write them to a
//! dead-letter topic and count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Builder, MapBuilder, MapFieldNames, RecordBatch,
    RecordBatchOptions, StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::compute::{cast, filter};
use datafusion::arrow::datatypes::{
    DataType, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
};
use magnetar_connectors::MessageId;
use magnetar_connectors::format::{
    AvroDecoder, FormatKind, FormatOptions, JsonOptions, PayloadDecoder, ProtobufDecoder,
    decoder_for,
};
use magnetar_connectors::pulsar::{
    OutgoingMessage, PulsarSink, ReceivedMessage, SinkConfig, SourceChunk, TopicName,
};
use magnetar_connectors::schema::decoder::select_columns;
use magnetar_connectors::schema::{SchemaRegistry, SchemaVersion, decoder_for_schema};
use magnetar_connectors::tiered::BackfillProgress;
use magnetar_sql::catalog::{ColumnSource, MetadataKey, TableDef};
use magnetar_sql::options::Connector;

use super::event_time::SharedWatermarkExpr;
use super::reader::ReadChunk;
use crate::error::{EngineError, Result};
use crate::runtime::EventTime;

/// Counters of a source, shared with `SHOW JOBS`.
#[derive(Debug, Default)]
pub struct SourceMetrics {
    /// Messages read from the broker (after deduplication).
    pub messages_read: AtomicU64,
    /// Rows produced.
    pub rows_out: AtomicU64,
    /// Bad messages skipped under `*.ignore-parse-errors`.
    pub messages_skipped: AtomicU64,
    /// Bad messages written to the dead-letter topic.
    pub messages_dead_lettered: AtomicU64,
    /// Redelivered messages dropped because they were read already.
    pub duplicates_dropped: AtomicU64,
    /// Messages (of `messages_read`) read from tiered storage rather than the broker.
    pub messages_from_tiered_storage: AtomicU64,
    /// Backfill from tiered storage, for progress displays.
    pub backfill: Arc<BackfillProgress>,
    /// Entries behind the end of the topic when last asked (`SHOW JOBS`); `None`: unknown.
    pub backlog: std::sync::Mutex<Option<u64>>,
    /// What the source waits for, such as a topic that matches its pattern (`SHOW JOBS`).
    pub warning: Arc<super::topics::SourceWarning>,
}

/// What to do with a message that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadMessagePolicy {
    /// Fail the query or job, naming the message.
    Fail,
    /// Skip it and count it.
    Skip,
    /// Write it to this topic, and count it.
    DeadLetter(TopicName),
}

/// The producer of a dead-letter topic, connected on the first bad message.
struct DeadLetterSink {
    service_url: Option<String>,
    sink: Option<PulsarSink>,
    pending: usize,
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
    /// Position in `decoded` of the event-time column, when it is decoded: rows whose time is
    /// out of range are bad messages (window arithmetic on them would overflow).
    event_time_position: Option<usize>,
    decoder: Box<dyn PayloadDecoder>,
    policy: BadMessagePolicy,
    metrics: Arc<SourceMetrics>,
    /// Where writer schema versions are fetched, for tables read by a registry schema.
    admin_url: Option<String>,
    /// The registry client, made when the first unknown version arrives (not at planning).
    registry: Option<SchemaRegistry>,
    dead_letters: DeadLetterSink,
}

impl std::fmt::Debug for SourceDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceDecoder")
            .field("table", &self.table.name)
            .finish()
    }
}

impl SourceDecoder {
    /// The source's counters.
    pub fn metrics(&self) -> &Arc<SourceMetrics> {
        &self.metrics
    }

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
        let decoder = match &table.value_schema {
            Some(info) => decoder_for_schema(
                info,
                &payload_schema,
                JsonOptions {
                    ignore_parse_errors: format.ignore_parse_errors,
                },
            )
            .map_err(|e| EngineError::BadMessage(format!("table '{}': {e}", table.name)))?,
            // An Avro datum's layout depends on every declared field and its nullability:
            // decode with all of them, then pick the wanted columns.
            None if format.kind == FormatKind::Avro => {
                let declared = Arc::new(Schema::new(
                    table
                        .columns
                        .iter()
                        .filter(|c| c.source == ColumnSource::Payload)
                        .map(|c| c.field.clone())
                        .collect::<Vec<_>>(),
                ));
                select_columns(
                    Box::new(AvroDecoder::for_columns(&declared)?),
                    payload_schema,
                )
            }
            None if format.kind == FormatKind::Protobuf => {
                let message = table
                    .pulsar()
                    .and_then(|o| o.protobuf.as_ref())
                    .ok_or_else(|| {
                        EngineError::Internal("a protobuf table without its message".into())
                    })?;
                select_columns(
                    Box::new(ProtobufDecoder::of(message.descriptor.clone())?),
                    payload_schema,
                )
            }
            None => decoder_for(
                format.kind,
                payload_schema,
                FormatOptions {
                    ignore_parse_errors: format.ignore_parse_errors,
                    csv_delimiter: format.csv_delimiter,
                },
            )?,
        };
        let admin_url = match (&table.value_schema, table.pulsar()) {
            (Some(_), Some(o)) => o.admin_url.clone(),
            _ => None,
        };
        let field_of = |i: usize| table.columns[i].field.clone();
        let schema = Arc::new(Schema::new(
            projected.iter().map(|&i| field_of(i)).collect::<Vec<_>>(),
        ));
        let position = |i: usize| decoded.iter().position(|&d| d == i).unwrap_or(0);
        let output = projected.iter().map(|&i| position(i)).collect();
        let event_time_position = table.watermark.as_ref().and_then(|w| {
            let index = table
                .columns
                .iter()
                .position(|c| c.field.name() == &w.column)?;
            decoded.iter().position(|&d| d == index)
        });
        let watermark = watermark.map(|w| {
            let positions = w.columns.iter().map(|&i| position(i)).collect();
            let schema = Arc::new(Schema::new(
                w.columns.iter().map(|&i| field_of(i)).collect::<Vec<_>>(),
            ));
            (w, positions, schema)
        });
        let policy = match table.pulsar().and_then(|o| o.dead_letter_topic.clone()) {
            Some(topic) => BadMessagePolicy::DeadLetter(topic),
            None if format.ignore_parse_errors => BadMessagePolicy::Skip,
            None => BadMessagePolicy::Fail,
        };
        Ok(Self {
            table,
            schema,
            decoded,
            columns,
            output,
            watermark,
            event_time_position,
            decoder,
            policy,
            metrics,
            admin_url,
            registry: None,
            dead_letters: DeadLetterSink {
                service_url: None,
                sink: None,
                pending: 0,
            },
        })
    }

    /// The broker a dead-letter topic is written to (the table's own, else this default).
    pub fn with_service_url(mut self, default: Option<&str>) -> Self {
        self.dead_letters.service_url = crate::runtime::service_url_for(&self.table, default).ok();
        self
    }

    /// How the payload is read, for messages: the format or the registry schema kind.
    fn format_name(&self) -> String {
        match &self.table.value_schema {
            Some(info) => format!("{} (registry schema)", info.kind.name()),
            None => self.table.format().kind.name().to_string(),
        }
    }

    /// Fetches the writer schemas of versions the decoder has not seen; a version the
    /// registry does not have makes its messages bad messages.
    async fn fetch_versions(&mut self, messages: &[ReceivedMessage]) -> Result<()> {
        for version in self.decoder.missing_versions(messages) {
            let carrier = messages.iter().find(|m| {
                m.schema_version
                    .as_deref()
                    .and_then(SchemaVersion::from_message_bytes)
                    == Some(version)
            });
            if self.registry.is_none()
                && let Some(url) = &self.admin_url
            {
                let security = self
                    .table
                    .pulsar()
                    .map(|o| o.client.security.clone())
                    .unwrap_or_default();
                self.registry = Some(SchemaRegistry::with_security(url, &security)?);
            }
            match (&self.registry, carrier) {
                (Some(registry), Some(m)) => {
                    let topic = TopicName::parse(&m.topic)?;
                    let info = registry.version(&topic, version).await?;
                    self.decoder.add_version(version, info.as_deref());
                }
                _ => self.decoder.mark_unreadable(
                    version,
                    format!(
                        "schema version {version} is not the one the table was created with, and without 'admin-url' other versions cannot be fetched"
                    ),
                ),
            }
        }
        Ok(())
    }

    /// The schema of produced batches.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Where a message sits, in the words of the table's connector.
    fn place(&self, topic: &str, id: MessageId) -> String {
        match &self.table.connector {
            Connector::Pulsar(_) => format!("message {id} on topic '{topic}'"),
            Connector::Filesystem(_) if id.ledger_id == magnetar_connectors::file::BYTE_OFFSETS => {
                format!("the line at byte {} of '{topic}'", id.entry_id)
            }
            Connector::Filesystem(_) => format!("line {} of '{topic}'", id.entry_id),
            Connector::Memory(_) => format!(
                "row {} of partition {} of '{topic}'",
                id.entry_id, id.partition
            ),
            Connector::Custom(o) => format!("row {} of the {} connector", id.entry_id, o.connector),
        }
    }

    async fn bad_message(
        &mut self,
        topic: &str,
        id: MessageId,
        reason: &str,
        message: Option<&ReceivedMessage>,
    ) -> Result<()> {
        match &self.policy {
            BadMessagePolicy::Fail => {
                let format = match self.table.format().kind {
                    FormatKind::Json | FormatKind::Csv => self.table.format().kind.name(),
                    FormatKind::Raw | FormatKind::Avro | FormatKind::Protobuf => "value",
                };
                let hint = match (&self.table.connector, &self.table.value_schema) {
                    (Connector::Pulsar(_), Some(_)) => "set 'value.ignore-parse-errors' = 'true' to skip such messages, or 'source.dead-letter-topic' to set them aside".to_string(),
                    (Connector::Pulsar(_), None) => format!(
                        "set '{format}.ignore-parse-errors' = 'true' to skip such messages, or 'source.dead-letter-topic' to set them aside"
                    ),
                    (_, _) => format!(
                        "set '{format}.ignore-parse-errors' = 'true' to skip such messages"
                    ),
                };
                Err(EngineError::BadMessage(format!(
                    "table '{}': cannot read {} as {}: {reason} ({hint})",
                    self.table.name,
                    self.place(topic, id),
                    self.format_name(),
                )))
            }
            BadMessagePolicy::Skip => {
                self.metrics
                    .messages_skipped
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(table = %self.table.name, %topic, %id, reason, "skipped a bad message");
                Ok(())
            }
            BadMessagePolicy::DeadLetter(dead_letter_topic) => {
                let dead_letter_topic = dead_letter_topic.clone();
                if self.dead_letters.sink.is_none() {
                    let service_url = self.dead_letters.service_url.clone().ok_or_else(|| {
                        EngineError::NoServiceUrl {
                            table: self.table.name.clone(),
                        }
                    })?;
                    self.dead_letters.sink = Some(
                        PulsarSink::connect(SinkConfig {
                            service_url,
                            topic: dead_letter_topic,
                            producer_name: None,
                            routing: Default::default(),
                            batch_size: 1,
                            schema: None,
                            security: self
                                .table
                                .pulsar()
                                .map(|o| o.client.security.clone())
                                .unwrap_or_default(),
                            compression: Default::default(),
                        })
                        .await?,
                    );
                }
                let mut properties: std::collections::HashMap<String, String> = message
                    .map(|m| m.properties.iter().cloned().collect())
                    .unwrap_or_default();
                properties.insert("magnetar-error".into(), reason.to_string());
                properties.insert("magnetar-source-topic".into(), topic.to_string());
                properties.insert("magnetar-source-message-id".into(), id.to_string());
                if message.is_some_and(|m| m.key_is_base64) {
                    // The producer cannot mark the key as base64 again: say so instead.
                    properties.insert("magnetar-key-base64".into(), "true".into());
                }
                let outgoing = OutgoingMessage {
                    payload: message.map(|m| m.payload.to_vec()).unwrap_or_default(),
                    key: message.and_then(|m| m.key.clone()),
                    properties,
                    event_time: message.and_then(|m| m.event_time),
                    deliver_at: None,
                };
                if let Some(sink) = self.dead_letters.sink.as_mut() {
                    sink.send(outgoing).await?;
                    self.dead_letters.pending += 1;
                }
                tracing::debug!(table = %self.table.name, %topic, %id, reason, "sent a bad message to the dead-letter topic");
                Ok(())
            }
        }
    }

    /// Waits until the broker has every dead letter of this chunk, so the chunk's input
    /// is only acknowledged once its bad messages are kept.
    async fn flush_dead_letters(&mut self) -> Result<()> {
        if self.dead_letters.pending == 0 {
            return Ok(());
        }
        if let Some(sink) = self.dead_letters.sink.as_mut() {
            let written = sink.flush().await?;
            self.metrics
                .messages_dead_lettered
                .fetch_add(written as u64, Ordering::Relaxed);
        }
        self.dead_letters.pending = 0;
        Ok(())
    }

    /// Decodes a chunk; `None` when no row is left (all skipped, or none read).
    pub async fn decode(&mut self, chunk: &ReadChunk) -> Result<Option<Decoded>> {
        match chunk {
            ReadChunk::Messages(messages) => self.decode_messages(messages).await,
            ReadChunk::Rows(batch) => self.take_rows(batch),
        }
    }

    /// Rows a custom source made: its columns by position, cast to the declared types.
    fn take_rows(&mut self, batch: &RecordBatch) -> Result<Option<Decoded>> {
        let rows = batch.num_rows();
        self.metrics
            .messages_read
            .fetch_add(rows as u64, Ordering::Relaxed);
        if rows == 0 {
            return Ok(None);
        }
        let wrong = |reason: String| EngineError::CustomConnector {
            connector: self.table.connector.name().to_string(),
            table: self.table.name.clone(),
            source: reason.into(),
        };
        if batch.num_columns() != self.table.columns.len() {
            return Err(wrong(format!(
                "the source returned {} column(s); the table has {} ({})",
                batch.num_columns(),
                self.table.columns.len(),
                self.table
                    .columns
                    .iter()
                    .map(|c| c.field.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.decoded.len());
        for &table_index in &self.decoded {
            let field = &self.table.columns[table_index].field;
            let array = batch.column(table_index);
            arrays.push(if array.data_type() == field.data_type() {
                array.clone()
            } else {
                cast(array, field.data_type()).map_err(|e| {
                    wrong(format!(
                        "column {} ('{}') is {} and cannot be read as {}: {e}",
                        table_index + 1,
                        field.name(),
                        array.data_type(),
                        field.data_type()
                    ))
                })?
            });
        }
        let decoded = self.assemble(&arrays, rows, vec![0; rows])?;
        Ok(Some(decoded))
    }

    /// Decodes Pulsar (or file, or memory) messages.
    async fn decode_messages(&mut self, chunk: &SourceChunk) -> Result<Option<Decoded>> {
        self.metrics
            .duplicates_dropped
            .fetch_add(chunk.duplicates_dropped, Ordering::Relaxed);
        self.metrics
            .messages_from_tiered_storage
            .fetch_add(chunk.from_tiered_storage, Ordering::Relaxed);
        for bad in &chunk.malformed {
            self.bad_message(&bad.topic, bad.id, &bad.reason, None)
                .await?;
        }
        if chunk.messages.is_empty() {
            self.flush_dead_letters().await?;
            return Ok(None);
        }
        self.metrics
            .messages_read
            .fetch_add(chunk.messages.len() as u64, Ordering::Relaxed);
        self.fetch_versions(&chunk.messages).await?;
        let decoded = self.decoder.decode(&chunk.messages)?;
        for (i, reason) in &decoded.errors {
            let m = &chunk.messages[*i];
            self.bad_message(&m.topic, m.id, reason, Some(m)).await?;
        }
        self.flush_dead_letters().await?;
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
        let mut slots: Vec<usize> = rows
            .iter()
            .map(|&i| chunk.slots.get(i).copied().unwrap_or(0))
            .collect();
        if let Some(position) = self.event_time_position {
            let keep = self
                .rows_in_time_range(&arrays[position], &messages)
                .await?;
            if let Some(keep) = keep {
                if keep.true_count() == 0 {
                    return Ok(None);
                }
                arrays = arrays
                    .iter()
                    .map(|a| Ok(filter(a, &keep)?))
                    .collect::<Result<_>>()?;
                slots = slots
                    .into_iter()
                    .zip(keep.iter())
                    .filter_map(|(s, k)| k.unwrap_or(false).then_some(s))
                    .collect();
            }
        }
        let rows = slots.len();
        self.assemble(&arrays, rows, slots).map(Some)
    }

    /// Which rows have an event time in range, when some do not (those are bad messages, by
    /// the table's policy); `None` when all do.
    async fn rows_in_time_range(
        &mut self,
        times: &ArrayRef,
        messages: &[&ReceivedMessage],
    ) -> Result<Option<BooleanArray>> {
        let millis = cast(times, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
        let millis = millis.as_primitive::<TimestampMillisecondType>();
        let out_of_range = |i: usize| {
            millis
                .is_valid(i)
                .then(|| EventTime::check_row_time(millis.value(i)))
                .flatten()
        };
        if !(0..millis.len()).any(|i| out_of_range(i).is_some()) {
            return Ok(None);
        }
        let column = self
            .table
            .watermark
            .as_ref()
            .map(|w| w.column.clone())
            .unwrap_or_default();
        let mut keep = Vec::with_capacity(millis.len());
        for (i, m) in messages.iter().enumerate() {
            match out_of_range(i) {
                Some(reason) => {
                    let reason = format!("column '{column}': {reason}");
                    self.bad_message(&m.topic, m.id, &reason, Some(m)).await?;
                    keep.push(false);
                }
                None => keep.push(true),
            }
        }
        self.flush_dead_letters().await?;
        Ok(Some(BooleanArray::from(keep)))
    }

    /// The output batch of the decoded columns `arrays` (in `self.decoded` order), with
    /// each row's event time when watermarks are generated.
    fn assemble(&self, arrays: &[ArrayRef], rows: usize, slots: Vec<usize>) -> Result<Decoded> {
        let batch = RecordBatch::try_new_with_options(
            self.schema.clone(),
            self.output.iter().map(|&p| arrays[p].clone()).collect(),
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|e| {
            EngineError::BadMessage(format!(
                "table '{}': rows do not fit the declared columns: {e}",
                self.table.name
            ))
        })?;
        let event_times = match &self.watermark {
            None => None,
            Some((expr, positions, schema)) => {
                let input = RecordBatch::try_new_with_options(
                    schema.clone(),
                    positions.iter().map(|&p| arrays[p].clone()).collect(),
                    &RecordBatchOptions::new().with_row_count(Some(rows)),
                )?;
                Some(expr.evaluate(&input)?)
            }
        };
        self.metrics
            .rows_out
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        Ok(Decoded {
            batch,
            slots,
            event_times,
        })
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
        MetadataKey::PublishTime | MetadataKey::EventTime | MetadataKey::DeliverAt => {
            let mut b = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
            for m in messages {
                let t = match key {
                    MetadataKey::PublishTime => Some(m.publish_time),
                    MetadataKey::EventTime => m.event_time,
                    _ => m.deliver_at,
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
