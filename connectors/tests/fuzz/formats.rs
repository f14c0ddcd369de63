//! The payload decoders (json, csv, raw, primitive, avro, protobuf, key_value), as the
//! engine makes them, fed chunks of messages with random and corrupted payloads.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use base64::Engine as _;
use bytes::Bytes;
use magnetar_connectors::MessageId;
use magnetar_connectors::format::{
    AvroDecoder, FormatKind, FormatOptions, JsonDecoder, JsonOptions, KeyValueDecoder,
    PayloadDecoder, PrimitiveDecoder, ProtobufDecoder, decoder_for, message_in_descriptor_set,
};
use magnetar_connectors::pulsar::ReceivedMessage;
use magnetar_connectors::schema::{KeyValueEncoding, SchemaKind, SchemaVersion};

use crate::avro_gen;
use crate::harness::{Target, house_bound};
use crate::proto_gen;
use crate::rng::{Input, Rng, mutate};

// ---------------------------------------------------------------------------------------
// Chunks of messages as fuzz input.

pub const TOPIC: &str = "persistent://public/default/fuzz-format";
const MAX_MESSAGES: usize = 16;

/// One message of a generated chunk.
#[derive(Clone, Debug, Default)]
pub struct Msg {
    pub payload: Vec<u8>,
    pub null_value: bool,
    pub key: Option<Vec<u8>>,
    pub key_is_base64: bool,
    pub version: Option<Vec<u8>>,
}

/// Appends a message: `[flags][len u16][payload]([klen u8][key])([vlen u8][version])`.
pub fn push_message(out: &mut Vec<u8>, m: &Msg) {
    let flags = m.null_value as u8
        | (m.key.is_some() as u8) << 1
        | (m.version.is_some() as u8) << 2
        | (m.key_is_base64 as u8) << 3;
    out.push(flags);
    crate::rng::push_piece(out, &m.payload);
    for part in [&m.key, &m.version].into_iter().flatten() {
        let n = part.len().min(255);
        out.push(n as u8);
        out.extend_from_slice(&part[..n]);
    }
}

/// The messages of an input (after its parameters).
pub fn read_messages(r: &mut Input<'_>) -> Vec<ReceivedMessage> {
    let topic: Arc<str> = Arc::from(TOPIC);
    let producer: Arc<str> = Arc::from("fuzz-producer");
    let mut out = Vec::new();
    while !r.is_empty() && out.len() < MAX_MESSAGES {
        let flags = r.u8();
        let n = r.u16() as usize;
        let payload = Bytes::copy_from_slice(r.take(n));
        let i = out.len() as u64;
        let mut m = ReceivedMessage::local(
            MessageId::new(9, i, 0),
            topic.clone(),
            producer.clone(),
            payload,
        );
        m.null_value = flags & 1 != 0;
        if flags & 2 != 0 {
            let n = r.u8() as usize;
            m.key = Some(String::from_utf8_lossy(r.take(n)).into_owned());
        }
        if flags & 4 != 0 {
            let n = r.u8() as usize;
            m.schema_version = Some(Bytes::copy_from_slice(r.take(n)));
        }
        m.key_is_base64 = flags & 8 != 0;
        out.push(m);
    }
    out
}

/// A chunk: `[config][messages]`, each payload from `payload`, a third of them corrupted.
pub fn gen_chunk(
    rng: &mut Rng,
    config: u8,
    dictionary: &[&[u8]],
    mut payload: impl FnMut(&mut Rng) -> Msg,
) -> Vec<u8> {
    let mut input = vec![config];
    for _ in 0..rng.range(1, MAX_MESSAGES) {
        let mut m = payload(rng);
        if rng.chance(1, 3) {
            mutate(rng, &mut m.payload, 1 << 15, dictionary);
        }
        if rng.chance(1, 20) {
            m.null_value = true;
        }
        push_message(&mut input, &m);
    }
    input
}

// ---------------------------------------------------------------------------------------
// What every decoder must do.

/// Per message: its row (as a one-row batch) or `None` when it was reported bad.
type Verdicts = Vec<Option<RecordBatch>>;

