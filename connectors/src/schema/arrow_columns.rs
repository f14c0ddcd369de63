//! The Arrow columns of a registry schema: a record's fields for AVRO, JSON and PROTOBUF
//! (whose registry entries are Avro record schemas), one `value` column for primitive kinds.

use arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};
use arrow_avro::reader::ReaderBuilder;
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};

use super::info::{SchemaInfo, SchemaKind};

/// The column a primitive schema's value is read into.
pub const VALUE_COLUMN: &str = "value";

/// The Arrow schema arrow-avro reads an Avro record schema (JSON text) into.
pub fn avro_record_schema(avro_json: &str) -> Result<SchemaRef, String> {
    let parsed: serde_json::Value =
        serde_json::from_str(avro_json).map_err(|e| format!("not an Avro schema: {e}"))?;
    if parsed.get("type").and_then(|t| t.as_str()) != Some("record") {
        return Err("the Avro schema is not a record".into());
    }
    let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id64);
    store
        .set(Fingerprint::Id64(0), AvroSchema::new(avro_json.to_string()))
        .map_err(|e| e.to_string())?;
    let decoder = ReaderBuilder::new()
        .with_writer_schema_store(store)
        .with_active_fingerprint(Fingerprint::Id64(0))
        .build_decoder()
        .map_err(|e| e.to_string())?;
    Ok(decoder.schema())
}

/// The Arrow type a primitive schema kind's value reads as, `None` for structured kinds.
pub fn primitive_type(kind: &SchemaKind) -> Option<DataType> {
    Some(match kind {
        SchemaKind::None => DataType::Binary,
        SchemaKind::String => DataType::Utf8,
        SchemaKind::Boolean => DataType::Boolean,
        SchemaKind::Int8 => DataType::Int8,
        SchemaKind::Int16 => DataType::Int16,
        SchemaKind::Int32 => DataType::Int32,
        SchemaKind::Int64 => DataType::Int64,
        SchemaKind::Float => DataType::Float32,
        SchemaKind::Double => DataType::Float64,
        SchemaKind::Date | SchemaKind::Timestamp => {
            DataType::Timestamp(TimeUnit::Millisecond, None)
        }
        SchemaKind::Time => DataType::Time32(TimeUnit::Millisecond),
        SchemaKind::Instant => DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into())),
        SchemaKind::LocalDate => DataType::Date32,
        SchemaKind::LocalTime => DataType::Time64(TimeUnit::Nanosecond),
        SchemaKind::LocalDateTime => DataType::Timestamp(TimeUnit::Nanosecond, None),
        _ => return None,
    })
}

/// The columns a table over a topic with this schema has.
pub fn columns_of(info: &SchemaInfo) -> Result<Vec<Field>, String> {
    match &info.kind {
        SchemaKind::Avro | SchemaKind::Json | SchemaKind::Protobuf => {
            let schema = avro_record_schema(&info.data)?;
            Ok(schema.fields().iter().map(|f| f.as_ref().clone()).collect())
        }
        kind => match primitive_type(kind) {
            Some(t) => Ok(vec![Field::new(VALUE_COLUMN, t, true)]),
            None => Err(format!(
                "{} schemas cannot be read into columns yet; declare the columns and a format",
                kind.name()
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn info(kind: SchemaKind, data: &str) -> SchemaInfo {
        SchemaInfo {
            version: None,
            kind,
            data: data.to_string(),
            properties: BTreeMap::new(),
        }
    }

    #[test]
    fn avro_records_map_logical_types_and_nullable_unions() {
        // What the Python client registers for a Record with these fields.
        let avro = r#"{"type":"record","name":"Click","fields":[
            {"name":"user_id","type":"string"},
            {"name":"url","type":["null","string"]},
            {"name":"dwell_ms","type":["null","long"]},
            {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
            {"name":"day","type":{"type":"int","logicalType":"date"}},
            {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
            {"name":"id","type":{"type":"string","logicalType":"uuid"}}]}"#;
        for kind in [SchemaKind::Avro, SchemaKind::Json] {
            let fields = columns_of(&info(kind, avro)).expect("columns");
            let described: Vec<(String, DataType, bool)> = fields
                .iter()
                .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
                .collect();
            assert_eq!(described[0], ("user_id".into(), DataType::Utf8, false));
            assert_eq!(described[1], ("url".into(), DataType::Utf8, true));
            assert_eq!(described[2], ("dwell_ms".into(), DataType::Int64, true));
            assert!(
                matches!(
                    &described[3].1,
                    DataType::Timestamp(TimeUnit::Millisecond, _)
                ),
                "{:?}",
                described[3]
            );
            assert_eq!(described[4].1, DataType::Date32);
            assert!(
                matches!(
                    described[5].1,
                    DataType::Decimal128(10, 2) | DataType::Decimal64(10, 2)
                ),
                "{:?}",
                described[5]
            );
            assert_eq!(described.len(), 7);
        }
    }

    #[test]
    fn primitive_kinds_make_one_value_column() {
        let fields = columns_of(&info(SchemaKind::Int64, "")).expect("columns");
        assert_eq!(fields, vec![Field::new("value", DataType::Int64, true)]);
        let fields = columns_of(&info(SchemaKind::String, "")).expect("columns");
        assert_eq!(fields[0].data_type(), &DataType::Utf8);
    }

    #[test]
    fn unsupported_kinds_and_bad_schemas_say_why() {
        let err = columns_of(&info(SchemaKind::ProtobufNative, "{}")).expect_err("unsupported");
        assert!(err.contains("PROTOBUF_NATIVE"), "{err}");
        let err =
            columns_of(&info(SchemaKind::Avro, "{\"type\":\"string\"}")).expect_err("not a record");
        assert!(err.contains("not a record"), "{err}");
    }
}
