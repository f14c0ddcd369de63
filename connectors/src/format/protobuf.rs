//! Pulsar's PROTOBUF_NATIVE schema: the registry holds a `FileDescriptorSet` (base64) and the
//! root message's name; payloads are protobuf binary, decoded dynamically (prost-reflect)
//! into one column per top-level field: nested messages as structs, repeated fields as
//! lists, enums by name, `google.protobuf.Timestamp` as a timestamp.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
    ListArray, StringArray, StructArray, TimestampNanosecondArray, UInt32Array, UInt64Array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use base64::Engine as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value,
};

use super::{DecodedRows, PayloadDecoder};
use crate::error::{ConnectorError, Result};
use crate::pulsar::ReceivedMessage;

/// Nesting deeper than this is taken for a recursive message type, which has no Arrow form.
const MAX_DEPTH: usize = 16;
const TIMESTAMP: &str = "google.protobuf.Timestamp";

/// The root message of a PROTOBUF_NATIVE schema definition
/// (`{"fileDescriptorSet": base64, "rootMessageTypeName": ..., "rootFileDescriptorName": ...}`).
pub fn message_descriptor(definition: &str) -> std::result::Result<MessageDescriptor, String> {
    let parsed: serde_json::Value = serde_json::from_str(definition)
        .map_err(|e| format!("PROTOBUF_NATIVE schema data is not JSON: {e}"))?;
    let set = parsed
        .get("fileDescriptorSet")
        .and_then(|v| v.as_str())
        .ok_or("PROTOBUF_NATIVE schema data has no fileDescriptorSet")?;
    let root = parsed
        .get("rootMessageTypeName")
        .and_then(|v| v.as_str())
        .ok_or("PROTOBUF_NATIVE schema data has no rootMessageTypeName")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(set)
        .map_err(|e| format!("fileDescriptorSet is not base64: {e}"))?;
    message_in_descriptor_set(&bytes, root)
}

/// Message `name` of a binary `FileDescriptorSet` (`protoc --include_imports
/// --descriptor_set_out=...`).
pub fn message_in_descriptor_set(
    set: &[u8],
    name: &str,
) -> std::result::Result<MessageDescriptor, String> {
    check_syntax(set)?;
    let pool = DescriptorPool::decode(set).map_err(|e| format!("not a FileDescriptorSet: {e}"))?;
    pool.get_message_by_name(name).ok_or_else(|| {
        let known: Vec<String> = pool
            .all_messages()
            .map(|m| m.full_name().to_string())
            .collect();
        format!(
            "the FileDescriptorSet has no message '{name}' (it has: {})",
            known.join(", ")
        )
    })
}

/// Refuses a file whose `syntax` is neither proto2 nor proto3 before prost-reflect sees it:
/// prost-reflect 0.14 panics (index out of bounds) building the error for one.
fn check_syntax(set: &[u8]) -> std::result::Result<(), String> {
    use prost::Message;
    let files = prost_reflect::prost_types::FileDescriptorSet::decode(set)
        .map_err(|e| format!("not a FileDescriptorSet: {e}"))?;
    for file in &files.file {
        if let Some(syntax) = file.syntax.as_deref()
            && !matches!(syntax, "proto2" | "proto3")
        {
            return Err(format!(
                "file '{}' of the FileDescriptorSet has syntax '{syntax}'; proto2 and proto3 are supported",
                file.name()
            ));
        }
    }
    Ok(())
}

/// The Arrow columns of a message's top-level fields.
pub fn protobuf_columns(message: &MessageDescriptor) -> std::result::Result<Vec<Field>, String> {
    // Each nested field counts: a message with several fields of one message type, nested,
    // multiplies the columns at every level (up to MAX_DEPTH), and a small descriptor could
    // otherwise expand to billions.
    let mut budget = crate::schema::arrow_columns::MAX_SCHEMA_FIELDS;
    message
        .fields()
        .map(|f| Ok(Field::new(f.name(), field_type(&f, 0, &mut budget)?, true)))
        .collect()
}

fn field_type(
    field: &FieldDescriptor,
    depth: usize,
    budget: &mut usize,
) -> std::result::Result<DataType, String> {
    *budget = budget.checked_sub(1).ok_or_else(|| {
        format!(
            "the message expands to more than {} fields (nested messages included); schemas \
             this large are not supported",
            crate::schema::arrow_columns::MAX_SCHEMA_FIELDS
        )
    })?;
    if field.is_map() {
        return Err(format!(
            "field '{}' is a map, which is not supported",
            field.name()
        ));
    }
    let item = kind_type(&field.kind(), depth, budget)
        .map_err(|e| format!("field '{}': {e}", field.name()))?;
    Ok(if field.is_list() {
        DataType::List(Arc::new(Field::new("item", item, true)))
    } else {
        item
    })
}

