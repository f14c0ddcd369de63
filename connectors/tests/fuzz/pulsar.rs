//! Pulsar's binary protocol from the broker: frames and commands, stored entries (broker
//! entry metadata, checksum, metadata, batches), and the payload codecs.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use magnetar_connectors::MessageId;
use magnetar_connectors::pulsar::{FrameCodec, decompress, messages_of_entry, parse_entry};
use prost::Message as _;
use pulsar::proto::{
    self, BaseCommand, BrokerEntryMetadata, CompressionType, KeyValue, MessageMetadata,
    SingleMessageMetadata, base_command::Type,
};
use tokio_util::codec::Decoder as _;

use crate::harness::{Target, house_bound};
use crate::rng::{Input, Rng, mutate};

// ---------------------------------------------------------------------------------------
// Entries.

/// What a generated entry holds, for the round-trip oracle.
#[derive(Clone, Debug, Default)]
pub struct EntryPlan {
    /// Values of the batch (or the one unbatched value).
    pub values: Vec<Vec<u8>>,
    pub batched: bool,
    pub codec: i32,
    pub broker_entry: bool,
    pub checksum: bool,
}

pub const CODECS: [CompressionType; 5] = [
    CompressionType::None,
    CompressionType::Lz4,
    CompressionType::Zlib,
    CompressionType::Zstd,
    CompressionType::Snappy,
];

/// Compresses as the Java client does: a raw LZ4 block, deflate sync-flushed without a
/// trailer, a Zstandard frame, raw Snappy.
pub fn compress(codec: CompressionType, data: &[u8]) -> Vec<u8> {
    match codec {
        CompressionType::None => data.to_vec(),
        CompressionType::Lz4 => lz4_flex::block::compress(data),
        CompressionType::Zlib => {
            let mut deflater = flate2::Compress::new(flate2::Compression::fast(), true);
            let mut out = Vec::with_capacity(data.len() + 128);
            let _ = deflater.compress_vec(data, &mut out, flate2::FlushCompress::Sync);
            out
        }
        CompressionType::Zstd => zstd::bulk::compress(data, 1).unwrap_or_default(),
        CompressionType::Snappy => snap::raw::Encoder::new()
            .compress_vec(data)
            .unwrap_or_default(),
    }
}

/// A value: text, JSON-ish, repetitive (compresses well) or random bytes.
pub fn value(rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => rng.word().into_bytes(),
        1 => format!("{{\"n\":{},\"s\":\"{}\"}}", rng.below(1000), rng.word()).into_bytes(),
        2 => vec![rng.byte(); rng.below(3000)],
        _ => {
            let n = rng.below(64);
            rng.bytes(n)
        }
    }
}

fn properties(rng: &mut Rng) -> Vec<KeyValue> {
    (0..rng.below(3))
        .map(|_| KeyValue {
            key: rng.word(),
            value: rng.word(),
        })
        .collect()
}