/// Decodes `messages` and checks the contract: every message is either a row or a reported
/// error (never dropped, never both), rows in message order, error texts non-empty, the
/// batch in the decoder's column count; the same chunk decodes the same way again.
pub fn check_decoder(
    decoder: &mut dyn PayloadDecoder,
    messages: &[ReceivedMessage],
) -> Result<Option<Verdicts>, String> {
    let first = decode_checked(decoder, messages)?;
    let again = decode_checked(decoder, messages)?;
    match (&first, &again) {
        (Some(a), Some(b)) if a != b => {
            return Err("the same chunk decoded differently the second time".into());
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err("the same chunk failed only once".into());
        }
        _ => {}
    }
    Ok(first)
}

fn decode_checked(
    decoder: &mut dyn PayloadDecoder,
    messages: &[ReceivedMessage],
) -> Result<Option<Verdicts>, String> {
    let columns = decoder.schema().fields().len();
    let decoded = match decoder.decode(messages) {
        Ok(d) => d,
        Err(e) => {
            let text = e.to_string();
            if text.trim().is_empty() {
                return Err("a decode error without text".into());
            }
            if let magnetar_connectors::ConnectorError::Decode { topic, .. } = &e
                && topic != TOPIC
            {
                return Err(format!("a decode error naming another topic: {text}"));
            }
            return Ok(None);
        }
    };
    if decoded.batch.num_rows() != decoded.rows.len() {
        return Err(format!(
            "{} rows in the batch, {} row indices",
            decoded.batch.num_rows(),
            decoded.rows.len()
        ));
    }
    if decoded.batch.num_columns() != columns {
        return Err(format!(
            "{} columns decoded, the decoder's schema has {columns}",
            decoded.batch.num_columns()
        ));
    }
    let mut verdicts: Vec<Option<Option<RecordBatch>>> = vec![None; messages.len()];
    let mut last = None;
    for (row, &i) in decoded.rows.iter().enumerate() {
        if i >= messages.len() || verdicts[i].is_some() || last.is_some_and(|l| l >= i) {
            return Err(format!("row index {i} out of place in {:?}", decoded.rows));
        }
        last = Some(i);
        verdicts[i] = Some(Some(decoded.batch.slice(row, 1)));
    }
    for (i, reason) in &decoded.errors {
        if *i >= messages.len() || verdicts[*i].is_some() {
            return Err(format!(
                "message {i} both a row and an error, or reported twice"
            ));
        }
        if reason.trim().is_empty() {
            return Err(format!("message {i} reported bad without a reason"));
        }
        verdicts[*i] = Some(None);
    }
    if let Some(lost) = verdicts.iter().position(Option::is_none) {
        return Err(format!("message {lost} neither decoded nor reported"));
    }
    Ok(Some(verdicts.into_iter().flatten().collect()))
}

