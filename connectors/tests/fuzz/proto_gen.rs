//! Protobuf descriptors (`FileDescriptorSet`s, as a PROTOBUF_NATIVE schema holds them) and
//! random messages of them.

use prost::Message as _;
use prost_reflect::prost_types::field_descriptor_proto::{Label, Type};
use prost_reflect::prost_types::{
    DescriptorProto, EnumDescriptorProto, EnumValueDescriptorProto, FieldDescriptorProto,
    FileDescriptorProto, FileDescriptorSet, MessageOptions,
};
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, Value};

use crate::rng::Rng;

fn proto_field(
    name: &str,
    number: i32,
    ty: Type,
    label: Label,
    type_name: Option<&str>,
) -> FieldDescriptorProto {
    FieldDescriptorProto {
        name: Some(name.into()),
        number: Some(number),
        label: Some(label as i32),
        r#type: Some(ty as i32),
        type_name: type_name.map(str::to_string),
        json_name: Some(name.into()),
        ..Default::default()
    }
}

fn timestamp_file() -> FileDescriptorProto {
    FileDescriptorProto {
        name: Some("google/protobuf/timestamp.proto".into()),
        package: Some("google.protobuf".into()),
        message_type: vec![DescriptorProto {
            name: Some("Timestamp".into()),
            field: vec![
                proto_field("seconds", 1, Type::Int64, Label::Optional, None),
                proto_field("nanos", 2, Type::Int32, Label::Optional, None),
            ],
            ..Default::default()
        }],
        syntax: Some("proto3".into()),
        ..Default::default()
    }
}

/// The fixed schema of the protobuf format target: `fuzz.Event`, with every scalar kind,
/// an enum, a nested message, lists, bytes and a `google.protobuf.Timestamp`.
pub fn event_set() -> Vec<u8> {
    use Label::{Optional as O, Repeated as R};
    let event = DescriptorProto {
        name: Some("Event".into()),
        field: vec![
            proto_field("s", 1, Type::String, O, None),
            proto_field("n", 2, Type::Int64, O, None),
            proto_field("r", 3, Type::Int32, R, None),
            proto_field("inner", 4, Type::Message, O, Some(".fuzz.Inner")),
            proto_field("color", 5, Type::Enum, O, Some(".fuzz.Color")),
            proto_field("blob", 6, Type::Bytes, O, None),
            proto_field(
                "ts",
                7,
                Type::Message,
                O,
                Some(".google.protobuf.Timestamp"),
            ),
            proto_field("d", 8, Type::Double, O, None),
            proto_field("flag", 9, Type::Bool, O, None),
            proto_field("inners", 10, Type::Message, R, Some(".fuzz.Inner")),
            proto_field("u", 11, Type::Uint64, O, None),
            proto_field("z", 12, Type::Sint32, O, None),
            proto_field("f64", 13, Type::Fixed64, O, None),
            proto_field("fl", 14, Type::Float, O, None),
            proto_field("names", 15, Type::String, R, None),
        ],
        ..Default::default()
    };
    let inner = DescriptorProto {
        name: Some("Inner".into()),
        field: vec![
            proto_field("a", 1, Type::String, O, None),
            proto_field("b", 2, Type::Int64, O, None),
        ],
        ..Default::default()
    };
    let color = EnumDescriptorProto {
        name: Some("Color".into()),
        value: ["RED", "GREEN", "BLUE"]
            .iter()
            .enumerate()
            .map(|(i, n)| EnumValueDescriptorProto {
                name: Some((*n).into()),
                number: Some(i as i32),
                options: None,
            })
            .collect(),
        ..Default::default()
    };
    let file = FileDescriptorProto {
        name: Some("fuzz.proto".into()),
        package: Some("fuzz".into()),
        dependency: vec!["google/protobuf/timestamp.proto".into()],
        message_type: vec![event, inner],
        enum_type: vec![color],
        syntax: Some("proto3".into()),
        ..Default::default()
    };
    FileDescriptorSet {
        file: vec![timestamp_file(), file],
    }
    .encode_to_vec()
}