fn kind_type(
    kind: &Kind,
    depth: usize,
    budget: &mut usize,
) -> std::result::Result<DataType, String> {
    Ok(match kind {
        Kind::Double => DataType::Float64,
        Kind::Float => DataType::Float32,
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => DataType::Int32,
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => DataType::Int64,
        Kind::Uint32 | Kind::Fixed32 => DataType::UInt32,
        Kind::Uint64 | Kind::Fixed64 => DataType::UInt64,
        Kind::Bool => DataType::Boolean,
        Kind::String | Kind::Enum(_) => DataType::Utf8,
        Kind::Bytes => DataType::Binary,
        Kind::Message(m) if m.full_name() == TIMESTAMP => {
            DataType::Timestamp(TimeUnit::Nanosecond, Some("+00:00".into()))
        }
        Kind::Message(m) => {
            if depth >= MAX_DEPTH {
                return Err(format!(
                    "message '{}' nests too deep (recursive?)",
                    m.full_name()
                ));
            }
            let fields = m
                .fields()
                .map(|f| {
                    Ok(Field::new(
                        f.name(),
                        field_type(&f, depth + 1, budget)?,
                        true,
                    ))
                })
                .collect::<std::result::Result<Vec<_>, String>>()?;
            DataType::Struct(Fields::from(fields))
        }
    })
}

/// A field's value, `None` when a field with presence (message, optional) is unset.
fn present<'a>(message: &'a DynamicMessage, field: &FieldDescriptor) -> Option<Cow<'a, Value>> {
    if field.supports_presence() && !message.has_field(field) {
        None
    } else {
        Some(message.get_field(field))
    }
}

fn array_of(
    field: &FieldDescriptor,
    values: &[Option<&Value>],
) -> std::result::Result<ArrayRef, String> {
    if !field.is_list() {
        return scalar_array(&field.kind(), values);
    }
    let mut offsets = Vec::with_capacity(values.len() + 1);
    offsets.push(0i32);
    let mut items: Vec<Option<&Value>> = Vec::new();
    for v in values {
        if let Some(list) = v.and_then(|v| v.as_list()) {
            items.extend(list.iter().map(Some));
        }
        offsets.push(i32::try_from(items.len()).map_err(|_| "a list column over 2^31 items")?);
    }
    let child = scalar_array(&field.kind(), &items)?;
    let item = Arc::new(Field::new("item", child.data_type().clone(), true));
    let nulls = NullBuffer::from(values.iter().map(Option::is_some).collect::<Vec<_>>());
    Ok(Arc::new(
        ListArray::try_new(item, OffsetBuffer::new(offsets.into()), child, Some(nulls))
            .map_err(|e| e.to_string())?,
    ))
}

fn scalar_array(kind: &Kind, values: &[Option<&Value>]) -> std::result::Result<ArrayRef, String> {
    let each = values.iter();
    Ok(match kind {
        Kind::Double => Arc::new(Float64Array::from_iter(
            each.map(|v| v.and_then(Value::as_f64)),
        )),
        Kind::Float => Arc::new(Float32Array::from_iter(
            each.map(|v| v.and_then(Value::as_f32)),
        )),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Arc::new(Int32Array::from_iter(
            each.map(|v| v.and_then(Value::as_i32)),
        )),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Arc::new(Int64Array::from_iter(
            each.map(|v| v.and_then(Value::as_i64)),
        )),
        Kind::Uint32 | Kind::Fixed32 => Arc::new(UInt32Array::from_iter(
            each.map(|v| v.and_then(Value::as_u32)),
        )),
        Kind::Uint64 | Kind::Fixed64 => Arc::new(UInt64Array::from_iter(
            each.map(|v| v.and_then(Value::as_u64)),
        )),
        Kind::Bool => Arc::new(BooleanArray::from_iter(
            each.map(|v| v.and_then(Value::as_bool)),
        )),
        Kind::String => Arc::new(StringArray::from_iter(
            each.map(|v| v.and_then(Value::as_str)),
        )),
        Kind::Bytes => Arc::new(BinaryArray::from_iter(
            each.map(|v| v.and_then(Value::as_bytes).map(|b| b.as_ref())),
        )),
        Kind::Enum(e) => Arc::new(StringArray::from_iter(each.map(|v| {
            v.and_then(Value::as_enum_number)
                .map(|n| match e.get_value(n) {
                    Some(value) => value.name().to_string(),
                    // A number this descriptor does not know (a newer writer): keep it.
                    None => n.to_string(),
                })
        }))),
        Kind::Message(m) if m.full_name() == TIMESTAMP => {
            let (seconds, nanos) = (m.get_field(1), m.get_field(2));
            Arc::new(
                TimestampNanosecondArray::from_iter(each.map(|v| {
                    let t = v.and_then(Value::as_message)?;
                    let s = seconds
                        .as_ref()
                        .map(|f| t.get_field(f).as_i64().unwrap_or(0))?;
                    let n = nanos
                        .as_ref()
                        .map(|f| t.get_field(f).as_i32().unwrap_or(0))?;
                    s.checked_mul(1_000_000_000)?.checked_add(n as i64)
                }))
                .with_timezone("+00:00"),
            )
        }
        Kind::Message(m) => {
            let mut fields = Vec::new();
            let mut children = Vec::new();
            for sub in m.fields() {
                let owned: Vec<Option<Cow<'_, Value>>> = values
                    .iter()
                    .map(|v| {
                        v.and_then(Value::as_message)
                            .and_then(|msg| present(msg, &sub))
                    })
                    .collect();
                let refs: Vec<Option<&Value>> = owned.iter().map(|c| c.as_deref()).collect();
                let child = array_of(&sub, &refs)?;
                fields.push(Field::new(sub.name(), child.data_type().clone(), true));
                children.push(child);
            }
            let nulls = NullBuffer::from(values.iter().map(Option::is_some).collect::<Vec<_>>());
            if fields.is_empty() {
                Arc::new(StructArray::new_empty_fields(values.len(), Some(nulls)))
            } else {
                Arc::new(
                    StructArray::try_new(Fields::from(fields), children, Some(nulls))
                        .map_err(|e| e.to_string())?,
                )
            }
        }
    })
}