/// [`check_decoder`], and each message decoded alone gets the verdict (and row) it got
/// in the chunk.
pub fn check_isolated(
    decoder: &mut dyn PayloadDecoder,
    messages: &[ReceivedMessage],
) -> Result<(), String> {
    let Some(together) = check_decoder(decoder, messages)? else {
        return Ok(());
    };
    for (i, m) in messages.iter().enumerate() {
        let alone = decode_checked(decoder, std::slice::from_ref(m))?;
        let Some(alone) = alone else {
            return Err(format!(
                "message {i} fails the whole decode alone, not in its chunk"
            ));
        };
        let (a, t) = (&alone[0], &together[i]);
        let same = match (a, t) {
            (Some(a), Some(t)) => a.columns() == t.columns(),
            (None, None) => true,
            _ => false,
        };
        if !same {
            return Err(format!(
                "message {i} ({:?}) decodes alone as {:?}, in its chunk as {:?}",
                String::from_utf8_lossy(&m.payload[..m.payload.len().min(80)]),
                a.as_ref().map(|b| b.columns().to_vec()),
                t.as_ref().map(|b| b.columns().to_vec())
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// json

fn json_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
        Field::new("i", DataType::Int32, true),
        Field::new("u", DataType::UInt8, true),
        Field::new("f", DataType::Float64, true),
        Field::new("b", DataType::Boolean, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("d", DataType::Date32, true),
        Field::new("dec", DataType::Decimal128(10, 2), true),
        Field::new(
            "l",
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
            true,
        ),
        Field::new(
            "st",
            DataType::Struct(Fields::from(vec![
                Field::new("a", DataType::Utf8, true),
                Field::new("b", DataType::Int64, true),
            ])),
            true,
        ),
    ]))
}

fn json_value(rng: &mut Rng, ty: &DataType, depth: usize) -> String {
    if rng.chance(1, 8) {
        return rng
            .pick(&[
                "null",
                "\"x\"",
                "1.5",
                "-0",
                "1e400",
                "true",
                "[]",
                "{}",
                "18446744073709551616",
                "-9223372036854775809",
            ])
            .to_string();
    }
    match ty {
        DataType::Utf8 => serde_json::Value::String(rng.word()).to_string(),
        DataType::Int64 | DataType::Int32 | DataType::UInt8 => rng.interesting_i64().to_string(),
        DataType::Float64 | DataType::Decimal128(..) => {
            format!("{}.{}", rng.interesting_i32(), rng.below(1000))
        }
        DataType::Boolean => rng.pick(&["true", "false"]).to_string(),
        DataType::Timestamp(..) => rng
            .pick(&[
                "1700000000000",
                "\"2024-01-01T00:00:00Z\"",
                "\"not a time\"",
                "-62135596800001",
            ])
            .to_string(),
        DataType::Date32 => rng
            .pick(&[
                "\"2024-02-29\"",
                "19000",
                "\"2023-02-29\"",
                "\"+275760-09-13\"",
            ])
            .to_string(),
        DataType::List(item) if depth < 3 => {
            let items: Vec<String> = (0..rng.below(4))
                .map(|_| json_value(rng, item.data_type(), depth + 1))
                .collect();
            format!("[{}]", items.join(","))
        }
        DataType::Struct(fields) if depth < 3 => {
            let chosen: Vec<_> = fields.iter().filter(|_| rng.chance(2, 3)).collect();
            let members: Vec<String> = chosen
                .into_iter()
                .map(|f| {
                    format!(
                        "{}:{}",
                        serde_json::Value::String(f.name().clone()),
                        json_value(rng, f.data_type(), depth + 1)
                    )
                })
                .collect();
            format!("{{{}}}", members.join(","))
        }
        _ => "null".into(),
    }
}

pub fn json_object(rng: &mut Rng, schema: &Schema) -> Vec<u8> {
    if rng.chance(1, 30) {
        // Deep nesting, within the u16 payload length.
        let depth = rng.range(100, 20_000);
        return format!("{{\"l\":{}{}}}", "[".repeat(depth), "]".repeat(depth)).into_bytes();
    }
    let chosen: Vec<_> = schema
        .fields()
        .iter()
        .filter(|_| rng.chance(1, 2))
        .collect();
    let mut members: Vec<String> = chosen
        .into_iter()
        .map(|f| {
            format!(
                "{}:{}",
                serde_json::Value::String(f.name().clone()),
                json_value(rng, f.data_type(), 0)
            )
        })
        .collect();
    if rng.chance(1, 5) {
        members.push(format!("\"extra\":{}", json_value(rng, &DataType::Utf8, 0)));
    }
    format!("{{{}}}", members.join(",")).into_bytes()
}

pub const JSON_DICTIONARY: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b":",
    b",",
    b"1e999",
    b"-0",
    b"1.5",
    b"null",
    b"true",
    b"\"\\ud800\"",
    b"\"\\u0000\"",
    b"[[[[[[[[",
    b"\"n\":",
    b"\"st\":{\"a\":",
    b"\xff\xfe",
];

fn json(input: &[u8]) -> Result<(), String> {
    let mut r = Input::new(input);
    let config = r.u8();
    let messages = read_messages(&mut r);
    let options = JsonOptions {
        ignore_parse_errors: config & 1 != 0,
    };
    let mut decoder = JsonDecoder::new(json_schema(), options).map_err(|e| e.to_string())?;
    check_isolated(&mut decoder, &messages)
}

pub const JSON: Target = Target {
    name: "json",
    run: json,
    bound: house_bound,
};

pub fn gen_json(rng: &mut Rng) -> Vec<u8> {
    let schema = json_schema();
    let config = rng.byte();
    gen_chunk(rng, config, JSON_DICTIONARY, |rng| Msg {
        payload: json_object(rng, &schema),
        ..Default::default()
    })
}

// ---------------------------------------------------------------------------------------
// csv

fn csv_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
        Field::new("f", DataType::Float64, true),
        Field::new("b", DataType::Boolean, true),
        Field::new("d", DataType::Date32, true),
    ]))
}

