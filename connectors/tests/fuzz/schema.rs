//! The schema registry's answers: the admin REST `GetSchemaResponse` JSON, the binary
//! protocol's `Schema`, and the Avro and Protobuf definitions inside them, through
//! `columns_of` (table creation) and `decoder_for_schema` (reading).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use base64::Engine as _;
use magnetar_connectors::format::{AvroDecoder, JsonOptions, message_in_descriptor_set};
use magnetar_connectors::pulsar::ReceivedMessage;
use magnetar_connectors::schema::binary::from_protocol;
use magnetar_connectors::schema::{
    SchemaInfo, SchemaKind, SchemaVersion, columns_of, decoder_for_schema,
};
use prost_reflect::MessageDescriptor;

use crate::avro_gen::{self, Av, SCHEMA_DICTIONARY};
use crate::formats::{
    JSON_DICTIONARY, Msg, check_decoder, json_object, push_message, read_messages,
};
use crate::harness::{Target, house_bound};
use crate::proto_gen;
use crate::rng::{Input, Rng, mutate, push_piece};

/// Makes a table's columns and its decoder from `info`, as the engine does, and decodes
/// `messages` with it.
fn exercise(info: &SchemaInfo, messages: &[ReceivedMessage]) -> Result<(), String> {
    let columns = columns_of(info);
    if let Err(e) = &columns
        && e.trim().is_empty()
    {
        return Err("columns_of: an empty error".into());
    }
    if info.kind == SchemaKind::KeyValue
        && let Err(e) = info.key_value()
        && e.trim().is_empty()
    {
        return Err("key_value: an empty error".into());
    }
    let wanted: SchemaRef = match &columns {
        Ok(fields) if !fields.is_empty() => Arc::new(Schema::new(fields.clone())),
        _ => Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, true)])),
    };
    for ignore_parse_errors in [false, true] {
        let options = JsonOptions {
            ignore_parse_errors,
        };
        match decoder_for_schema(info, &wanted, options) {
            Err(e) => {
                if e.to_string().trim().is_empty() {
                    return Err("decoder_for_schema: an empty error".into());
                }
                if let Ok(fields) = &columns {
                    return Err(format!(
                        "columns_of gives {} columns, but no decoder can read them: {e}",
                        fields.len()
                    ));
                }
            }
            Ok(mut decoder) => {
                for v in decoder.missing_versions(messages) {
                    let known = (v.0 % 2 == 0).then_some(info);
                    decoder.add_version(v, known);
                }
                decoder.mark_unreadable(SchemaVersion(77), "gone".into());
                check_decoder(decoder.as_mut(), messages)?;
            }
        }
    }
    Ok(())
}

fn info(kind: SchemaKind, data: String, properties: BTreeMap<String, String>) -> SchemaInfo {
    SchemaInfo {
        version: Some(SchemaVersion(0)),
        kind,
        data,
        properties,
    }
}

// ---------------------------------------------------------------------------------------
// The REST answer.

/// `[json length u16][GetSchemaResponse JSON][messages]`.
fn schema_rest(input: &[u8]) -> Result<(), String> {
    let mut r = Input::new(input);
    let n = r.u16() as usize;
    let text = String::from_utf8_lossy(r.take(n)).into_owned();
    let messages = read_messages(&mut r);
    match SchemaInfo::from_rest_json(&text) {
        Err(e) if e.trim().is_empty() => Err("from_rest_json: an empty error".into()),
        Err(_) => Ok(()),
        Ok(info) => exercise(&info, &messages),
    }
}

pub const SCHEMA_REST: Target = Target {
    name: "schema_rest",
    run: schema_rest,
    bound: house_bound,
};

