//! The payload decoder a registry schema calls for: Avro datums by arrow-avro (with writer
//! versions resolved to the table's schema), JSON by arrow-json, primitives in the Java
//! client's layouts, KEY_VALUE as key and value side by side.

use std::sync::Arc;

use arrow::array::{ArrayRef, new_null_array};
use arrow_schema::{Field, Schema, SchemaRef};

use super::arrow_columns::{KEY_COLUMN, VALUE_COLUMN, key_value_columns, project_record_schema};
use super::info::{SchemaInfo, SchemaKind, SchemaVersion};
use crate::error::{ConnectorError, Result};
use crate::format::{
    AvroDecoder, DecodedRows, JsonDecoder, JsonOptions, KeyValueDecoder, PayloadDecoder,
    PrimitiveDecoder, ProtobufDecoder,
};
use crate::pulsar::ReceivedMessage;

/// The decoder of a topic whose latest registry schema is `info`, producing the `wanted`
/// columns (by name, in that order).
pub fn decoder_for_schema(
    info: &SchemaInfo,
    wanted: &SchemaRef,
    json: JsonOptions,
) -> Result<Box<dyn PayloadDecoder>> {
    let unsupported = |reason: String| ConnectorError::Registry {
        topic: String::new(),
        reason,
    };
    let names: Vec<&str> = wanted.fields().iter().map(|f| f.name().as_str()).collect();
    let inner: Box<dyn PayloadDecoder> = match &info.kind {
        SchemaKind::Avro => {
            // Read only the wanted fields: Avro resolution skips the others.
            let reader = project_record_schema(&info.data, &names).map_err(unsupported)?;
            let version = info.version.unwrap_or(SchemaVersion(0));
            let mut decoder = AvroDecoder::new(&reader, version)?;
            decoder.add_writer(version, &info.data);
            Box::new(decoder)
        }
        SchemaKind::Json => Box::new(JsonDecoder::new(wanted.clone(), json)?),
        // Protobuf resolves versions by field number: the latest descriptor reads them all.
        SchemaKind::ProtobufNative => Box::new(ProtobufDecoder::new(&info.data)?),
        SchemaKind::KeyValue => {
            let kv = info.key_value().map_err(unsupported)?;
            let (keys, _) = key_value_columns(&kv.key, &kv.value).map_err(unsupported)?;
            let key = side_decoder(&kv.key, KEY_COLUMN, json)?;
            let value = side_decoder(&kv.value, VALUE_COLUMN, json)?;
            Box::new(KeyValueDecoder::new(
                kv.encoding,
                key,
                value,
                keys.iter().map(|f| f.name().clone()).collect(),
            ))
        }
        kind => match PrimitiveDecoder::new(kind.clone(), VALUE_COLUMN) {
            Ok(d) => Box::new(d),
            Err(_) => {
                return Err(unsupported(format!(
                    "{} schemas are not supported",
                    kind.name()
                )));
            }
        },
    };
    Ok(Box::new(ByName::new(inner, wanted.clone())))
}

/// The decoder of one side of a KEY_VALUE schema, reading every message with that schema.
fn side_decoder(
    info: &SchemaInfo,
    primitive_name: &str,
    json: JsonOptions,
) -> Result<Box<dyn PayloadDecoder>> {
    Ok(match &info.kind {
        SchemaKind::Avro => Box::new(AvroDecoder::fixed(&info.data)?),
        SchemaKind::ProtobufNative => Box::new(ProtobufDecoder::new(&info.data)?),
        SchemaKind::Json => {
            let schema =
                super::arrow_columns::json_record_schema(&info.data).map_err(|reason| {
                    ConnectorError::Registry {
                        topic: String::new(),
                        reason,
                    }
                })?;
            Box::new(JsonDecoder::new(schema, json)?)
        }
        kind => Box::new(PrimitiveDecoder::new(kind.clone(), primitive_name)?),
    })
}

/// A decoder producing the `wanted` columns, by name, from what `inner` decodes.
pub fn select_columns(
    inner: Box<dyn PayloadDecoder>,
    wanted: SchemaRef,
) -> Box<dyn PayloadDecoder> {
    Box::new(ByName::new(inner, wanted))
}

/// Picks the wanted columns by name from what a decoder produced (NULL where the schema
/// has no such field).
struct ByName {
    inner: Box<dyn PayloadDecoder>,
    wanted: SchemaRef,
}

impl ByName {
    fn new(inner: Box<dyn PayloadDecoder>, wanted: SchemaRef) -> Self {
        ByName { inner, wanted }
    }
}

impl PayloadDecoder for ByName {
    fn decode(&mut self, messages: &[ReceivedMessage]) -> Result<DecodedRows> {
        let decoded = self.inner.decode(messages)?;
        let rows = decoded.rows.len();
        let source = decoded.batch.schema();
        let mut fields: Vec<Field> = Vec::with_capacity(self.wanted.fields().len());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.wanted.fields().len());
        for want in self.wanted.fields() {
            match source.index_of(want.name()) {
                Ok(i) => {
                    fields.push(source.field(i).clone().with_nullable(true));
                    columns.push(decoded.batch.column(i).clone());
                }
                Err(_) => {
                    fields.push(want.as_ref().clone().with_nullable(true));
                    columns.push(new_null_array(want.data_type(), rows));
                }
            }
        }
        DecodedRows::from_columns(
            Arc::new(Schema::new(fields)),
            columns,
            decoded.rows,
            decoded.errors,
        )
    }

    fn schema(&self) -> &SchemaRef {
        &self.wanted
    }

    fn missing_versions(&self, messages: &[ReceivedMessage]) -> Vec<SchemaVersion> {
        self.inner.missing_versions(messages)
    }

    fn add_version(&mut self, version: SchemaVersion, info: Option<&SchemaInfo>) {
        self.inner.add_version(version, info);
    }

    fn mark_unreadable(&mut self, version: SchemaVersion, reason: String) {
        self.inner.mark_unreadable(version, reason);
    }
}