/// Decodes protobuf payloads of one message type into its fields' columns.
pub struct ProtobufDecoder {
    message: MessageDescriptor,
    schema: SchemaRef,
}

impl std::fmt::Debug for ProtobufDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtobufDecoder")
            .field("message", &self.message.full_name())
            .finish()
    }
}

impl ProtobufDecoder {
    /// A decoder of the root message of a PROTOBUF_NATIVE schema definition.
    pub fn new(definition: &str) -> Result<ProtobufDecoder> {
        let message =
            message_descriptor(definition).map_err(|reason| ConnectorError::Registry {
                topic: String::new(),
                reason,
            })?;
        Self::of(message)
    }

    /// A decoder of `message`.
    pub fn of(message: MessageDescriptor) -> Result<ProtobufDecoder> {
        let fail = |reason: String| ConnectorError::Registry {
            topic: String::new(),
            reason,
        };
        let fields = protobuf_columns(&message).map_err(fail)?;
        Ok(ProtobufDecoder {
            message,
            schema: Arc::new(Schema::new(fields)),
        })
    }
}

impl PayloadDecoder for ProtobufDecoder {
    fn decode(&mut self, messages: &[ReceivedMessage]) -> Result<DecodedRows> {
        let mut decoded: Vec<Option<DynamicMessage>> = Vec::with_capacity(messages.len());
        let mut rows = Vec::with_capacity(messages.len());
        let mut errors = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            if m.null_value {
                decoded.push(None);
                rows.push(i);
                continue;
            }
            match DynamicMessage::decode(self.message.clone(), m.payload.as_ref()) {
                Ok(d) => {
                    decoded.push(Some(d));
                    rows.push(i);
                }
                Err(e) => errors.push((
                    i,
                    format!("not a protobuf '{}' message: {e}", self.message.full_name()),
                )),
            }
        }
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        for field in self.message.fields() {
            let owned: Vec<Option<Cow<'_, Value>>> = decoded
                .iter()
                .map(|d| d.as_ref().and_then(|d| present(d, &field)))
                .collect();
            let refs: Vec<Option<&Value>> = owned.iter().map(|c| c.as_deref()).collect();
            columns.push(
                array_of(&field, &refs).map_err(|reason| ConnectorError::Registry {
                    topic: String::new(),
                    reason,
                })?,
            );
        }
        DecodedRows::from_columns(self.schema.clone(), columns, rows, errors)
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use prost_reflect::prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};

    fn set(syntax: Option<&str>) -> Vec<u8> {
        FileDescriptorSet {
            file: vec![FileDescriptorProto {
                name: Some("a.proto".into()),
                package: Some("p".into()),
                syntax: syntax.map(String::from),
                message_type: vec![DescriptorProto {
                    name: Some("M".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn an_unknown_syntax_is_refused_by_name_not_a_panic() {
        assert!(message_in_descriptor_set(&set(Some("proto3")), "p.M").is_ok());
        assert!(message_in_descriptor_set(&set(None), "p.M").is_ok());
        let err = message_in_descriptor_set(&set(Some("editions")), "p.M").expect_err("editions");
        assert!(
            err.contains("'a.proto'") && err.contains("'editions'"),
            "{err}"
        );
    }
}