/// The message metadata and (uncompressed) payload of a plausible entry.
pub fn entry_parts(rng: &mut Rng, plan: &mut EntryPlan) -> (MessageMetadata, Vec<u8>) {
    let mut meta = MessageMetadata {
        producer_name: format!("producer-{}", rng.below(5)),
        sequence_id: rng.below(1000) as u64,
        publish_time: 1_700_000_000_000 + rng.below(1 << 20) as u64,
        properties: properties(rng),
        partition_key: rng.chance(1, 3).then(|| rng.word()),
        event_time: rng.chance(1, 3).then(|| rng.below(1 << 30) as u64),
        schema_version: rng
            .chance(1, 4)
            .then(|| (rng.below(3) as i64).to_be_bytes().to_vec()),
        null_value: rng.chance(1, 10).then_some(true),
        ..Default::default()
    };
    plan.batched = rng.chance(2, 3);
    let payload = if plan.batched {
        let count = rng.range(1, 6);
        meta.num_messages_in_batch = Some(count as i32);
        let mut batch = Vec::new();
        for i in 0..count {
            let v = value(rng);
            let single = SingleMessageMetadata {
                properties: properties(rng),
                partition_key: rng.chance(1, 2).then(|| format!("key-{i}")),
                payload_size: v.len() as i32,
                compacted_out: rng.chance(1, 10).then_some(true),
                event_time: rng.chance(1, 3).then(|| rng.below(1 << 30) as u64),
                sequence_id: rng.chance(1, 2).then_some(100 + i as u64),
                null_value: rng.chance(1, 10).then_some(true),
                ..Default::default()
            };
            batch.put_u32(single.encoded_len() as u32);
            let _ = single.encode(&mut batch);
            batch.extend_from_slice(&v);
            if single.compacted_out != Some(true) {
                plan.values.push(v);
            }
        }
        batch
    } else {
        let v = value(rng);
        plan.values.push(v.clone());
        v
    };
    let codec = *rng.pick(&CODECS);
    plan.codec = codec as i32;
    if codec != CompressionType::None {
        meta.compression = Some(codec as i32);
        meta.uncompressed_size = Some(payload.len() as u32);
        (meta, compress(codec, &payload))
    } else {
        (meta, payload)
    }
}

/// Encodes an entry: optional broker entry metadata, optional checksum, metadata, payload.
pub fn encode_entry(
    meta: &MessageMetadata,
    payload: &[u8],
    broker_entry: bool,
    checksum: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    if broker_entry {
        let bem = BrokerEntryMetadata {
            broker_timestamp: Some(meta.publish_time + 1),
            index: Some(meta.sequence_id),
        };
        out.put_u16(0x0e02);
        out.put_u32(bem.encoded_len() as u32);
        let _ = bem.encode(&mut out);
    }
    let mut checked = Vec::new();
    checked.put_u32(meta.encoded_len() as u32);
    let _ = meta.encode(&mut checked);
    checked.extend_from_slice(payload);
    if checksum {
        out.put_u16(0x0e01);
        out.put_u32(crc32c::crc32c(&checked));
    }
    out.extend_from_slice(&checked);
    out
}

/// The extreme values a lying producer (or a corrupt entry) puts in size and count fields.
fn lie(rng: &mut Rng, honest: i64) -> i64 {
    let random = rng.interesting_i32() as i64;
    *rng.pick(&[
        i32::MAX as i64,
        i32::MIN as i64,
        -1,
        0,
        1,
        honest + 1,
        honest - 1,
        honest * 2,
        u32::MAX as i64,
        1 << 30,
        (1 << 30) + 1,
        random,
    ])
}

/// Replaces a field of the metadata (or of one batch message) with a lie, re-encoding
/// the entry so that the checksum still holds and the parser gets past it.
fn structured_lie(rng: &mut Rng, meta: &mut MessageMetadata, payload: &mut Vec<u8>) {
    match rng.below(6) {
        0 => {
            let honest = meta.num_messages_in_batch.unwrap_or(1) as i64;
            meta.num_messages_in_batch = Some(lie(rng, honest) as i32);
        }
        1 => {
            let honest = meta.uncompressed_size.unwrap_or(0) as i64;
            meta.uncompressed_size = Some(lie(rng, honest) as u32);
        }
        2 => meta.compression = Some(rng.interesting_i32().rem_euclid(8)),
        3 => {
            // A batch message's payload size, in an uncompressed batch.
            meta.compression = None;
            meta.uncompressed_size = None;
            let single = SingleMessageMetadata {
                payload_size: lie(rng, 4) as i32,
                ..Default::default()
            };
            let mut batch = Vec::new();
            for _ in 0..rng.range(1, 3) {
                batch.put_u32(single.encoded_len() as u32);
                let _ = single.encode(&mut batch);
                batch.extend_from_slice(b"abcd");
            }
            meta.num_messages_in_batch = Some(rng.range(1, 4) as i32);
            *payload = batch;
        }
        4 => {
            // A batch message's metadata size.
            meta.compression = None;
            meta.uncompressed_size = None;
            meta.num_messages_in_batch = Some(rng.range(1, 3) as i32);
            let mut batch = Vec::new();
            batch.put_u32(lie(rng, 2) as u32);
            batch.extend_from_slice(&[0x18, 0x01, b'x']);
            *payload = batch;
        }
        _ => {
            meta.num_chunks_from_msg = Some(lie(rng, 2) as i32);
            meta.marker_type = rng.chance(1, 3).then(|| rng.interesting_i32());
            if rng.chance(1, 3) {
                meta.encryption_keys.push(proto::EncryptionKeys {
                    key: "k".into(),
                    value: vec![1, 2, 3],
                    metadata: Vec::new(),
                });
            }
        }
    }
}