fn csv(input: &[u8]) -> Result<(), String> {
    let mut r = Input::new(input);
    let config = r.u8();
    let messages = read_messages(&mut r);
    let options = FormatOptions {
        ignore_parse_errors: config & 1 != 0,
        csv_delimiter: [b',', b';', b'\t', b'|'][(config >> 1) as usize % 4],
    };
    let mut decoder =
        decoder_for(FormatKind::Csv, csv_schema(), options).map_err(|e| e.to_string())?;
    check_isolated(decoder.as_mut(), &messages)
}

pub const CSV: Target = Target {
    name: "csv",
    run: csv,
    bound: house_bound,
};

pub fn gen_csv(rng: &mut Rng) -> Vec<u8> {
    let config = rng.byte();
    let delimiter = [',', ';', '\t', '|'][(config >> 1) as usize % 4];
    gen_chunk(
        rng,
        config,
        &[b",", b";", b"\"", b"\n", b"\r\n", b"\"\"", b"\t"],
        |rng| {
            let mut fields = vec![
                if rng.chance(1, 3) {
                    format!("\"{}\"", rng.word().replace('"', "\"\""))
                } else {
                    rng.word().replace([',', ';', '\t', '|', '\n', '"'], "")
                },
                rng.interesting_i64().to_string(),
                format!("{}.{}", rng.interesting_i32(), rng.below(100)),
                rng.pick(&["true", "false", "TRUE", "1", ""]).to_string(),
                rng.pick(&["2024-02-29", "2023-02-29", "19000", ""])
                    .to_string(),
            ];
            if rng.chance(1, 6) {
                fields.truncate(rng.below(6));
            }
            if rng.chance(1, 10) {
                fields.push("extra".into());
            }
            let mut line = fields.join(&delimiter.to_string());
            if rng.chance(1, 10) {
                line.push('\n');
            }
            Msg {
                payload: line.into_bytes(),
                ..Default::default()
            }
        },
    )
}

// ---------------------------------------------------------------------------------------
// raw

fn raw(input: &[u8]) -> Result<(), String> {
    let mut r = Input::new(input);
    let config = r.u8();
    let messages = read_messages(&mut r);
    let ty = [
        DataType::Utf8,
        DataType::Binary,
        DataType::LargeUtf8,
        DataType::LargeBinary,
    ][config as usize % 4]
        .clone();
    let schema = Arc::new(Schema::new(vec![Field::new("v", ty, true)]));
    let mut decoder = decoder_for(FormatKind::Raw, schema, FormatOptions::default())
        .map_err(|e| e.to_string())?;
    check_isolated(decoder.as_mut(), &messages)
}

pub const RAW: Target = Target {
    name: "raw",
    run: raw,
    bound: house_bound,
};

