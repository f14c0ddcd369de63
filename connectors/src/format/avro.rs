//! The `avro` format: each payload is a bare Avro binary datum (Pulsar's AVRO schema), written
//! with the schema version the message carries. arrow-avro decodes the datums straight into
//! Arrow builders and resolves each writer version to the table's (reader) schema: fields
//! added with defaults, fields removed.

use std::collections::BTreeMap;

use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use arrow_avro::reader::{Decoder, ReaderBuilder};
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};
use arrow_schema::SchemaRef;

use super::{DecodedRows, PayloadDecoder};
use crate::error::{ConnectorError, Result};
use crate::pulsar::ReceivedMessage;
use crate::schema::{SchemaInfo, SchemaKind, SchemaVersion};

/// Decodes Avro datums of known writer schema versions into the reader schema's columns.
pub struct AvroDecoder {
    schema: SchemaRef,
    reader: String,
    writers: BTreeMap<SchemaVersion, String>,
    /// Versions the registry describes with another kind of schema, and why they fail.
    unreadable: BTreeMap<SchemaVersion, String>,
    /// The version of messages that carry none (producers without a registered schema).
    unversioned: SchemaVersion,
    /// Every message is read with the reader schema, whatever version it carries
    /// (`'format'='avro'` from declared columns, no registry).
    fixed: bool,
    /// The arrow-avro decoder, kept between calls (building one parses every writer schema);
    /// dropped when the writers change or a decode fails midway.
    cached: Option<Decoder>,
}