/// A generated entry, possibly corrupted; the plan is `Some` only for an intact entry.
pub fn gen_entry(rng: &mut Rng) -> (Vec<u8>, Option<EntryPlan>) {
    let mut plan = EntryPlan::default();
    let (mut meta, mut payload) = entry_parts(rng, &mut plan);
    plan.broker_entry = rng.chance(1, 3);
    plan.checksum = rng.chance(2, 3);
    match rng.below(4) {
        0 => {
            let bytes = encode_entry(&meta, &payload, plan.broker_entry, plan.checksum);
            (bytes, Some(plan))
        }
        1 => {
            structured_lie(rng, &mut meta, &mut payload);
            (
                encode_entry(&meta, &payload, plan.broker_entry, plan.checksum),
                None,
            )
        }
        2 => {
            // Corrupt the checked part, then fix the checksum so the parser goes on.
            let mut checked = encode_entry(&meta, &payload, false, false);
            mutate(rng, &mut checked, 1 << 16, ENTRY_DICTIONARY);
            let mut out = Vec::new();
            if plan.checksum {
                out.put_u16(0x0e01);
                out.put_u32(crc32c::crc32c(&checked));
            }
            out.extend_from_slice(&checked);
            (out, None)
        }
        _ => {
            let mut bytes = encode_entry(&meta, &payload, plan.broker_entry, plan.checksum);
            mutate(rng, &mut bytes, 1 << 16, ENTRY_DICTIONARY);
            (bytes, None)
        }
    }
}

const ENTRY_DICTIONARY: &[&[u8]] = &[
    &[0x0e, 0x01],
    &[0x0e, 0x02],
    &[0x58, 0xff, 0xff, 0xff, 0xff, 0x07], // num_messages_in_batch = i32::MAX
    &[0x48, 0xff, 0xff, 0xff, 0xff, 0x0f], // uncompressed_size = u32::MAX
    &[0x40, 0x03],                         // compression = ZSTD
    &[0x40, 0x01],                         // compression = LZ4
    &[0x18, 0xff, 0xff, 0xff, 0xff, 0x07], // payload_size = i32::MAX
    &[
        0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ], // payload_size = -1
];

const TOPIC: &str = "persistent://public/default/fuzz-partition-1";

/// The place of the fuzzed entry.
pub fn entry_id() -> MessageId {
    MessageId::new(3, 7, 1)
}

