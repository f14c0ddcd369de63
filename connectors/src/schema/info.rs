//! A topic's schema as Pulsar's Schema Registry describes it (`GetSchemaResponse` of the
//! admin REST API): its kind, version, definition and properties.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// A schema version: Pulsar's `LongSchemaVersion`, counting from 0 per topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaVersion(pub i64);

impl SchemaVersion {
    /// The version a message carries (`MessageMetadata.schema_version`: 8 bytes, big-endian).
    pub fn from_message_bytes(bytes: &[u8]) -> Option<SchemaVersion> {
        let bytes: [u8; 8] = bytes.try_into().ok()?;
        Some(SchemaVersion(i64::from_be_bytes(bytes)))
    }
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Java's `SchemaType`, by the names the REST API uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchemaKind {
    /// No schema: raw bytes (also `BYTES`).
    None,
    /// UTF-8 text.
    String,
    /// JSON described by an Avro record schema.
    Json,
    /// Protobuf described by an Avro schema (avro-protobuf).
    Protobuf,
    /// A bare Avro binary datum.
    Avro,
    /// One byte, 0 or 1.
    Boolean,
    /// Big-endian signed integers of 1, 2, 4 and 8 bytes.
    Int8,
    /// See `Int8`.
    Int16,
    /// See `Int8`.
    Int32,
    /// See `Int8`.
    Int64,
    /// Big-endian IEEE 754 single precision.
    Float,
    /// Big-endian IEEE 754 double precision.
    Double,
    /// `java.util.Date`: 8-byte big-endian epoch milliseconds.
    Date,
    /// `java.sql.Time`: 8-byte big-endian milliseconds.
    Time,
    /// `java.sql.Timestamp`: 8-byte big-endian epoch milliseconds.
    Timestamp,
    /// A key schema and a value schema (`KeyValue`).
    KeyValue,
    /// `java.time.Instant`: 8-byte epoch seconds, then 4-byte nanoseconds.
    Instant,
    /// `java.time.LocalDate`: 8-byte epoch day.
    LocalDate,
    /// `java.time.LocalTime`: 8-byte nanosecond of day.
    LocalTime,
    /// `java.time.LocalDateTime`: 8-byte epoch day, then 8-byte nanosecond of day.
    LocalDateTime,
    /// Protobuf with a `FileDescriptorSet`.
    ProtobufNative,
    /// Any other kind (`EXTERNAL`, `AUTO_*`), by name.
    Other(String),
}

impl SchemaKind {
    /// The kind of a REST `type` name.
    pub fn from_name(name: &str) -> SchemaKind {
        match name {
            "NONE" | "BYTES" => SchemaKind::None,
            "STRING" => SchemaKind::String,
            "JSON" => SchemaKind::Json,
            "PROTOBUF" => SchemaKind::Protobuf,
            "AVRO" => SchemaKind::Avro,
            "BOOLEAN" => SchemaKind::Boolean,
            "INT8" => SchemaKind::Int8,
            "INT16" => SchemaKind::Int16,
            "INT32" => SchemaKind::Int32,
            "INT64" => SchemaKind::Int64,
            "FLOAT" => SchemaKind::Float,
            "DOUBLE" => SchemaKind::Double,
            "DATE" => SchemaKind::Date,
            "TIME" => SchemaKind::Time,
            "TIMESTAMP" => SchemaKind::Timestamp,
            "KEY_VALUE" => SchemaKind::KeyValue,
            "INSTANT" => SchemaKind::Instant,
            "LOCAL_DATE" => SchemaKind::LocalDate,
            "LOCAL_TIME" => SchemaKind::LocalTime,
            "LOCAL_DATE_TIME" => SchemaKind::LocalDateTime,
            "PROTOBUF_NATIVE" => SchemaKind::ProtobufNative,
            other => SchemaKind::Other(other.to_string()),
        }
    }

    /// The REST name of the kind.
    pub fn name(&self) -> &str {
        match self {
            SchemaKind::None => "NONE",
            SchemaKind::String => "STRING",
            SchemaKind::Json => "JSON",
            SchemaKind::Protobuf => "PROTOBUF",
            SchemaKind::Avro => "AVRO",
            SchemaKind::Boolean => "BOOLEAN",
            SchemaKind::Int8 => "INT8",
            SchemaKind::Int16 => "INT16",
            SchemaKind::Int32 => "INT32",
            SchemaKind::Int64 => "INT64",
            SchemaKind::Float => "FLOAT",
            SchemaKind::Double => "DOUBLE",
            SchemaKind::Date => "DATE",
            SchemaKind::Time => "TIME",
            SchemaKind::Timestamp => "TIMESTAMP",
            SchemaKind::KeyValue => "KEY_VALUE",
            SchemaKind::Instant => "INSTANT",
            SchemaKind::LocalDate => "LOCAL_DATE",
            SchemaKind::LocalTime => "LOCAL_TIME",
            SchemaKind::LocalDateTime => "LOCAL_DATE_TIME",
            SchemaKind::ProtobufNative => "PROTOBUF_NATIVE",
            SchemaKind::Other(name) => name,
        }
    }
}

/// How a KEY_VALUE message carries its key (`kv.encoding.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyValueEncoding {
    /// Key and value both in the payload: `[i32 BE keyLen][key][i32 BE valueLen][value]`.
    Inline,
    /// The key in the message key (base64 when binary), the value alone in the payload.
    Separated,
}