/// A schema's definition in the REST form, and messages of it.
fn definition(rng: &mut Rng, kind: &str) -> (serde_json::Value, Vec<Vec<u8>>) {
    let mut payloads = Vec::new();
    let data = match kind {
        "AVRO" | "JSON" => {
            let schema = match rng.below(3) {
                0 => avro_gen::rich(),
                1 => avro_gen::click_v2(),
                _ => avro_gen::random_schema(rng),
            };
            for _ in 0..rng.range(1, 6) {
                let mut d = Vec::new();
                if kind == "AVRO" {
                    schema.datum(rng, &mut d);
                } else {
                    d = json_object(rng, &Schema::empty());
                }
                payloads.push(d);
            }
            serde_json::Value::String(schema.json())
        }
        "PROTOBUF_NATIVE" => {
            let (set, root) = if rng.chance(1, 2) {
                (proto_gen::event_set(), "fuzz.Event")
            } else {
                (proto_gen::random_set(rng), "g.M0")
            };
            if let Ok(d) = message_in_descriptor_set(&set, root) {
                for _ in 0..rng.range(1, 6) {
                    payloads.push(proto_gen::random_message(rng, &d));
                }
            }
            serde_json::Value::String(
                serde_json::json!({
                    "fileDescriptorSet": base64::engine::general_purpose::STANDARD.encode(&set),
                    "rootMessageTypeName": root,
                    "rootFileDescriptorName": "g.proto",
                })
                .to_string(),
            )
        }
        _ => {
            for _ in 0..rng.range(1, 6) {
                let n = *rng.pick(&[0usize, 1, 2, 4, 8, 12, 16]);
                payloads.push(rng.bytes(n));
            }
            serde_json::Value::String(String::new())
        }
    };
    (data, payloads)
}

const KINDS: &[&str] = &[
    "AVRO",
    "JSON",
    "PROTOBUF_NATIVE",
    "KEY_VALUE",
    "STRING",
    "INT64",
    "BOOLEAN",
    "BYTES",
    "LOCAL_DATE_TIME",
    "INSTANT",
    "PROTOBUF",
    "AUTO_CONSUME",
    "EXTERNAL",
    "",
];

pub fn gen_schema_rest(rng: &mut Rng) -> Vec<u8> {
    let kind = *rng.pick(KINDS);
    let mut properties = serde_json::Map::new();
    let (data, payloads) = if kind == "KEY_VALUE" {
        let (kk, vk) = (*rng.pick(&KINDS[..9]), *rng.pick(&KINDS[..9]));
        let (key, kp) = definition(rng, kk);
        let (value, vp) = definition(rng, vk);
        properties.insert("key.schema.type".into(), kk.into());
        properties.insert("value.schema.type".into(), vk.into());
        if rng.chance(1, 2) {
            properties.insert(
                "key.schema.properties".into(),
                rng.pick(&["{}", "", "[1]", "{\"a\":\"b\"}"])
                    .to_string()
                    .into(),
            );
        }
        let encoding = *rng.pick(&["INLINE", "SEPARATED", "BOGUS"]);
        properties.insert("kv.encoding.type".into(), encoding.into());
        // Sides that are definitions appear as JSON, primitive sides as "".
        let as_value = |d: serde_json::Value| match d {
            serde_json::Value::String(s) => {
                serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s))
            }
            other => other,
        };
        let data = serde_json::json!({"key": as_value(key), "value": as_value(value)}).to_string();
        let mut payloads = Vec::new();
        for (k, v) in kp.iter().zip(vp.iter()) {
            let mut p = Vec::new();
            p.extend_from_slice(&(k.len() as i32).to_be_bytes());
            p.extend_from_slice(k);
            p.extend_from_slice(&(v.len() as i32).to_be_bytes());
            p.extend_from_slice(v);
            payloads.push(p);
        }
        (serde_json::Value::String(data), payloads)
    } else {
        definition(rng, kind)
    };
    if rng.chance(1, 3) {
        properties.insert("__alwaysAllowNull".into(), "true".into());
    }
    let response = serde_json::json!({
        "version": rng.interesting_i64(),
        "type": kind,
        "timestamp": 0,
        "data": data,
        "properties": properties,
    });
    let mut text = response.to_string().into_bytes();
    if rng.chance(1, 2) {
        mutate(rng, &mut text, 1 << 15, SCHEMA_DICTIONARY);
    }
    let mut input = Vec::new();
    push_piece(&mut input, &text);
    for p in payloads {
        let mut m = Msg {
            payload: p,
            version: rng
                .chance(1, 2)
                .then(|| (rng.below(3) as i64).to_be_bytes().to_vec()),
            ..Default::default()
        };
        if rng.chance(1, 3) {
            mutate(rng, &mut m.payload, 1 << 14, JSON_DICTIONARY);
        }
        push_message(&mut input, &m);
    }
    input
}

// ---------------------------------------------------------------------------------------
// The binary protocol's schema.