pub fn gen_raw(rng: &mut Rng) -> Vec<u8> {
    let config = rng.byte();
    gen_chunk(
        rng,
        config,
        &[b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80"],
        |rng| Msg {
            payload: rng.word().into_bytes(),
            ..Default::default()
        },
    )
}

// ---------------------------------------------------------------------------------------
// primitive (Pulsar's primitive schemas)

pub const PRIMITIVE_KINDS: [SchemaKind; 19] = [
    SchemaKind::None,
    SchemaKind::String,
    SchemaKind::Boolean,
    SchemaKind::Int8,
    SchemaKind::Int16,
    SchemaKind::Int32,
    SchemaKind::Int64,
    SchemaKind::Float,
    SchemaKind::Double,
    SchemaKind::Date,
    SchemaKind::Time,
    SchemaKind::Timestamp,
    SchemaKind::Instant,
    SchemaKind::LocalDate,
    SchemaKind::LocalTime,
    SchemaKind::LocalDateTime,
    SchemaKind::Json,
    SchemaKind::KeyValue,
    SchemaKind::Avro,
];

fn primitive(input: &[u8]) -> Result<(), String> {
    let mut r = Input::new(input);
    let kind = PRIMITIVE_KINDS[r.u8() as usize % PRIMITIVE_KINDS.len()].clone();
    let messages = read_messages(&mut r);
    match PrimitiveDecoder::new(kind.clone(), "value") {
        Ok(mut decoder) => check_isolated(&mut decoder, &messages),
        Err(e)
            if matches!(
                kind,
                SchemaKind::Json | SchemaKind::KeyValue | SchemaKind::Avro
            ) =>
        {
            if e.to_string().is_empty() {
                return Err("an empty error".into());
            }
            Ok(())
        }
        Err(e) => Err(format!("{kind:?} refused: {e}")),
    }
}

pub const PRIMITIVE: Target = Target {
    name: "primitive",
    run: primitive,
    bound: house_bound,
};

pub fn gen_primitive(rng: &mut Rng) -> Vec<u8> {
    let config = rng.byte();
    gen_chunk(rng, config, &[], |rng| {
        let n = *rng.pick(&[0usize, 1, 2, 4, 8, 12, 16, 3, 9, 17]);
        let mut payload = rng.bytes(n);
        if rng.chance(1, 3) && n >= 8 {
            payload[..8].copy_from_slice(&rng.interesting_i64().to_be_bytes());
        }
        Msg {
            payload,
            ..Default::default()
        }
    })
}

// ---------------------------------------------------------------------------------------
// avro

fn avro(input: &[u8]) -> Result<(), String> {
    let mut r = Input::new(input);
    let config = r.u8();
    let messages = read_messages(&mut r);
    let mut decoder: Box<dyn PayloadDecoder> = match config % 3 {
        0 => {
            let mut d = AvroDecoder::new(&avro_gen::click_v2().json(), SchemaVersion(1))
                .map_err(|e| e.to_string())?;
            d.add_writer(SchemaVersion(0), &avro_gen::click_v1().json());
            Box::new(d)
        }
        1 => Box::new(AvroDecoder::fixed(&avro_gen::rich().json()).map_err(|e| e.to_string())?),
        _ => decoder_for(FormatKind::Avro, json_schema(), FormatOptions::default())
            .map_err(|e| e.to_string())?,
    };
    let missing = decoder.missing_versions(&messages);
    for v in missing {
        decoder.add_version(v, None);
    }
    check_isolated(decoder.as_mut(), &messages)
}

pub const AVRO: Target = Target {
    name: "avro",
    run: avro,
    bound: house_bound,
};

pub const AVRO_DICTIONARY: &[&[u8]] = &[
    &[0x01],                                                       // -1: a negative block count
    &[0xfe, 0xff, 0xff, 0xff, 0x0f],                               // i32::MAX
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // i64::MIN
    &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // i64::MAX
    &[
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
    ], // an endless varint
    &[0x02],
    &[0x00],
];

pub fn gen_avro(rng: &mut Rng) -> Vec<u8> {
    let config = rng.byte();
    let (v1, v2, rich) = (avro_gen::click_v1(), avro_gen::click_v2(), avro_gen::rich());
    gen_chunk(rng, config, AVRO_DICTIONARY, |rng| {
        let mut payload = Vec::new();
        let version = match config % 3 {
            0 => match rng.below(6) {
                0 => {
                    v1.datum(rng, &mut payload);
                    Some(0i64.to_be_bytes().to_vec())
                }
                1 | 2 => {
                    v2.datum(rng, &mut payload);
                    Some(1i64.to_be_bytes().to_vec())
                }
                3 => {
                    v2.datum(rng, &mut payload);
                    None
                }
                4 => {
                    v2.datum(rng, &mut payload);
                    Some(rng.interesting_i64().to_be_bytes().to_vec())
                }
                _ => {
                    v2.datum(rng, &mut payload);
                    Some(rng.some_bytes(10))
                }
            },
            1 => {
                rich.datum(rng, &mut payload);
                None
            }
            _ => {
                let n = rng.below(40);
                payload = rng.bytes(n);
                None
            }
        };
        Msg {
            payload,
            version,
            ..Default::default()
        }
    })
}

// ---------------------------------------------------------------------------------------
// protobuf

fn protobuf(input: &[u8]) -> Result<(), String> {
    let mut r = Input::new(input);
    let _config = r.u8();
    let messages = read_messages(&mut r);
    let descriptor = message_in_descriptor_set(&proto_gen::event_set(), "fuzz.Event")?;
    let mut decoder = ProtobufDecoder::of(descriptor).map_err(|e| e.to_string())?;
    check_isolated(&mut decoder, &messages)
}

pub const PROTOBUF: Target = Target {
    name: "protobuf",
    run: protobuf,
    bound: house_bound,
};

pub const PROTOBUF_DICTIONARY: &[&[u8]] = &[
    &[0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f], // packed `r` of 4 GiB
    &[0x22, 0x7f],                         // `inner` of 127 bytes
    &[0x0b],                               // a group start
    &[0x0c],                               // a group end
    &[
        0x3a, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ], // ts seconds = i64::MAX
    &[0x28, 0x63],                         // color 99
];

pub fn gen_protobuf(rng: &mut Rng) -> Vec<u8> {
    let descriptor = message_in_descriptor_set(&proto_gen::event_set(), "fuzz.Event")
        .unwrap_or_else(|e| panic!("{e}"));
    gen_chunk(rng, 0, PROTOBUF_DICTIONARY, |rng| Msg {
        payload: proto_gen::random_message(rng, &descriptor),
        ..Default::default()
    })
}

// ---------------------------------------------------------------------------------------
// key_value

fn kv_value_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
    ]))
}