impl std::fmt::Debug for AvroDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroDecoder")
            .field("versions", &self.writers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Rows arrow-avro's decoder buffers before it must be flushed.
const DECODER_BATCH: usize = 4096;

/// The bytes arrow-avro reads before a datum to pick its writer schema: a zero byte and the
/// version as a big-endian 64-bit id (its "Confluent, 64-bit id" framing).
fn frame(version: SchemaVersion) -> [u8; 9] {
    let mut prefix = [0u8; 9];
    prefix[1..].copy_from_slice(&version.0.to_be_bytes());
    prefix
}

impl AvroDecoder {
    /// A decoder into the columns of the Avro record schema `reader` (JSON), which is also
    /// the writer schema of version `version` and of messages without a version.
    pub fn new(reader: &str, version: SchemaVersion) -> Result<AvroDecoder> {
        let schema =
            crate::schema::arrow_columns::avro_record_schema(reader).map_err(|reason| {
                ConnectorError::Registry {
                    topic: String::new(),
                    reason,
                }
            })?;
        let mut writers = BTreeMap::new();
        writers.insert(version, reader.to_string());
        Ok(AvroDecoder {
            schema,
            reader: reader.to_string(),
            writers,
            unreadable: BTreeMap::new(),
            unversioned: version,
            fixed: false,
            cached: None,
        })
    }

    /// A decoder that reads every message with `schema` (JSON), ignoring schema versions.
    pub fn fixed(schema: &str) -> Result<AvroDecoder> {
        let mut decoder = AvroDecoder::new(schema, SchemaVersion(0))?;
        decoder.fixed = true;
        Ok(decoder)
    }

    /// A decoder reading datums written with the Avro schema Arrow `schema` maps to (the
    /// `avro` format over declared columns).
    pub fn for_columns(schema: &SchemaRef) -> Result<AvroDecoder> {
        let avro = AvroSchema::try_from(schema.as_ref()).map_err(|e| ConnectorError::Registry {
            topic: String::new(),
            reason: format!("the columns have no Avro schema: {e}"),
        })?;
        AvroDecoder::fixed(&avro.json_string)
    }

    /// Adds the writer schema of `version`; one that cannot be resolved to the reader schema
    /// makes that version's messages bad, not every message.
    pub fn add_writer(&mut self, version: SchemaVersion, writer: &str) {
        if let Err(e) = crate::schema::arrow_columns::check_avro_size(writer) {
            self.writers.remove(&version);
            self.add_unreadable(
                version,
                format!("schema version {version} cannot be read as the table's schema: {e}"),
            );
            return;
        }
        self.writers.insert(version, writer.to_string());
        self.cached = None;
        if let Err(e) = self.build() {
            self.writers.remove(&version);
            self.add_unreadable(
                version,
                format!("schema version {version} cannot be read as the table's schema: {e}"),
            );
        }
    }

    /// Marks `version` as one that cannot be read, for `reason`.
    pub fn add_unreadable(&mut self, version: SchemaVersion, reason: String) {
        self.unreadable.insert(version, reason);
        self.cached = None;
    }

    /// The versions `messages` carry that this decoder does not know yet.
    pub fn missing_versions(&self, messages: &[ReceivedMessage]) -> Vec<SchemaVersion> {
        let mut missing: Vec<SchemaVersion> = messages
            .iter()
            .map(|m| self.version_of(m))
            .filter(|v| !self.writers.contains_key(v) && !self.unreadable.contains_key(v))
            .collect();
        missing.sort();
        missing.dedup();
        missing
    }

    fn version_of(&self, m: &ReceivedMessage) -> SchemaVersion {
        if self.fixed {
            return self.unversioned;
        }
        m.schema_version
            .as_deref()
            .and_then(SchemaVersion::from_message_bytes)
            .unwrap_or(self.unversioned)
    }

    fn build(&self) -> std::result::Result<Decoder, String> {
        let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id64);
        for (version, writer) in &self.writers {
            store
                .set(
                    Fingerprint::Id64(version.0 as u64),
                    AvroSchema::new(writer.clone()),
                )
                .map_err(|e| format!("schema version {version}: {e}"))?;
        }
        ReaderBuilder::new()
            .with_batch_size(DECODER_BATCH)
            .with_reader_schema(AvroSchema::new(self.reader.clone()))
            .with_writer_schema_store(store)
            .build_decoder()
            .map_err(|e| e.to_string())
    }

    /// Decodes `indices` of `messages` together; the first failure stops it.
    fn decode_all(
        &mut self,
        messages: &[ReceivedMessage],
        indices: &[usize],
    ) -> std::result::Result<RecordBatch, (usize, String)> {
        // Taken out: a decode that fails midway leaves it in an unknown state, so it is only
        // put back after a clean run.
        let mut decoder = match self.cached.take() {
            Some(d) => d,
            None => self.build().map_err(|e| (0, e))?,
        };
        let mut batches = Vec::new();
        for &i in indices {
            let m = &messages[i];
            let fail = |reason: String| (i, reason);
            let version = self.version_of(m);
            if let Some(reason) = self.unreadable.get(&version) {
                return Err(fail(reason.clone()));
            }
            if !self.writers.contains_key(&version) {
                return Err(fail(format!("unknown schema version {version}")));
            }
            if decoder.capacity() == 0 {
                // A full batch: arrow-avro takes nothing more until it is flushed.
                if let Some(b) = decoder.flush().map_err(|e| fail(e.to_string()))? {
                    batches.push(b);
                }
            }
            let prefix = frame(version);
            let used = decoder.decode(&prefix).map_err(|e| fail(e.to_string()))?;
            if used != prefix.len() {
                return Err(fail("schema version not accepted".into()));
            }
            if decoder.capacity() == 0 {
                // A new writer version: arrow-avro switches schemas between batches.
                if let Some(b) = decoder.flush().map_err(|e| fail(e.to_string()))? {
                    batches.push(b);
                }
            }
            let before = decoder.capacity();
            let used = decoder.decode(&m.payload).map_err(|e| {
                fail(format!(
                    "not an Avro datum of schema version {version}: {e}"
                ))
            })?;
            if used != m.payload.len() {
                return Err(fail(format!(
                    "{} bytes follow the datum of schema version {version}",
                    m.payload.len() - used
                )));
            }
            if decoder.capacity() + 1 != before {
                return Err(fail(format!(
                    "truncated: {} bytes are not a whole datum of schema version {version}",
                    m.payload.len()
                )));
            }
        }
        if let Some(b) = decoder.flush().map_err(|e| (0, e.to_string()))? {
            batches.push(b);
        }
        self.cached = Some(decoder);
        concat_batches(&self.schema, &batches).map_err(|e| (0, e.to_string()))
    }
}

