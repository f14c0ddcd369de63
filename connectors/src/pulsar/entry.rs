//! The stored form of a Pulsar message ("headers and payload"): optional broker entry
//! metadata, optional CRC32C checksum, `MessageMetadata`, then the (possibly batched,
//! possibly compressed) payload. The same bytes arrive in a MESSAGE frame and sit in a
//! ledger entry, so dispatch and tiered-storage reads share this parser.

use std::sync::Arc;

use bytes::{Buf, Bytes};
use prost::Message as _;
use pulsar::proto::{BrokerEntryMetadata, CompressionType, MessageMetadata, SingleMessageMetadata};

use crate::message_id::MessageId;
use crate::time::UnixMillis;

const BROKER_ENTRY_METADATA_MAGIC: u16 = 0x0e02;
const CHECKSUM_MAGIC: u16 = 0x0e01;

/// An entry split into its parts; the payload is still compressed and batched.
#[derive(Debug, Clone)]
pub struct ParsedEntry {
    /// Broker entry metadata (PIP-70), when the broker prepends it.
    pub broker_entry: Option<BrokerEntryMetadata>,
    /// Whether a checksum was present (and therefore verified).
    pub checksum_verified: bool,
    /// The message metadata.
    pub metadata: MessageMetadata,
    /// The payload as stored.
    pub payload: Bytes,
}