/// One schema version of a topic.
#[derive(Clone, Debug, PartialEq)]
pub struct SchemaInfo {
    /// The version; `None` for a sub-schema of a KEY_VALUE schema.
    pub version: Option<SchemaVersion>,
    /// The kind.
    pub kind: SchemaKind,
    /// The definition: an Avro schema JSON for AVRO and JSON, empty for primitive kinds.
    pub data: String,
    /// Schema properties.
    pub properties: BTreeMap<String, String>,
}

/// A KEY_VALUE schema taken apart.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyValueSchema {
    /// The key's schema.
    pub key: SchemaInfo,
    /// The value's schema.
    pub value: SchemaInfo,
    /// Where the key travels.
    pub encoding: KeyValueEncoding,
}

#[derive(Deserialize)]
struct GetSchemaResponse {
    version: Option<i64>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    properties: Option<BTreeMap<String, String>>,
}

impl SchemaInfo {
    /// Parses a `GetSchemaResponse` JSON document.
    pub fn from_rest_json(text: &str) -> Result<SchemaInfo, String> {
        let response: GetSchemaResponse =
            serde_json::from_str(text).map_err(|e| format!("not a GetSchemaResponse: {e}"))?;
        Ok(SchemaInfo {
            version: response.version.filter(|v| *v >= 0).map(SchemaVersion),
            kind: SchemaKind::from_name(&response.kind),
            data: response.data.unwrap_or_default(),
            properties: response.properties.unwrap_or_default(),
        })
    }

    /// The key and value schemas of a KEY_VALUE schema, from the REST form of its data
    /// (`{"key": <schema or "">, "value": <schema or "">}`) and its properties.
    pub fn key_value(&self) -> Result<KeyValueSchema, String> {
        if self.kind != SchemaKind::KeyValue {
            return Err(format!("a {} schema is not KEY_VALUE", self.kind.name()));
        }
        let data: serde_json::Value = serde_json::from_str(&self.data)
            .map_err(|e| format!("KEY_VALUE schema data is not JSON: {e}"))?;
        let part = |side: &str| -> Result<SchemaInfo, String> {
            let kind = self
                .properties
                .get(&format!("{side}.schema.type"))
                .map(|k| SchemaKind::from_name(k))
                .ok_or_else(|| format!("KEY_VALUE schema has no '{side}.schema.type' property"))?;
            let definition = match data.get(side) {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            let properties = match self.properties.get(&format!("{side}.schema.properties")) {
                None => BTreeMap::new(),
                Some(text) if text.trim().is_empty() => BTreeMap::new(),
                Some(text) => serde_json::from_str(text).map_err(|e| {
                    format!("KEY_VALUE '{side}.schema.properties' is not a JSON map: {e}")
                })?,
            };
            Ok(SchemaInfo {
                version: None,
                kind,
                data: definition,
                properties,
            })
        };
        let encoding = match self.properties.get("kv.encoding.type").map(String::as_str) {
            None | Some("INLINE") => KeyValueEncoding::Inline,
            Some("SEPARATED") => KeyValueEncoding::Separated,
            Some(other) => return Err(format!("unknown kv.encoding.type '{other}'")),
        };
        Ok(KeyValueSchema {
            key: part("key")?,
            value: part("value")?,
            encoding,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_avro_response() {
        // As Pulsar 3.x answers GET /admin/v2/schemas/public/default/clicks/schema.
        let text = r#"{"version":2,"type":"AVRO","timestamp":1732000000000,
            "data":"{\"type\":\"record\",\"name\":\"Click\",\"fields\":[{\"name\":\"user\",\"type\":\"string\"}]}",
            "properties":{"__alwaysAllowNull":"true","__jsr310ConversionEnabled":"false"}}"#;
        let info = SchemaInfo::from_rest_json(text).expect("valid");
        assert_eq!(info.version, Some(SchemaVersion(2)));
        assert_eq!(info.kind, SchemaKind::Avro);
        assert!(info.data.contains("\"Click\""));
        assert_eq!(info.properties["__alwaysAllowNull"], "true");
    }

    #[test]
    fn takes_a_key_value_schema_apart() {
        let text = r#"{"version":0,"type":"KEY_VALUE","timestamp":0,
            "data":"{\"key\":\"\",\"value\":{\"type\":\"record\",\"name\":\"V\",\"fields\":[]}}",
            "properties":{"key.schema.type":"STRING","key.schema.name":"String",
              "key.schema.properties":"{}","value.schema.type":"JSON",
              "value.schema.properties":"{\"__alwaysAllowNull\":\"true\"}",
              "kv.encoding.type":"SEPARATED"}}"#;
        let kv = SchemaInfo::from_rest_json(text)
            .expect("valid")
            .key_value()
            .expect("key value");
        assert_eq!(kv.key.kind, SchemaKind::String);
        assert_eq!(kv.key.data, "");
        assert_eq!(kv.value.kind, SchemaKind::Json);
        let value: serde_json::Value = serde_json::from_str(&kv.value.data).expect("json");
        assert_eq!(value["type"], "record");
        assert_eq!(kv.value.properties["__alwaysAllowNull"], "true");
        assert_eq!(kv.encoding, KeyValueEncoding::Separated);
    }

    #[test]
    fn message_versions_are_big_endian_longs() {
        assert_eq!(
            SchemaVersion::from_message_bytes(&[0, 0, 0, 0, 0, 0, 1, 2]),
            Some(SchemaVersion(258))
        );
        assert_eq!(SchemaVersion::from_message_bytes(&[]), None);
    }
}