impl PayloadDecoder for AvroDecoder {
    fn decode(&mut self, messages: &[ReceivedMessage]) -> Result<DecodedRows> {
        let all: Vec<usize> = (0..messages.len()).collect();
        if let Ok(batch) = self.decode_all(messages, &all)
            && batch.num_rows() == messages.len()
        {
            return Ok(DecodedRows {
                batch,
                rows: all,
                errors: Vec::new(),
            });
        }
        // Slow path: find the messages that fail alone, decode the others together.
        let mut good = Vec::new();
        let mut errors = Vec::new();
        for i in all {
            match self.decode_all(messages, &[i]) {
                Ok(b) if b.num_rows() == 1 => good.push(i),
                Ok(_) => errors.push((i, "no row decoded".to_string())),
                Err((_, reason)) => errors.push((i, reason)),
            }
        }
        let batch =
            self.decode_all(messages, &good)
                .map_err(|(i, reason)| ConnectorError::Decode {
                    topic: messages[i].topic.to_string(),
                    id: messages[i].id,
                    format: "avro",
                    reason,
                })?;
        Ok(DecodedRows {
            batch,
            rows: good,
            errors,
        })
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn missing_versions(&self, messages: &[ReceivedMessage]) -> Vec<SchemaVersion> {
        AvroDecoder::missing_versions(self, messages)
    }

    fn mark_unreadable(&mut self, version: SchemaVersion, reason: String) {
        self.add_unreadable(version, reason);
    }

    fn add_version(&mut self, version: SchemaVersion, info: Option<&SchemaInfo>) {
        match info {
            Some(info) if info.kind == SchemaKind::Avro => self.add_writer(version, &info.data),
            Some(info) => self.add_unreadable(
                version,
                format!(
                    "schema version {version} is a {} schema, not AVRO",
                    info.kind.name()
                ),
            ),
            None => self.add_unreadable(
                version,
                format!("unknown schema version {version} (the schema registry does not have it)"),
            ),
        }
    }
}

/// Encodes rows as bare Avro datums (one per message) with arrow-avro.
pub struct AvroEncoder {
    encoder: arrow_avro::writer::Encoder,
    /// The writer schema (JSON), attached to the producer.
    schema_json: String,
}

impl std::fmt::Debug for AvroEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroEncoder").finish()
    }
}

impl AvroEncoder {
    /// An encoder of `schema`'s rows, with the Avro schema `avro_json` when given, else the
    /// one arrow-avro derives from the columns (nullable columns as `["null", T]` unions).
    pub fn new(schema: &SchemaRef, avro_json: Option<&str>) -> Result<AvroEncoder> {
        let fail = |e: String| ConnectorError::Registry {
            topic: String::new(),
            reason: format!("cannot write these columns as Avro: {e}"),
        };
        let mut arrow_schema = schema.as_ref().clone();
        if let Some(json) = avro_json {
            arrow_schema
                .metadata
                .insert(arrow_avro::schema::SCHEMA_METADATA_KEY.into(), json.into());
        }
        let encoder = arrow_avro::writer::WriterBuilder::new(arrow_schema)
            .build_encoder::<arrow_avro::writer::format::AvroBinaryFormat>()
            .map_err(|e| fail(e.to_string()))?;
        let schema_json = encoder
            .schema()
            .metadata()
            .get(arrow_avro::schema::SCHEMA_METADATA_KEY)
            .cloned()
            .ok_or_else(|| fail("no Avro schema derived".into()))?;
        Ok(AvroEncoder {
            encoder,
            schema_json,
        })
    }

    /// The writer schema, as JSON.
    pub fn schema_json(&self) -> &str {
        &self.schema_json
    }
}

