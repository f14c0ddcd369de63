//! The Arrow columns of a registry schema: a record's fields for AVRO, JSON and PROTOBUF
//! (whose registry entries are Avro record schemas), one `value` column for primitive kinds.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow_avro::reader::ReaderBuilder;
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};

use super::info::{SchemaInfo, SchemaKind};

/// The column a primitive schema's value is read into.
pub const VALUE_COLUMN: &str = "value";

/// Fields (nested ones included, every reference to a named type counted again) a registry
/// schema may expand to: a named type referenced twice in each of n nested records expands
/// to 2^n fields, which a schema of a few kilobytes can make take all memory.
pub const MAX_SCHEMA_FIELDS: usize = 10_000;

/// The Arrow schema arrow-avro reads an Avro record schema (JSON text) into.
pub fn avro_record_schema(avro_json: &str) -> Result<SchemaRef, String> {
    let parsed: serde_json::Value =
        serde_json::from_str(avro_json).map_err(|e| format!("not an Avro schema: {e}"))?;
    if parsed.get("type").and_then(|t| t.as_str()) != Some("record") {
        return Err("the Avro schema is not a record".into());
    }
    check_avro_expansion(&parsed)?;
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

/// Refuses an Avro schema (JSON text) that expands beyond [`MAX_SCHEMA_FIELDS`] before it
/// reaches arrow-avro, which builds every reference to a named type out in full.
pub(crate) fn check_avro_size(avro_json: &str) -> Result<(), String> {
    let parsed: serde_json::Value =
        serde_json::from_str(avro_json).map_err(|e| format!("not an Avro schema: {e}"))?;
    check_avro_expansion(&parsed)
}

fn check_avro_expansion(schema: &serde_json::Value) -> Result<(), String> {
    let mut named = NamedSizes::default();
    if expanded_size(schema, "", &mut named) > MAX_SCHEMA_FIELDS {
        return Err(format!(
            "the Avro schema expands to more than {MAX_SCHEMA_FIELDS} fields (its named types \
             are referenced over and over); schemas this large are not supported"
        ));
    }
    Ok(())
}

/// Expanded sizes of the named types defined so far, by full name and by short name (a
/// reference that cannot be resolved exactly is taken for the largest of that short name).
#[derive(Default)]
struct NamedSizes {
    full: HashMap<String, usize>,
    short: HashMap<String, usize>,
}

impl NamedSizes {
    fn define(&mut self, full: String, size: usize) {
        let short = full.rsplit('.').next().unwrap_or(&full).to_string();
        let entry = self.short.entry(short).or_insert(0);
        *entry = (*entry).max(size);
        self.full.insert(full, size);
    }

    fn lookup(&self, name: &str, namespace: &str) -> usize {
        let qualified = if name.contains('.') || namespace.is_empty() {
            name.to_string()
        } else {
            format!("{namespace}.{name}")
        };
        let short = name.rsplit('.').next().unwrap_or(name);
        self.full
            .get(&qualified)
            .or_else(|| self.full.get(name))
            .or_else(|| self.short.get(short))
            .copied()
            .unwrap_or(1)
    }
}

/// The number of fields and types `schema` expands to, saturating just past the limit.
fn expanded_size(schema: &serde_json::Value, namespace: &str, named: &mut NamedSizes) -> usize {
    use serde_json::Value;
    const PRIMITIVES: [&str; 8] = [
        "null", "boolean", "int", "long", "float", "double", "bytes", "string",
    ];
    let cap = |n: usize| n.min(MAX_SCHEMA_FIELDS + 1);
    match schema {
        Value::String(name) if PRIMITIVES.contains(&name.as_str()) => 1,
        Value::String(name) => named.lookup(name, namespace),
        Value::Array(branches) => {
            let mut size = 1usize;
            for b in branches {
                size = cap(size.saturating_add(expanded_size(b, namespace, named)));
            }
            size
        }
        Value::Object(object) => {
            let kind = object.get("type");
            let full_name = |named_type: &serde_json::Map<String, Value>| {
                let name = named_type.get("name").and_then(Value::as_str).unwrap_or("");
                match named_type.get("namespace").and_then(Value::as_str) {
                    _ if name.contains('.') => name.to_string(),
                    Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
                    _ if !namespace.is_empty() => format!("{namespace}.{name}"),
                    _ => name.to_string(),
                }
            };
            match kind.and_then(Value::as_str) {
                Some("record" | "error") => {
                    let full = full_name(object);
                    let inner = full.rsplit_once('.').map_or("", |(ns, _)| ns).to_string();
                    let mut size = 1usize;
                    let fields = object.get("fields").and_then(Value::as_array);
                    for field in fields.into_iter().flatten() {
                        let ty = field.get("type").unwrap_or(&Value::Null);
                        size = cap(size.saturating_add(1 + expanded_size(ty, &inner, named)));
                    }
                    named.define(full, size);
                    size
                }
                Some("enum" | "fixed") => {
                    named.define(full_name(object), 1);
                    1
                }
                Some("array") => cap(1 + expanded_size(
                    object.get("items").unwrap_or(&Value::Null),
                    namespace,
                    named,
                )),
                Some("map") => cap(1 + expanded_size(
                    object.get("values").unwrap_or(&Value::Null),
                    namespace,
                    named,
                )),
                // A primitive with a logical type, or a reference in the long form.
                Some(_) => kind.map_or(1, |k| expanded_size(k, namespace, named)),
                // `{"type": {...}}` or `{"type": [...]}`.
                None => match kind {
                    Some(inner @ (Value::Object(_) | Value::Array(_))) => {
                        expanded_size(inner, namespace, named)
                    }
                    _ => 1,
                },
            }
        }
        _ => 1,
    }
}

/// The Arrow schema the JSON format reads a JSON schema's Avro record into: enums as text
/// (JSON carries their symbols), and an error for types arrow-json cannot fill.
pub fn json_record_schema(avro_json: &str) -> Result<SchemaRef, String> {
    let schema = avro_record_schema(avro_json)?;
    let fields = schema
        .fields()
        .iter()
        .map(|f| {
            let ty =
                json_readable(f.data_type()).map_err(|e| format!("field '{}': {e}", f.name()))?;
            Ok(f.as_ref().clone().with_data_type(ty))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

fn json_readable(ty: &DataType) -> Result<DataType, String> {
    let field = |f: &Field| -> Result<Arc<Field>, String> {
        Ok(Arc::new(
            f.clone().with_data_type(json_readable(f.data_type())?),
        ))
    };
    Ok(match ty {
        DataType::Dictionary(_, values) => json_readable(values)?,
        DataType::List(item) => DataType::List(field(item)?),
        DataType::LargeList(item) => DataType::LargeList(field(item)?),
        DataType::FixedSizeList(item, n) => DataType::FixedSizeList(field(item)?, *n),
        DataType::Map(entries, sorted) => DataType::Map(field(entries)?, *sorted),
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| field(f))
                .collect::<Result<Fields, String>>()?,
        ),
        DataType::Union(..) | DataType::Interval(_) => {
            return Err(format!("{ty} cannot be read from JSON"));
        }
        other => other.clone(),
    })
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
        SchemaKind::Avro => {
            let schema = avro_record_schema(&info.data)?;
            Ok(schema.fields().iter().map(|f| f.as_ref().clone()).collect())
        }
        SchemaKind::Json => {
            let schema = json_record_schema(&info.data)?;
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
        SchemaKind::Avro => {
            let schema = avro_record_schema(&info.data)?;
            Ok(schema.fields().iter().map(|f| f.as_ref().clone()).collect())
        }
        SchemaKind::Json => {
            let schema = json_record_schema(&info.data)?;
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

    /// Record `R{n}` holding `R{n-1}` by definition and twice more by name: 3^n fields.
    fn chain(depth: usize) -> String {
        let mut schema =
            r#"{"type":"record","name":"R0","fields":[{"name":"x","type":"int"}]}"#.to_string();
        for i in 1..=depth {
            let prev = format!("R{}", i - 1);
            schema = format!(
                r#"{{"type":"record","name":"R{i}","fields":[{{"name":"a","type":{schema}}},{{"name":"b","type":"{prev}"}},{{"name":"c","type":"{prev}"}}]}}"#
            );
        }
        schema
    }

    #[test]
    fn a_schema_expanding_past_the_field_limit_is_refused_before_arrow_sees_it() {
        let fields = |s: &str| avro_record_schema(s).map(|s| s.flattened_fields().len());
        assert!(fields(&chain(4)).expect("81 leaves") > 81);
        let err = avro_record_schema(&chain(12)).expect_err("3^12 fields");
        assert!(err.contains("10000"), "{err}");
        assert!(check_avro_size(&chain(12)).is_err());
    }

    #[test]
    fn json_schemas_read_enums_as_text_and_refuse_unions() {
        let schema = json_record_schema(
            r#"{"type":"record","name":"r","fields":[
                {"name":"c","type":{"type":"enum","name":"C","symbols":["A","B"]}},
                {"name":"o","type":["null","string"]}]}"#,
        )
        .expect("enum and optional");
        assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
        let err = json_record_schema(
            r#"{"type":"record","name":"r","fields":[{"name":"u","type":["int","string"]}]}"#,
        )
        .expect_err("a two-type union");
        assert!(err.contains("field 'u'"), "{err}");
    }
}