/// `[type u8][properties u8][data length u16][data][messages]`.
fn schema_binary(input: &[u8]) -> Result<(), String> {
    let mut r = Input::new(input);
    let ty = r.u8() as i8 as i32;
    let props = r.u8();
    let n = r.u16() as usize;
    let data = r.take(n).to_vec();
    let messages = read_messages(&mut r);
    let side = |bits: u8| ["STRING", "JSON", "AVRO", "INT64"][bits as usize % 4];
    let mut properties = vec![
        ("key.schema.type", side(props)),
        ("value.schema.type", side(props >> 2)),
        (
            "kv.encoding.type",
            ["INLINE", "SEPARATED", "NONE", "INLINE"][(props >> 4) as usize % 4],
        ),
    ];
    if props & 0x40 != 0 {
        properties.push((
            "value.schema.properties",
            "{\"__alwaysAllowNull\":\"true\"}",
        ));
    }
    let schema = pulsar::proto::Schema {
        name: "fuzz".into(),
        schema_data: data,
        r#type: ty,
        properties: properties
            .into_iter()
            .map(|(k, v)| pulsar::proto::KeyValue {
                key: k.into(),
                value: v.into(),
            })
            .collect(),
    };
    let version = messages.first().map(|m| m.payload.clone());
    match from_protocol(&schema, version.as_deref()) {
        Err(e) if e.trim().is_empty() => Err("from_protocol: an empty error".into()),
        Err(_) => Ok(()),
        Ok(info) => exercise(&info, &messages),
    }
}

pub const SCHEMA_BINARY: Target = Target {
    name: "schema_binary",
    run: schema_binary,
    bound: house_bound,
};

pub fn gen_schema_binary(rng: &mut Rng) -> Vec<u8> {
    // Protocol type numbers: 1 STRING, 2 JSON, 4 AVRO, 15 KEY_VALUE, 20 PROTOBUF_NATIVE.
    let ty: i8 = *rng.pick(&[0, 1, 2, 3, 4, 5, 8, 15, 15, 15, 16, 20, 21, -1, 100]);
    let props = rng.byte();
    let avro = avro_gen::click_v2().json();
    let data: Vec<u8> = match ty {
        2 | 4 => avro.clone().into_bytes(),
        15 => {
            let side = |bits: u8| -> Vec<u8> {
                match bits % 4 {
                    1 | 2 => avro.clone().into_bytes(),
                    _ => Vec::new(),
                }
            };
            let mut d = Vec::new();
            for s in [side(props), side(props >> 2)] {
                let len = if rng.chance(1, 6) {
                    rng.interesting_i32()
                } else {
                    s.len() as i32
                };
                d.extend_from_slice(&len.to_be_bytes());
                d.extend_from_slice(&s);
            }
            d
        }
        20 => serde_json::json!({
            "fileDescriptorSet": base64::engine::general_purpose::STANDARD.encode(proto_gen::event_set()),
            "rootMessageTypeName": "fuzz.Event",
        })
        .to_string()
        .into_bytes(),
        _ => rng.word().into_bytes(),
    };
    let mut data = data;
    if rng.chance(1, 2) {
        mutate(rng, &mut data, 1 << 15, SCHEMA_DICTIONARY);
    }
    let mut input = vec![ty as u8, props];
    push_piece(&mut input, &data);
    let v2 = avro_gen::click_v2();
    for _ in 0..rng.range(1, 6) {
        let mut payload = Vec::new();
        match rng.below(3) {
            0 => v2.datum(rng, &mut payload),
            1 => payload = json_object(rng, &Schema::empty()),
            _ => payload = rng.some_bytes(16),
        }
        if ty == 15 && rng.chance(1, 2) {
            let mut p = (payload.len() as i32).to_be_bytes().to_vec();
            p.extend_from_slice(&payload);
            p.extend_from_slice(&(payload.len() as i32).to_be_bytes());
            p.extend_from_slice(&payload);
            payload = p;
        }
        push_message(
            &mut input,
            &Msg {
                payload,
                ..Default::default()
            },
        );
    }
    input
}

// ---------------------------------------------------------------------------------------
// Avro definitions.