/// `parse_entry` then `messages_of_entry`; the messages, or the (checked) error text.
pub fn split_entry(bytes: Bytes) -> Result<Result<Vec<Vec<u8>>, String>, String> {
    let topic: Arc<str> = Arc::from(TOPIC);
    let parsed = match parse_entry(bytes) {
        Ok(p) => p,
        Err(e) if e.trim().is_empty() => return Err("parse_entry: empty error text".into()),
        Err(e) => return Ok(Err(e)),
    };
    let claimed = parsed.metadata.num_messages_in_batch;
    let compressed = parsed.metadata.compression.unwrap_or(0) != 0;
    let stored = parsed.payload.len();
    let inflated = parsed.metadata.uncompressed_size.unwrap_or(0) as usize;
    let messages = match messages_of_entry(parsed, entry_id(), &topic, 2) {
        Ok(m) => m,
        Err(e) if e.trim().is_empty() => return Err("messages_of_entry: empty error text".into()),
        Err(e) => return Ok(Err(e)),
    };
    let bytes: usize = messages.iter().map(|m| m.payload.len()).sum();
    let room = if compressed { inflated } else { stored };
    if bytes > room {
        return Err(format!(
            "{bytes} bytes of values out of a {room}-byte payload"
        ));
    }
    let mut last = -1;
    for m in &messages {
        if m.id.entry() != entry_id().entry() || m.id.partition != 1 || &*m.topic != TOPIC {
            return Err(format!("message {} outside its entry", m.id));
        }
        if m.redelivery_count != 2 {
            return Err("redelivery count lost".into());
        }
        match claimed {
            Some(count) => {
                if m.id.batch_index <= last || m.id.batch_index >= count {
                    return Err(format!(
                        "batch index {} after {last} in a batch of {count}",
                        m.id.batch_index
                    ));
                }
                last = m.id.batch_index;
            }
            None if messages.len() != 1 || m.id.batch_index != -1 => {
                return Err("an unbatched entry made a batch".into());
            }
            None => {}
        }
    }
    Ok(Ok(messages
        .into_iter()
        .map(|m| m.payload.to_vec())
        .collect()))
}

fn entry(input: &[u8]) -> Result<(), String> {
    split_entry(Bytes::copy_from_slice(input)).map(|_| ())
}

pub const ENTRY: Target = Target {
    name: "entry",
    run: entry,
    bound: house_bound,
};

/// Checks that an intact generated entry reads back exactly.
pub fn entry_oracle(input: Vec<u8>, plan: EntryPlan) -> Result<(), String> {
    match split_entry(Bytes::from(input))? {
        Ok(values) if values == plan.values => Ok(()),
        Ok(values) => Err(format!(
            "an intact entry ({plan:?}) read back as {} values: {:?}",
            values.len(),
            values.iter().map(|v| v.len()).collect::<Vec<_>>()
        )),
        Err(e) => Err(format!("an intact entry ({plan:?}) was refused: {e}")),
    }
}

// ---------------------------------------------------------------------------------------
// Frames.

fn command(rng: &mut Rng) -> BaseCommand {
    let id = proto::MessageIdData {
        ledger_id: rng.below(100) as u64,
        entry_id: rng.below(100) as u64,
        partition: Some(rng.below(3) as i32 - 1),
        batch_index: rng.chance(1, 3).then(|| rng.below(5) as i32),
        ..Default::default()
    };
    let mut c = BaseCommand::default();
    match rng.below(9) {
        0..=2 => {
            c.r#type = Type::Message as i32;
            c.message = Some(proto::CommandMessage {
                consumer_id: rng.below(4) as u64,
                message_id: id,
                redelivery_count: rng.chance(1, 3).then(|| rng.below(5) as u32),
                ..Default::default()
            });
        }
        3 => {
            c.r#type = Type::Ping as i32;
            c.ping = Some(proto::CommandPing {});
        }
        4 => {
            c.r#type = Type::Connected as i32;
            c.connected = Some(proto::CommandConnected {
                server_version: rng.word(),
                protocol_version: Some(rng.interesting_i32()),
                max_message_size: Some(rng.interesting_i32()),
            });
        }
        5 => {
            c.r#type = Type::Error as i32;
            c.error = Some(proto::CommandError {
                request_id: rng.below(10) as u64,
                error: rng.interesting_i32(),
                message: rng.word(),
            });
        }
        6 => {
            c.r#type = Type::Success as i32;
            c.success = Some(proto::CommandSuccess {
                request_id: rng.below(10) as u64,
                schema: None,
            });
        }
        7 => {
            c.r#type = Type::GetSchemaResponse as i32;
            c.get_schema_response = Some(proto::CommandGetSchemaResponse {
                request_id: 1,
                error_code: None,
                error_message: None,
                schema: Some(proto::Schema {
                    name: rng.word(),
                    schema_data: rng.word().into_bytes(),
                    r#type: rng.below(25) as i32,
                    properties: properties(rng),
                }),
                schema_version: Some(vec![0; 8]),
            });
        }
        _ => {
            c.r#type = Type::ActiveConsumerChange as i32;
            c.active_consumer_change = Some(proto::CommandActiveConsumerChange {
                consumer_id: 1,
                is_active: Some(rng.chance(1, 2)),
            });
        }
    }
    c
}

