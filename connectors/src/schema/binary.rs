//! Schemas in the binary protocol's form (`Schema` in `PulsarApi.proto`): read from a
//! `GetSchemaResponse`, and written for a producer that announces its schema.

use std::collections::BTreeMap;

use pulsar::proto;

use super::info::{SchemaInfo, SchemaKind, SchemaVersion};

/// The REST name of a protocol `Schema.Type` number.
fn kind_of(type_number: i32) -> SchemaKind {
    use proto::schema::Type;
    let name = match Type::try_from(type_number) {
        Ok(Type::None) => "NONE",
        Ok(Type::String) => "STRING",
        Ok(Type::Json) => "JSON",
        Ok(Type::Protobuf) => "PROTOBUF",
        Ok(Type::Avro) => "AVRO",
        Ok(Type::Bool) => "BOOLEAN",
        Ok(Type::Int8) => "INT8",
        Ok(Type::Int16) => "INT16",
        Ok(Type::Int32) => "INT32",
        Ok(Type::Int64) => "INT64",
        Ok(Type::Float) => "FLOAT",
        Ok(Type::Double) => "DOUBLE",
        Ok(Type::Date) => "DATE",
        Ok(Type::Time) => "TIME",
        Ok(Type::Timestamp) => "TIMESTAMP",
        Ok(Type::KeyValue) => "KEY_VALUE",
        Ok(Type::Instant) => "INSTANT",
        Ok(Type::LocalDate) => "LOCAL_DATE",
        Ok(Type::LocalTime) => "LOCAL_TIME",
        Ok(Type::LocalDateTime) => "LOCAL_DATE_TIME",
        Ok(Type::ProtobufNative) => "PROTOBUF_NATIVE",
        Err(_) => return SchemaKind::Other(format!("protocol type {type_number}")),
    };
    SchemaKind::from_name(name)
}

/// The protocol `Schema.Type` number of a kind, for the kinds a producer announces.
fn type_of(kind: &SchemaKind) -> proto::schema::Type {
    use proto::schema::Type;
    match kind {
        SchemaKind::Avro => Type::Avro,
        SchemaKind::Json => Type::Json,
        SchemaKind::String => Type::String,
        _ => Type::None,
    }
}

/// One side of a binary KEY_VALUE definition in the REST form: the schema as a JSON
/// value, or `""` for a primitive side (length 0).
fn side_as_json(bytes: &[u8]) -> serde_json::Value {
    if bytes.is_empty() {
        return serde_json::Value::String(String::new());
    }
    let text = String::from_utf8_lossy(bytes);
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text.into_owned()))
}

/// The KEY_VALUE definition `[int32 keyLen][key][int32 valueLen][value]` in the REST form.
fn key_value_data(data: &[u8]) -> Result<String, String> {
    let mut at = 0usize;
    let mut part = || -> Result<&[u8], String> {
        let len: [u8; 4] = data
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or("KEY_VALUE schema data is truncated")?;
        at += 4;
        let len = i32::from_be_bytes(len).max(0) as usize;
        let bytes = data
            .get(at..at + len)
            .ok_or("KEY_VALUE schema data is truncated")?;
        at += len;
        Ok(bytes)
    };
    let key = side_as_json(part()?);
    let value = side_as_json(part()?);
    Ok(serde_json::json!({ "key": key, "value": value }).to_string())
}

/// A `GetSchemaResponse`'s schema and version as the registry describes it.
pub fn from_protocol(schema: &proto::Schema, version: Option<&[u8]>) -> Result<SchemaInfo, String> {
    let kind = kind_of(schema.r#type);
    let data = if kind == SchemaKind::KeyValue {
        key_value_data(&schema.schema_data)?
    } else {
        String::from_utf8(schema.schema_data.clone())
            .map_err(|e| format!("the schema definition is not UTF-8: {e}"))?
    };
    Ok(SchemaInfo {
        version: version.and_then(SchemaVersion::from_message_bytes),
        kind,
        data,
        properties: schema
            .properties
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect::<BTreeMap<_, _>>(),
    })
}

/// The schema a producer announces for payloads of `kind` described by `definition`.
pub fn to_protocol(kind: &SchemaKind, name: &str, definition: &str) -> proto::Schema {
    proto::Schema {
        name: name.to_string(),
        schema_data: definition.as_bytes().to_vec(),
        r#type: type_of(kind) as i32,
        properties: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_binary_key_value_schema() {
        let value = br#"{"type":"record","name":"V","fields":[]}"#;
        let mut data = Vec::new();
        data.extend(0i32.to_be_bytes());
        data.extend((value.len() as i32).to_be_bytes());
        data.extend(value);
        let schema = proto::Schema {
            name: "kv".into(),
            schema_data: data,
            r#type: proto::schema::Type::KeyValue as i32,
            properties: vec![
                proto::KeyValue {
                    key: "key.schema.type".into(),
                    value: "STRING".into(),
                },
                proto::KeyValue {
                    key: "value.schema.type".into(),
                    value: "AVRO".into(),
                },
            ],
        };
        let info = from_protocol(&schema, Some(&3i64.to_be_bytes())).expect("valid");
        assert_eq!(info.version, Some(SchemaVersion(3)));
        let kv = info.key_value().expect("key value");
        assert_eq!(kv.key.kind, SchemaKind::String);
        assert_eq!(kv.value.kind, SchemaKind::Avro);
        assert!(kv.value.data.contains("\"record\""), "{}", kv.value.data);
    }
}