impl super::PayloadEncoder for AvroEncoder {
    fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
        let fail = |e: String| ConnectorError::Registry {
            topic: String::new(),
            reason: format!("cannot write rows as Avro: {e}"),
        };
        self.encoder
            .encode(batch)
            .map_err(|e| fail(e.to_string()))?;
        let rows = self.encoder.flush();
        rows.iter().map(|b| Ok(b.to_vec())).collect()
    }

    fn schema_definition(&self) -> Option<(SchemaKind, String)> {
        Some((SchemaKind::Avro, self.schema_json.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use apache_avro::types::{Record, Value};
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;
    use bytes::Bytes;

    use super::*;
    use crate::message_id::MessageId;

    const V1: &str = r#"{"type":"record","name":"Click","fields":[
        {"name":"user_id","type":"string"},{"name":"clicks","type":"long"},
        {"name":"legacy","type":"string"}]}"#;
    /// v2 drops `legacy` and adds `country` with a default.
    const V2: &str = r#"{"type":"record","name":"Click","fields":[
        {"name":"user_id","type":"string"},{"name":"clicks","type":"long"},
        {"name":"country","type":["null","string"],"default":null}]}"#;

    /// Encodes with apache-avro (an independent writer), as Pulsar's Java client would.
    fn datum(schema: &str, fields: &[(&str, Value)]) -> Bytes {
        let schema = apache_avro::Schema::parse_str(schema).expect("schema");
        let mut record = Record::new(&schema).expect("record schema");
        for (name, value) in fields {
            record.put(name, value.clone());
        }
        let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .expect("writer");
        Bytes::from(writer.write_value_to_vec(record).expect("encode"))
    }

    fn message(i: u64, version: Option<i64>, payload: Bytes) -> ReceivedMessage {
        let mut m = ReceivedMessage::local(
            MessageId::new(7, i, -1),
            Arc::from("persistent://public/default/clicks"),
            Arc::from("p"),
            payload,
        );
        m.schema_version = version.map(|v| Bytes::copy_from_slice(&v.to_be_bytes()));
        m
    }

    #[test]
    fn resolves_every_writer_version_to_the_table_schema() {
        let mut decoder = AvroDecoder::new(V2, SchemaVersion(1)).expect("decoder");
        let v1 = |u: &str, c: i64| {
            datum(
                V1,
                &[
                    ("user_id", Value::String(u.into())),
                    ("clicks", Value::Long(c)),
                    ("legacy", Value::String("x".into())),
                ],
            )
        };
        let v2 = |u: &str, c: i64, country: Option<&str>| {
            let country = match country {
                Some(c) => Value::Union(1, Box::new(Value::String(c.into()))),
                None => Value::Union(0, Box::new(Value::Null)),
            };
            datum(
                V2,
                &[
                    ("user_id", Value::String(u.into())),
                    ("clicks", Value::Long(c)),
                    ("country", country),
                ],
            )
        };
        let messages = vec![
            message(0, Some(0), v1("ann", 1)),
            message(1, Some(1), v2("bob", 2, Some("NL"))),
            message(2, Some(0), v1("cy", 3)),
            message(3, None, v2("dee", 4, None)),
        ];
        assert_eq!(decoder.missing_versions(&messages), vec![SchemaVersion(0)]);
        decoder.add_writer(SchemaVersion(0), V1);
        assert!(decoder.missing_versions(&messages).is_empty());
        let rows = decoder.decode(&messages).expect("decode");
        assert!(rows.errors.is_empty(), "{:?}", rows.errors);
        assert_eq!(rows.rows, vec![0, 1, 2, 3]);
        // The kept arrow-avro decoder reads the next chunk (versions switching) the same way.
        let again = decoder.decode(&messages[1..]).expect("decode again");
        assert_eq!(again.batch, rows.batch.slice(1, 3));
        let batch = rows.batch;
        let users: Vec<&str> = batch
            .column(0)
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect();
        assert_eq!(users, ["ann", "bob", "cy", "dee"]);
        let clicks = batch.column(1).as_primitive::<Int64Type>();
        assert_eq!(clicks.values().to_vec(), vec![1, 2, 3, 4]);
        let country = batch.column(2).as_string::<i32>();
        let country: Vec<Option<&str>> = country.iter().collect();
        assert_eq!(country, [None, Some("NL"), None, None]);
    }

    #[test]
    fn chunks_larger_than_a_decoder_batch_and_trailing_bytes() {
        let mut decoder = AvroDecoder::new(V2, SchemaVersion(1)).expect("decoder");
        let row = |c: i64| {
            datum(
                V2,
                &[
                    ("user_id", Value::String("u".into())),
                    ("clicks", Value::Long(c)),
                    ("country", Value::Union(0, Box::new(Value::Null))),
                ],
            )
        };
        let n = DECODER_BATCH * 2 + 10;
        let mut messages: Vec<ReceivedMessage> = (0..n)
            .map(|i| message(i as u64, Some(1), row(i as i64)))
            .collect();
        let rows = decoder.decode(&messages).expect("decode");
        assert!(rows.errors.is_empty(), "{:?}", rows.errors.first());
        assert_eq!(rows.batch.num_rows(), n);
        let clicks = rows.batch.column(1).as_primitive::<Int64Type>();
        assert_eq!(clicks.value(n - 1), (n - 1) as i64);

        // A datum followed by stray bytes is reported, and the next message still lines up.
        let mut padded = row(7).to_vec();
        padded.extend([0, 0, 0]);
        messages[3].payload = Bytes::from(padded);
        let rows = decoder.decode(&messages[..10]).expect("decode");
        assert_eq!(rows.errors.len(), 1);
        assert!(
            rows.errors[0].1.contains("3 bytes follow"),
            "{:?}",
            rows.errors
        );
        let clicks = rows.batch.column(1).as_primitive::<Int64Type>();
        assert_eq!(clicks.value(3), 4, "row 3 is message 4");
    }

    #[test]
    fn a_writer_that_cannot_be_resolved_spoils_only_its_own_messages() {
        let mut decoder = AvroDecoder::new(V2, SchemaVersion(1)).expect("decoder");
        // `clicks` as a string cannot be read as the reader's long.
        decoder.add_writer(
            SchemaVersion(5),
            r#"{"type":"record","name":"Click","fields":[{"name":"user_id","type":"string"},{"name":"clicks","type":"string"}]}"#,
        );
        let good = datum(
            V2,
            &[
                ("user_id", Value::String("ann".into())),
                ("clicks", Value::Long(1)),
                ("country", Value::Union(0, Box::new(Value::Null))),
            ],
        );
        let rows = decoder
            .decode(&[message(0, Some(5), good.clone()), message(1, Some(1), good)])
            .expect("decode");
        assert_eq!(rows.rows, vec![1]);
        assert!(
            rows.errors[0]
                .1
                .contains("cannot be read as the table's schema"),
            "{:?}",
            rows.errors
        );
    }

    #[test]
    fn names_truncated_datums_and_unknown_versions() {
        let mut decoder = AvroDecoder::new(V2, SchemaVersion(1)).expect("decoder");
        let good = datum(
            V2,
            &[
                ("user_id", Value::String("ann".into())),
                ("clicks", Value::Long(1)),
                ("country", Value::Union(0, Box::new(Value::Null))),
            ],
        );
        let messages = vec![
            message(0, Some(1), good.clone()),
            message(1, Some(1), good.slice(..2)),
            message(2, Some(9), good.clone()),
            message(3, Some(1), good),
        ];
        let rows = decoder.decode(&messages).expect("decode");
        assert_eq!(rows.rows, vec![0, 3]);
        assert_eq!(rows.batch.num_rows(), 2);
        assert_eq!(rows.errors.len(), 2);
        assert_eq!(rows.errors[0].0, 1);
        assert!(
            rows.errors[0].1.contains("schema version 1"),
            "{}",
            rows.errors[0].1
        );
        assert_eq!(rows.errors[1].0, 2);
        assert!(
            rows.errors[1].1.contains("unknown schema version 9"),
            "{}",
            rows.errors[1].1
        );
    }
}