fn encode_frame(command: &BaseCommand, payload: Option<&[u8]>) -> Vec<u8> {
    let cmd = command.encode_to_vec();
    let mut out = Vec::new();
    let total = 4 + cmd.len() + payload.map_or(0, <[u8]>::len);
    out.put_u32(total as u32);
    out.put_u32(cmd.len() as u32);
    out.extend_from_slice(&cmd);
    if let Some(p) = payload {
        out.extend_from_slice(p);
    }
    out
}

/// A stream of frames: `[split u16][bytes]`, decoded whole and split at `split`.
pub fn gen_frames(rng: &mut Rng) -> Vec<u8> {
    let mut stream = Vec::new();
    for _ in 0..rng.range(1, 4) {
        let c = command(rng);
        let payload = (c.r#type == Type::Message as i32).then(|| gen_entry(rng).0);
        stream.extend_from_slice(&encode_frame(&c, payload.as_deref()));
    }
    match rng.below(5) {
        0 => {}
        1 => {
            // A declared size far beyond what follows (or beyond the limit).
            let size: u32 = *rng.pick(&[
                u32::MAX,
                64 << 20,
                (64 << 20) + 1,
                i32::MAX as u32,
                1 << 20,
                0,
                1,
                3,
            ]);
            let at = if rng.chance(1, 2) { 0 } else { stream.len() };
            stream.splice(at..at, size.to_be_bytes());
        }
        2 => {
            // A command size that overruns its frame, or is zero.
            let size: u32 = *rng.pick(&[u32::MAX, 0, 1, 1 << 20]);
            if stream.len() >= 8 {
                stream[4..8].copy_from_slice(&size.to_be_bytes());
            }
        }
        _ => mutate(rng, &mut stream, 1 << 16, FRAME_DICTIONARY),
    }
    let mut input = Vec::new();
    input.put_u16(rng.below(stream.len() + 1) as u16);
    input.extend_from_slice(&stream);
    input
}

const FRAME_DICTIONARY: &[&[u8]] = &[
    &[0x00, 0x00, 0x00, 0x00],
    &[0xff, 0xff, 0xff, 0xff],
    &[0x04, 0x00, 0x00, 0x00],
    &[0x08, 0x09], // type = MESSAGE
    &[0x08, 0x12], // type = PING
    &[0x0e, 0x01],
];

/// What decoding a stream gave: a summary per frame, then the error that ended it.
type Decoded = (Vec<String>, Option<String>);

fn decode_stream(pieces: &[&[u8]]) -> Result<Decoded, String> {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            match FrameCodec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if buf.len() >= before {
                        return Err("a frame was decoded without consuming bytes".into());
                    }
                    let mut summary = format!(
                        "type {} payload {:?}",
                        frame.command.r#type,
                        frame.payload.as_ref().map(Bytes::len)
                    );
                    if let (Some(m), Some(payload)) = (&frame.command.message, frame.payload) {
                        // As the connection does with a MESSAGE frame.
                        let _ = m;
                        match split_entry(payload)? {
                            Ok(values) => summary.push_str(&format!(" {} values", values.len())),
                            Err(e) => summary.push_str(&format!(" malformed: {e}")),
                        }
                    }
                    frames.push(summary);
                }
                Ok(None) => {
                    if buf.len() != before {
                        return Err("an incomplete frame consumed bytes".into());
                    }
                    break;
                }
                Err(e) => {
                    let text = e.to_string();
                    if text.trim().is_empty() || !text.contains("malformed frame") {
                        return Err(format!("frame error without a reason: '{text}'"));
                    }
                    return Ok((frames, Some(text)));
                }
            }
        }
    }
    Ok((frames, None))
}