/// Splits headers-and-payload bytes, verifying the CRC32C checksum when one is present.
///
/// pulsar-lite dispatches without the checksum; real Pulsar brokers send it. Both are valid
/// per the protocol, where the checksum is optional.
pub fn parse_entry(mut buf: Bytes) -> Result<ParsedEntry, String> {
    let mut broker_entry = None;
    if buf.len() >= 2 && buf[..2] == BROKER_ENTRY_METADATA_MAGIC.to_be_bytes() {
        buf.advance(2);
        let size = take_u32(&mut buf, "broker entry metadata size")? as usize;
        if buf.len() < size {
            return Err(format!(
                "broker entry metadata of {size} bytes overruns the {}-byte frame",
                buf.len()
            ));
        }
        let meta = BrokerEntryMetadata::decode(buf.split_to(size))
            .map_err(|e| format!("broker entry metadata: {e}"))?;
        broker_entry = Some(meta);
    }
    let mut checksum_verified = false;
    if buf.len() >= 2 && buf[..2] == CHECKSUM_MAGIC.to_be_bytes() {
        buf.advance(2);
        let stored = take_u32(&mut buf, "checksum")?;
        let computed = crc32c::crc32c(&buf);
        if stored != computed {
            return Err(format!(
                "CRC32C checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ));
        }
        checksum_verified = true;
    }
    let size = take_u32(&mut buf, "metadata size")? as usize;
    if buf.len() < size {
        return Err(format!(
            "metadata of {size} bytes overruns the {}-byte entry",
            buf.len()
        ));
    }
    let metadata = MessageMetadata::decode(buf.split_to(size))
        .map_err(|e| format!("message metadata: {e}"))?;
    Ok(ParsedEntry {
        broker_entry,
        checksum_verified,
        metadata,
        payload: buf,
    })
}

fn take_u32(buf: &mut Bytes, what: &str) -> Result<u32, String> {
    if buf.len() < 4 {
        return Err(format!("truncated before the {what}"));
    }
    Ok(buf.get_u32())
}

/// One message as delivered to the application, with all its Pulsar metadata.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    /// Where the message sits.
    pub id: MessageId,
    /// The topic (partition) it was read from.
    pub topic: Arc<str>,
    /// The message key (`partition_key`), as sent.
    pub key: Option<String>,
    /// Whether `key` is the base64 form of a binary key.
    pub key_is_base64: bool,
    /// The value bytes (empty when `null_value`).
    pub payload: Bytes,
    /// The producer marked the value as null (a tombstone).
    pub null_value: bool,
    /// Broker publish time.
    pub publish_time: UnixMillis,
    /// Application event time, if the producer set one.
    pub event_time: Option<UnixMillis>,
    /// Delayed delivery: when the producer asked the broker to deliver it (`deliverAtTime`).
    pub deliver_at: Option<UnixMillis>,
    /// The producer's name.
    pub producer_name: Arc<str>,
    /// The producer's sequence id of this message.
    pub sequence_id: u64,
    /// User properties.
    pub properties: Vec<(String, String)>,
    /// Writer schema version, when the producer attached a schema.
    pub schema_version: Option<Bytes>,
    /// How many times the broker says it delivered this message before.
    pub redelivery_count: u32,
}

impl ReceivedMessage {
    /// A message from outside Pulsar (a file line, a memory-table row): only a place and a
    /// value; `sequence_id` is the entry id, every other field empty.
    pub fn local(id: MessageId, topic: Arc<str>, producer_name: Arc<str>, payload: Bytes) -> Self {
        ReceivedMessage {
            id,
            topic,
            key: None,
            key_is_base64: false,
            payload,
            null_value: false,
            publish_time: UnixMillis(0),
            event_time: None,
            deliver_at: None,
            producer_name,
            sequence_id: id.entry_id,
            properties: Vec::new(),
            schema_version: None,
            redelivery_count: 0,
        }
    }
}

/// Turns a parsed entry into the messages it holds: decompresses and splits batches.
///
/// Returns no messages for broker-internal marker entries.
pub fn messages_of_entry(
    entry: ParsedEntry,
    entry_id: MessageId,
    topic: &Arc<str>,
    redelivery_count: u32,
) -> Result<Vec<ReceivedMessage>, String> {
    let meta = entry.metadata;
    if meta.marker_type.unwrap_or(0) != 0 {
        return Ok(Vec::new());
    }
    if !meta.encryption_keys.is_empty() {
        return Err(format!(
            "payload is encrypted ({}); Magnetar does not decrypt end-to-end encrypted messages",
            meta.encryption_algo
                .as_deref()
                .unwrap_or("unknown algorithm")
        ));
    }
    if meta.num_chunks_from_msg.unwrap_or(1) > 1 {
        return Err(
            "chunked message: reassembly of chunked messages is not supported yet".to_string(),
        );
    }
    let codec = CompressionType::try_from(meta.compression.unwrap_or(0))
        .map_err(|_| format!("unknown compression codec {:?}", meta.compression))?;
    let payload = if codec == CompressionType::None {
        entry.payload
    } else {
        let size = meta.uncompressed_size.unwrap_or(0) as usize;
        Bytes::from(super::compression::decompress(codec, &entry.payload, size)?)
    };
    let producer_name: Arc<str> = Arc::from(meta.producer_name.as_str());
    let schema_version = meta
        .schema_version
        .as_ref()
        .filter(|v| !v.is_empty())
        .map(|v| Bytes::copy_from_slice(v));
    let event_time = |t: Option<u64>| t.filter(|t| *t > 0).map(UnixMillis);

    // Present-but-1 means a batch of one (the Java producer does that); absent means unbatched.
    let Some(count) = meta.num_messages_in_batch else {
        return Ok(vec![ReceivedMessage {
            id: entry_id,
            topic: topic.clone(),
            key: meta.partition_key.clone(),
            key_is_base64: meta.partition_key_b64_encoded.unwrap_or(false),
            null_value: meta.null_value.unwrap_or(false),
            payload,
            publish_time: UnixMillis(meta.publish_time),
            event_time: event_time(meta.event_time),
            deliver_at: meta
                .deliver_at_time
                .and_then(|t| u64::try_from(t).ok())
                .map(UnixMillis),
            producer_name,
            sequence_id: meta.sequence_id,
            properties: meta
                .properties
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect(),
            schema_version,
            redelivery_count,
        }]);
    };
    if count < 0 {
        return Err(format!("negative batch size {count}"));
    }
    // The count comes from the producer: each message takes at least its 4-byte metadata size,
    // so the bytes present bound what may be reserved.
    if count as usize > payload.len() / 4 {
        return Err(format!(
            "the batch claims {count} messages but holds only {} bytes",
            payload.len()
        ));
    }
    let mut out = Vec::with_capacity(count as usize);
    let mut rest = payload;
    for index in 0..count {
        let size = take_u32(&mut rest, "single message metadata size")? as usize;
        if rest.len() < size {
            return Err(format!(
                "batch message {index}: metadata overruns the batch"
            ));
        }
        let single = SingleMessageMetadata::decode(rest.split_to(size))
            .map_err(|e| format!("batch message {index}: {e}"))?;
        let len = usize::try_from(single.payload_size)
            .map_err(|_| format!("batch message {index}: negative payload size"))?;
        if rest.len() < len {
            return Err(format!(
                "batch message {index}: payload of {len} bytes overruns the batch"
            ));
        }
        let value = rest.split_to(len);
        if single.compacted_out.unwrap_or(false) {
            continue;
        }
        out.push(ReceivedMessage {
            id: MessageId {
                batch_index: index,
                ..entry_id
            },
            topic: topic.clone(),
            key: single.partition_key.clone(),
            key_is_base64: single.partition_key_b64_encoded.unwrap_or(false),
            null_value: single.null_value.unwrap_or(false),
            payload: value,
            publish_time: UnixMillis(meta.publish_time),
            event_time: event_time(single.event_time).or(event_time(meta.event_time)),
            deliver_at: meta
                .deliver_at_time
                .and_then(|t| u64::try_from(t).ok())
                .map(UnixMillis),
            producer_name: producer_name.clone(),
            sequence_id: single.sequence_id.unwrap_or(meta.sequence_id),
            properties: single
                .properties
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect(),
            schema_version: schema_version.clone(),
            redelivery_count,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use pulsar::proto::KeyValue;

    fn encode_entry(meta: &MessageMetadata, payload: &[u8], checksum: bool) -> Bytes {
        let mut body = Vec::new();
        body.put_u32(meta.encoded_len() as u32);
        meta.encode(&mut body).expect("encode");
        body.put_slice(payload);
        let mut out = Vec::new();
        if checksum {
            out.put_u16(CHECKSUM_MAGIC);
            out.put_u32(crc32c::crc32c(&body));
        }
        out.extend_from_slice(&body);
        Bytes::from(out)
    }

    fn meta() -> MessageMetadata {
        MessageMetadata {
            producer_name: "p".into(),
            sequence_id: 7,
            publish_time: 1_700_000_000_000,
            partition_key: Some("k".into()),
            properties: vec![KeyValue {
                key: "a".into(),
                value: "b".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn parses_with_and_without_checksum() {
        for checksum in [true, false] {
            let parsed = parse_entry(encode_entry(&meta(), b"hello", checksum)).expect("parse");
            assert_eq!(parsed.checksum_verified, checksum);
            assert_eq!(&parsed.payload[..], b"hello");
            assert_eq!(parsed.metadata.sequence_id, 7);
        }
    }

    #[test]
    fn rejects_a_wrong_checksum() {
        let mut bytes = encode_entry(&meta(), b"hello", true).to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let err = parse_entry(Bytes::from(bytes)).expect_err("corrupt");
        assert!(err.contains("checksum mismatch"), "{err}");
    }

    #[test]
    fn skips_broker_entry_metadata() {
        let bem = BrokerEntryMetadata {
            broker_timestamp: Some(5),
            index: Some(9),
        };
        let mut out = Vec::new();
        out.put_u16(BROKER_ENTRY_METADATA_MAGIC);
        out.put_u32(bem.encoded_len() as u32);
        bem.encode(&mut out).expect("encode");
        out.extend_from_slice(&encode_entry(&meta(), b"x", true));
        let parsed = parse_entry(Bytes::from(out)).expect("parse");
        assert_eq!(parsed.broker_entry.and_then(|b| b.index), Some(9));
        assert_eq!(&parsed.payload[..], b"x");
    }

    #[test]
    fn splits_a_batch_and_resolves_per_message_fields() {
        let mut batch = Vec::new();
        for (i, value) in ["one", "two", "three"].iter().enumerate() {
            let single = SingleMessageMetadata {
                payload_size: value.len() as i32,
                partition_key: Some(format!("key-{i}")),
                sequence_id: Some(100 + i as u64),
                ..Default::default()
            };
            batch.put_u32(single.encoded_len() as u32);
            single.encode(&mut batch).expect("encode");
            batch.put_slice(value.as_bytes());
        }
        let m = MessageMetadata {
            num_messages_in_batch: Some(3),
            ..meta()
        };
        let parsed = parse_entry(encode_entry(&m, &batch, true)).expect("parse");
        let topic: Arc<str> = Arc::from("t");
        let msgs = messages_of_entry(parsed, MessageId::new(1, 2, -1), &topic, 0).expect("split");
        assert_eq!(msgs.len(), 3);
        assert_eq!(&msgs[2].payload[..], b"three");
        assert_eq!(msgs[2].id.batch_index, 2);
        assert_eq!(msgs[1].key.as_deref(), Some("key-1"));
        assert_eq!(msgs[1].sequence_id, 101);
        assert!(
            msgs[0].properties.is_empty(),
            "batch-level properties are ignored"
        );
    }

    #[test]
    fn truncated_batches_are_errors() {
        let m = MessageMetadata {
            num_messages_in_batch: Some(2),
            ..meta()
        };
        let parsed = parse_entry(encode_entry(&m, &[0, 0, 0, 2, 0x18], true)).expect("parse");
        let topic: Arc<str> = Arc::from("t");
        assert!(messages_of_entry(parsed, MessageId::new(1, 2, -1), &topic, 0).is_err());
    }

    #[test]
    fn a_batch_size_beyond_the_bytes_present_is_an_error_not_an_allocation() {
        for count in [i32::MAX, 1 << 20, 3] {
            let m = MessageMetadata {
                num_messages_in_batch: Some(count),
                ..meta()
            };
            // Room for two small messages at most.
            let parsed =
                parse_entry(encode_entry(&m, &[0, 0, 0, 2, 0x18, 0], true)).expect("parse");
            let topic: Arc<str> = Arc::from("t");
            let err =
                messages_of_entry(parsed, MessageId::new(1, 2, -1), &topic, 0).expect_err("a lie");
            assert!(err.contains(&format!("claims {count} messages")), "{err}");
        }
    }

    /// Entries written by a real Pulsar broker (the offload fixtures from Pulsar's own test
    /// suite): the checksum is present and must verify, and the fields must read back.
    #[test]
    fn parses_entries_written_by_a_real_broker() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/pulsar-offload");
        let cases = [
            (
                "ledger-1",
                vec![("standalone-9-0", 1_632_298_359_277u64, "hello-reader-1")],
            ),
            (
                "ledger-2",
                vec![
                    ("standalone-10-0", 1_632_298_419_077, "hello-reader-1"),
                    ("standalone-10-1", 1_632_298_424_564, "hello-reader-2"),
                ],
            ),
        ];
        let topic: Arc<str> = Arc::from("persistent://public/default/read-test");
        for (file, expected) in cases {
            let data = std::fs::read(format!("{dir}/{file}")).expect("fixture");
            // One block: a 128-byte header, then [len u32][entry id u64][bytes] per entry.
            let mut offset = 128;
            for (entry_id, (producer, publish_time, payload)) in expected.into_iter().enumerate() {
                let len =
                    u32::from_be_bytes(data[offset..offset + 4].try_into().expect("len")) as usize;
                let id = u64::from_be_bytes(data[offset + 4..offset + 12].try_into().expect("id"));
                assert_eq!(id, entry_id as u64);
                let bytes = Bytes::copy_from_slice(&data[offset + 12..offset + 12 + len]);
                offset += 12 + len;
                let entry = parse_entry(bytes.clone()).expect("a real broker's entry parses");
                assert!(
                    entry.checksum_verified,
                    "{file}: the CRC32C is present and verified"
                );
                let messages = messages_of_entry(entry, MessageId::new(1, id, -1), &topic, 0)
                    .expect("messages");
                assert_eq!(messages.len(), 1, "a batch of one");
                assert_eq!(&*messages[0].producer_name, producer);
                assert_eq!(messages[0].publish_time, UnixMillis(publish_time));
                assert_eq!(messages[0].sequence_id, 0);
                assert_eq!(&messages[0].payload[..], payload.as_bytes());
                assert_eq!(messages[0].id.batch_index, 0);
                // A flipped payload bit is caught by the checksum.
                let mut corrupt = bytes.to_vec();
                let last = corrupt.len() - 1;
                corrupt[last] ^= 0x01;
                assert!(
                    parse_entry(Bytes::from(corrupt)).is_err(),
                    "{file}: corruption detected"
                );
            }
        }
    }

    #[test]
    fn marker_entries_hold_no_messages() {
        let m = MessageMetadata {
            marker_type: Some(20),
            ..meta()
        };
        let parsed = parse_entry(encode_entry(&m, b"", true)).expect("parse");
        let topic: Arc<str> = Arc::from("t");
        let msgs = messages_of_entry(parsed, MessageId::new(1, 2, -1), &topic, 0).expect("ok");
        assert!(msgs.is_empty());
    }
}