/// `[schema length u16][Avro schema JSON][messages]`.
fn avro_definition(input: &[u8]) -> Result<(), String> {
    let mut r = Input::new(input);
    let n = r.u16() as usize;
    let text = String::from_utf8_lossy(r.take(n)).into_owned();
    let messages = read_messages(&mut r);
    for kind in [SchemaKind::Avro, SchemaKind::Json] {
        exercise(&info(kind, text.clone(), BTreeMap::new()), &messages)?;
    }
    for decoder in [
        AvroDecoder::new(&text, SchemaVersion(0)),
        AvroDecoder::fixed(&text),
    ] {
        match decoder {
            Err(e) if e.to_string().trim().is_empty() => return Err("an empty error".into()),
            Err(_) => {}
            Ok(mut d) => {
                d.add_writer(SchemaVersion(1), &text);
                check_decoder(&mut d, &messages)?;
            }
        }
    }
    Ok(())
}

pub const AVRO_DEFINITION: Target = Target {
    name: "avro_definition",
    run: avro_definition,
    bound: house_bound,
};

pub fn gen_avro_definition(rng: &mut Rng) -> Vec<u8> {
    let schema: Av = avro_gen::random_schema(rng);
    let mut text = schema.json().into_bytes();
    if rng.chance(1, 2) {
        mutate(rng, &mut text, 1 << 15, SCHEMA_DICTIONARY);
    }
    let mut input = Vec::new();
    push_piece(&mut input, &text);
    for _ in 0..rng.range(1, 6) {
        let mut payload = Vec::new();
        schema.datum(rng, &mut payload);
        if rng.chance(1, 3) {
            mutate(rng, &mut payload, 1 << 14, crate::formats::AVRO_DICTIONARY);
        }
        push_message(
            &mut input,
            &Msg {
                payload,
                version: rng
                    .chance(1, 2)
                    .then(|| (rng.below(3) as i64).to_be_bytes().to_vec()),
                ..Default::default()
            },
        );
    }
    input
}

// ---------------------------------------------------------------------------------------
// Protobuf definitions.

/// `[set length u16][FileDescriptorSet][root length u8][root name][messages]`.
fn protobuf_definition(input: &[u8]) -> Result<(), String> {
    let mut r = Input::new(input);
    let n = r.u16() as usize;
    let set = r.take(n).to_vec();
    let n = r.u8() as usize;
    let root = String::from_utf8_lossy(r.take(n)).into_owned();
    let messages = read_messages(&mut r);
    if let Err(e) = message_in_descriptor_set(&set, &root)
        && e.trim().is_empty()
    {
        return Err("message_in_descriptor_set: an empty error".into());
    }
    let definition = serde_json::json!({
        "fileDescriptorSet": base64::engine::general_purpose::STANDARD.encode(&set),
        "rootMessageTypeName": root,
        "rootFileDescriptorName": "g.proto",
    })
    .to_string();
    exercise(
        &info(SchemaKind::ProtobufNative, definition, BTreeMap::new()),
        &messages,
    )
}

pub const PROTOBUF_DEFINITION: Target = Target {
    name: "protobuf_definition",
    run: protobuf_definition,
    bound: house_bound,
};

pub fn gen_protobuf_definition(rng: &mut Rng) -> Vec<u8> {
    let (mut set, root) = if rng.chance(1, 4) {
        (proto_gen::event_set(), "fuzz.Event".to_string())
    } else {
        let root = if rng.chance(9, 10) {
            "g.M0".to_string()
        } else {
            format!("g.M{}", rng.below(4))
        };
        (proto_gen::random_set(rng), root)
    };
    let descriptor: Option<MessageDescriptor> = message_in_descriptor_set(&set, &root).ok();
    if rng.chance(1, 3) {
        mutate(rng, &mut set, 1 << 15, &[]);
    }
    let mut input = Vec::new();
    push_piece(&mut input, &set);
    input.push(root.len() as u8);
    input.extend_from_slice(root.as_bytes());
    for _ in 0..rng.range(1, 6) {
        let mut payload = match &descriptor {
            Some(d) => proto_gen::random_message(rng, d),
            None => rng.some_bytes(20),
        };
        if rng.chance(1, 3) {
            mutate(
                rng,
                &mut payload,
                1 << 14,
                crate::formats::PROTOBUF_DICTIONARY,
            );
        }
        push_message(
            &mut input,
            &Msg {
                payload,
                ..Default::default()
            },
        );
    }
    input
}