/// A random `FileDescriptorSet` of messages `g.M0`..: fields of random kinds, message
/// fields referring to later messages (now and then to earlier ones: recursion), maps;
/// in "fan" mode each message has several fields of the next, so the columns multiply.
pub fn random_set(rng: &mut Rng) -> Vec<u8> {
    let fan = rng.chance(1, 6);
    let count = if fan {
        rng.range(2, 17)
    } else {
        rng.range(1, 6)
    };
    let scalars = [
        Type::Double,
        Type::Float,
        Type::Int64,
        Type::Uint64,
        Type::Int32,
        Type::Fixed64,
        Type::Fixed32,
        Type::Bool,
        Type::String,
        Type::Bytes,
        Type::Uint32,
        Type::Sfixed32,
        Type::Sfixed64,
        Type::Sint32,
        Type::Sint64,
    ];
    let mut messages = Vec::new();
    for i in 0..count {
        let mut fields = Vec::new();
        let mut nested = Vec::new();
        let n_fields = if fan {
            rng.range(2, 4)
        } else {
            rng.range(0, 6)
        };
        for f in 0..n_fields {
            let number = f as i32 + 1;
            let name = format!("f{f}");
            let label = if rng.chance(1, 4) {
                Label::Repeated
            } else {
                Label::Optional
            };
            let field = if fan && i + 1 < count {
                proto_field(
                    &name,
                    number,
                    Type::Message,
                    Label::Optional,
                    Some(&format!(".g.M{}", i + 1)),
                )
            } else {
                match rng.below(8) {
                    0 => {
                        // A message field: a later message, or (rarely) an earlier one.
                        let target = if i + 1 < count && rng.chance(3, 4) {
                            rng.range(i + 1, count - 1)
                        } else {
                            rng.below(i + 1)
                        };
                        proto_field(
                            &name,
                            number,
                            Type::Message,
                            label,
                            Some(&format!(".g.M{target}")),
                        )
                    }
                    1 => proto_field(&name, number, Type::Enum, label, Some(".g.E")),
                    2 => proto_field(
                        &name,
                        number,
                        Type::Message,
                        label,
                        Some(".google.protobuf.Timestamp"),
                    ),
                    3 if rng.chance(1, 3) => {
                        let entry = format!("F{f}Entry");
                        nested.push(DescriptorProto {
                            name: Some(entry.clone()),
                            field: vec![
                                proto_field("key", 1, Type::String, Label::Optional, None),
                                proto_field("value", 2, Type::Int64, Label::Optional, None),
                            ],
                            options: Some(MessageOptions {
                                map_entry: Some(true),
                                ..Default::default()
                            }),
                            ..Default::default()
                        });
                        proto_field(
                            &name,
                            number,
                            Type::Message,
                            Label::Repeated,
                            Some(&format!(".g.M{i}.{entry}")),
                        )
                    }
                    _ => proto_field(&name, number, *rng.pick(&scalars), label, None),
                }
            };
            fields.push(field);
        }
        messages.push(DescriptorProto {
            name: Some(format!("M{i}")),
            field: fields,
            nested_type: nested,
            ..Default::default()
        });
    }
    let file = FileDescriptorProto {
        name: Some("g.proto".into()),
        package: Some("g".into()),
        dependency: vec!["google/protobuf/timestamp.proto".into()],
        message_type: messages,
        enum_type: vec![EnumDescriptorProto {
            name: Some("E".into()),
            value: vec![EnumValueDescriptorProto {
                name: Some("ZERO".into()),
                number: Some(0),
                options: None,
            }],
            ..Default::default()
        }],
        syntax: Some("proto3".into()),
        ..Default::default()
    };
    FileDescriptorSet {
        file: vec![timestamp_file(), file],
    }
    .encode_to_vec()
}

/// A random message of `descriptor`, encoded.
pub fn random_message(rng: &mut Rng, descriptor: &MessageDescriptor) -> Vec<u8> {
    message(rng, descriptor, 0).encode_to_vec()
}

fn message(rng: &mut Rng, descriptor: &MessageDescriptor, depth: usize) -> DynamicMessage {
    let mut m = DynamicMessage::new(descriptor.clone());
    for field in descriptor.fields() {
        if field.is_map() || !rng.chance(2, 3) {
            continue;
        }
        let kind = field.kind();
        let value = if field.is_list() {
            let n = rng.below(4);
            let items: Option<Vec<Value>> = (0..n).map(|_| scalar(rng, &kind, depth)).collect();
            items.map(Value::List)
        } else {
            scalar(rng, &kind, depth)
        };
        if let Some(v) = value {
            let _ = m.try_set_field(&field, v);
        }
    }
    m
}

fn scalar(rng: &mut Rng, kind: &Kind, depth: usize) -> Option<Value> {
    Some(match kind {
        Kind::Double => Value::F64(f64::from_bits(rng.next_u64())),
        Kind::Float => Value::F32(rng.next_u64() as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(rng.interesting_i32()),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(rng.interesting_i64()),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(rng.next_u64() as u32),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(rng.next_u64()),
        Kind::Bool => Value::Bool(rng.chance(1, 2)),
        Kind::String => Value::String(rng.word()),
        Kind::Bytes => {
            let n = rng.below(8);
            Value::Bytes(rng.bytes(n).into())
        }
        Kind::Enum(_) => Value::EnumNumber(rng.below(4) as i32),
        Kind::Message(m) if depth < 4 => Value::Message(message(rng, m, depth + 1)),
        Kind::Message(_) => return None,
    })
}