fn frame(input: &[u8]) -> Result<(), String> {
    let mut r = Input::new(input);
    let split = r.u16() as usize;
    let bytes = r.rest();
    let split = split.min(bytes.len());
    let whole = decode_stream(&[bytes])?;
    let pieces = decode_stream(&[&bytes[..split], &bytes[split..]])?;
    if whole != pieces {
        return Err(format!(
            "the stream decodes differently split at byte {split}: {whole:?} vs {pieces:?}"
        ));
    }
    Ok(())
}

pub const FRAME: Target = Target {
    name: "frame",
    run: frame,
    bound: house_bound,
};

// ---------------------------------------------------------------------------------------
// Codecs.

/// `[codec u8][claimed size u32][payload]`.
fn codec_case(input: &[u8]) -> Result<(), String> {
    let mut r = Input::new(input);
    let codec = CODECS[r.u8() as usize % CODECS.len()];
    let size = r.u32() as usize;
    let payload = r.rest();
    match decompress(codec, payload, size) {
        Ok(out) if codec != CompressionType::None && out.len() != size => Err(format!(
            "{codec:?} inflated {} bytes to {}, the claimed size is {size}",
            payload.len(),
            out.len()
        )),
        Ok(_) => Ok(()),
        Err(e) if e.trim().is_empty() => Err("empty error text".into()),
        Err(_) => Ok(()),
    }
}

pub const DECOMPRESS: Target = Target {
    name: "decompress",
    run: codec_case,
    bound: house_bound,
};

pub fn gen_codec_case(rng: &mut Rng) -> crate::harness::Generated {
    let codec_index = rng.below(CODECS.len());
    let codec = CODECS[codec_index];
    let data: Vec<u8> = match rng.below(3) {
        0 => value(rng),
        1 => (0..rng.below(20_000))
            .map(|i| b"abcabcabd"[i % 9] ^ (i / 997) as u8)
            .collect(),
        _ => {
            let n = rng.below(4096);
            rng.bytes(n)
        }
    };
    let random_payload = rng.chance(1, 5);
    let mut packed = if random_payload {
        let n = rng.below(4096);
        rng.bytes(n)
    } else {
        compress(codec, &data)
    };
    let honest = rng.chance(1, 2);
    let size = if honest {
        data.len()
    } else {
        let most = packed.len() * magnetar_connectors::pulsar::max_ratio(codec) + 1024;
        *rng.pick(&[
            most,
            most + 1,
            most.min(1 << 30),
            (1 << 30) + 1,
            u32::MAX as usize,
            0,
            data.len() + 1,
            data.len().saturating_sub(1),
            data.len() * 2,
        ])
    };
    let intact = honest && rng.chance(1, 2);
    if !intact {
        mutate(rng, &mut packed, 1 << 16, &[]);
    }
    let mut input = vec![codec_index as u8];
    input.extend_from_slice(&(size.min(u32::MAX as usize) as u32).to_be_bytes());
    input.extend_from_slice(&packed);
    let oracle: Option<Box<dyn FnOnce() -> Result<(), String>>> =
        (intact && !random_payload).then(|| {
            Box::new(move || match decompress(codec, &packed, data.len()) {
                Ok(out) if out == data => Ok(()),
                Ok(out) => Err(format!(
                    "{codec:?} round trip gave {} bytes, not the {} compressed",
                    out.len(),
                    data.len()
                )),
                Err(e) => Err(format!("{codec:?} round trip refused: {e}")),
            }) as Box<dyn FnOnce() -> Result<(), String>>
        });
    (input, oracle)
}
