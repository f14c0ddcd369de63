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

/// The column a primitive KEY_VALUE key is read into.
pub const KEY_COLUMN: &str = "key";

/// The columns a table over a topic with this schema has.
pub fn columns_of(info: &SchemaInfo) -> Result<Vec<Field>, String> {
    match &info.kind {
        SchemaKind::Avro | SchemaKind::Json => {
            let schema = avro_record_schema(&info.data)?;
            Ok(schema.fields().iter().map(|f| f.as_ref().clone()).collect())
        }
        SchemaKind::ProtobufNative => {
            crate::format::protobuf_columns(&crate::format::message_descriptor(&info.data)?)
        }
        SchemaKind::KeyValue => {
            let kv = info.key_value()?;
            let (keys, values) = key_value_columns(&kv.key, &kv.value)?;
            Ok(keys.into_iter().chain(values).collect())
        }
        kind => side_columns(info, VALUE_COLUMN).map_err(|_| {
            format!(
                "{} schemas cannot be read into columns; declare the columns and a 'format'",
                kind.name()
            )
        }),
    }
}

/// The columns of one side of a KEY_VALUE schema: a record's fields, or one column.
fn side_columns(info: &SchemaInfo, primitive_name: &str) -> Result<Vec<Field>, String> {
    match &info.kind {
        SchemaKind::ProtobufNative => {
            crate::format::protobuf_columns(&crate::format::message_descriptor(&info.data)?)
        }
        SchemaKind::Avro | SchemaKind::Json => {
            let schema = avro_record_schema(&info.data)?;
            Ok(schema.fields().iter().map(|f| f.as_ref().clone()).collect())
        }
        kind => match primitive_type(kind) {
            Some(t) => Ok(vec![Field::new(primitive_name, t, true)]),
            None => Err(format!("{} schemas are not supported", kind.name())),
        },
    }
}

/// Key columns and value columns of a KEY_VALUE schema, side by side: a primitive key is
/// `key`, a primitive value `value`; a key field whose name a value field has too is
/// renamed `key_<name>`.
pub fn key_value_columns(
    key: &SchemaInfo,
    value: &SchemaInfo,
) -> Result<(Vec<Field>, Vec<Field>), String> {
    let values = side_columns(value, VALUE_COLUMN).map_err(|e| format!("KEY_VALUE value: {e}"))?;
    let keys = side_columns(key, KEY_COLUMN)
        .map_err(|e| format!("KEY_VALUE key: {e}"))?
        .into_iter()
        .map(|f| {
            if values.iter().any(|v| v.name() == f.name()) {
                let name = format!("key_{}", f.name());
                f.with_name(name)
            } else {
                f
            }
        })
        .collect();
    Ok((keys, values))
}

/// An Avro record schema with only the fields named in `keep` (the reader schema of a
/// projection: Avro resolution skips the writer's other fields).
pub fn project_record_schema(avro_json: &str, keep: &[&str]) -> Result<String, String> {
    let mut parsed: serde_json::Value =
        serde_json::from_str(avro_json).map_err(|e| format!("not an Avro schema: {e}"))?;
    let fields = parsed
        .get_mut("fields")
        .and_then(|f| f.as_array_mut())
        .ok_or("the Avro schema is not a record")?;
    fields.retain(|f| {
        f.get("name")
            .and_then(|n| n.as_str())
            .is_some_and(|n| keep.contains(&n))
    });
    Ok(parsed.to_string())
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
    fn key_value_schemas_put_key_and_value_columns_side_by_side() {
        let record = r#"{"type":"record","name":"V","fields":[
            {"name":"user_id","type":"string"},{"name":"clicks","type":"long"}]}"#;
        let key = info(
            SchemaKind::Avro,
            r#"{"type":"record","name":"K","fields":[{"name":"user_id","type":"string"},{"name":"region","type":"string"}]}"#,
        );
        let (keys, values) =
            key_value_columns(&key, &info(SchemaKind::Avro, record)).expect("columns");
        let names: Vec<&str> = keys
            .iter()
            .chain(&values)
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["key_user_id", "region", "user_id", "clicks"]);
        let (keys, _) = key_value_columns(
            &info(SchemaKind::String, ""),
            &info(SchemaKind::Json, record),
        )
        .expect("columns");
        assert_eq!(keys, vec![Field::new("key", DataType::Utf8, true)]);
    }

    #[test]
    fn projections_keep_the_named_fields_in_writer_order() {
        let record = r#"{"type":"record","name":"V","fields":[
            {"name":"a","type":"string"},{"name":"b","type":"long"},{"name":"c","type":"int"}]}"#;
        let projected = project_record_schema(record, &["c", "a"]).expect("record");
        let schema = avro_record_schema(&projected).expect("valid");
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["a", "c"]);
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
        let err =
            columns_of(&info(SchemaKind::Other("EXTERNAL".into()), "")).expect_err("unsupported");
        assert!(err.contains("EXTERNAL"), "{err}");
        let err =
            columns_of(&info(SchemaKind::Avro, "{\"type\":\"string\"}")).expect_err("not a record");
        assert!(err.contains("not a record"), "{err}");
    }
}