fn kv_key_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
    ]))
}

fn key_value_decoder(config: u8) -> Result<KeyValueDecoder, String> {
    let e = |e: magnetar_connectors::ConnectorError| e.to_string();
    let encoding = if config & 1 == 0 {
        KeyValueEncoding::Inline
    } else {
        KeyValueEncoding::Separated
    };
    let key: Box<dyn PayloadDecoder> = if config & 2 == 0 {
        Box::new(PrimitiveDecoder::new(SchemaKind::String, "key").map_err(e)?)
    } else {
        Box::new(JsonDecoder::new(kv_key_schema(), JsonOptions::default()).map_err(e)?)
    };
    let value: Box<dyn PayloadDecoder> = match (config >> 2) % 3 {
        0 => Box::new(PrimitiveDecoder::new(SchemaKind::Int64, "value").map_err(e)?),
        1 => Box::new(JsonDecoder::new(kv_value_schema(), JsonOptions::default()).map_err(e)?),
        _ => Box::new(AvroDecoder::fixed(&avro_gen::click_v2().json()).map_err(e)?),
    };
    let names = key
        .schema()
        .fields()
        .iter()
        .map(|f| {
            if f.name() == "s" {
                "key_s".to_string()
            } else {
                f.name().clone()
            }
        })
        .collect();
    Ok(KeyValueDecoder::new(encoding, key, value, names))
}

fn key_value(input: &[u8]) -> Result<(), String> {
    let mut r = Input::new(input);
    let config = r.u8();
    let messages = read_messages(&mut r);
    let mut decoder = key_value_decoder(config)?;
    check_isolated(&mut decoder, &messages)
}

pub const KEY_VALUE: Target = Target {
    name: "key_value",
    run: key_value,
    bound: house_bound,
};

pub fn gen_key_value(rng: &mut Rng) -> Vec<u8> {
    let config = rng.byte();
    let v2 = avro_gen::click_v2();
    gen_chunk(
        rng,
        config,
        &[
            &[0xff, 0xff, 0xff, 0xff],
            &[0x7f, 0xff, 0xff, 0xff],
            &[0, 0, 0, 0],
        ],
        |rng| {
            let key: Vec<u8> = if config & 2 == 0 {
                rng.word().into_bytes()
            } else {
                format!(
                    "{{\"id\":{},\"s\":\"{}\"}}",
                    rng.interesting_i64(),
                    rng.below(9)
                )
                .into_bytes()
            };
            let value: Vec<u8> = match (config >> 2) % 3 {
                0 => rng.interesting_i64().to_be_bytes().to_vec(),
                1 => format!("{{\"n\":{}}}", rng.interesting_i64()).into_bytes(),
                _ => {
                    let mut d = Vec::new();
                    v2.datum(rng, &mut d);
                    d
                }
            };
            if config & 1 == 0 {
                let mut payload = Vec::new();
                for side in [&key, &value] {
                    let len = if rng.chance(1, 8) {
                        *rng.pick(&[-1i32, -2, i32::MAX, i32::MIN, side.len() as i32 + 1, 0])
                    } else {
                        side.len() as i32
                    };
                    payload.extend_from_slice(&len.to_be_bytes());
                    if len >= 0 {
                        payload.extend_from_slice(side);
                    }
                }
                Msg {
                    payload,
                    ..Default::default()
                }
            } else {
                let base64 = rng.chance(1, 2);
                let key = if base64 {
                    let mut k = base64::engine::general_purpose::STANDARD
                        .encode(&key)
                        .into_bytes();
                    if rng.chance(1, 5) {
                        k.push(b'!');
                    }
                    k
                } else {
                    key
                };
                Msg {
                    payload: value,
                    key: rng.chance(5, 6).then_some(key),
                    key_is_base64: base64,
                    ..Default::default()
                }
            }
        },
    )
}
