//! TEST SUPPORT ONLY — a stand-in for Pulsar's jclouds offloader.
//!
//! pulsar-lite has no tiered storage, so tests make their own offloaded ledgers: this
//! reads a topic partition's entries as the broker stores them (headers and payload,
//! through a raw consumer) and writes them in the layout a real Pulsar broker writes
//! (`shared/reference/pulsar-storage-formats.md` §1–§4): a data object of blocks (128-byte
//! header, `[len][entry id][bytes]` entries, `FEDCDEAD` padding; every block but the last
//! exactly `max_block_size` bytes, as `BlockAwareSegmentInputStreamImpl` does) and a V1
//! index object (with BookKeeper ledger metadata naming the managed ledger), under
//! `{uuid}-ledger-{id}` and `{uuid}-ledger-{id}-index` at the bucket's root.
//!
//! Each entry gets broker entry metadata (PIP-70) if asked, and the producer's CRC32C
//! checksum, which real brokers store and pulsar-lite's dispatch leaves out. A codec
//! other than `None` re-compresses each entry's payload (the whole batch) the way the
//! Java client does, to cover every codec with one topic.
//!
//! Where it differs from a real broker: pulsar-lite keeps one ledger per topic partition,
//! so an "offloaded ledger" here is a prefix (`entries` first entries) of the broker's
//! ledger, and the broker still serves those entries too. Real Pulsar offloads whole,
//! closed ledgers and continues in later ones.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use magnetar_connectors::pulsar::{
    ClientConfig, Consumer, ConsumerEvent, InitialPosition, PulsarClient, SubscribeOptions,
    SubscriptionType, TopicName, parse_entry,
};
use magnetar_connectors::tiered::ledger_metadata::{CustomMetadata, LedgerMetadataFormat, Segment};
use magnetar_connectors::{EntryPosition, MessageId};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use prost::Message as _;
use pulsar::proto::{BrokerEntryMetadata, CompressionType};
use tokio::sync::mpsc;

/// Silence after which the reader asks the broker again.
const STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How to write the offloaded ledger.
#[derive(Clone, Copy, Debug)]
pub struct OffloadOptions {
    /// Block size (Pulsar's default is 64 MiB; small values make many blocks).
    pub max_block_size: u64,
    /// Re-compress each entry's payload with this codec (`None` keeps it as stored).
    pub codec: CompressionType,
    /// Prepend broker entry metadata (timestamp and index).
    pub broker_entry_metadata: bool,
}

impl Default for OffloadOptions {
    fn default() -> Self {
        OffloadOptions {
            max_block_size: 64 << 20,
            codec: CompressionType::None,
            broker_entry_metadata: true,
        }
    }
}

/// Which entries of the partition to offload (always a prefix, in ledger order).
#[derive(Clone, Copy, Debug)]
pub enum Entries {
    /// All of them.
    All,
    /// This share of them (at least one); the last ledger offloaded may be cut.
    Share(f64),
}

/// What was offloaded.
#[derive(Clone, Debug)]
pub struct OffloadedLedgerInfo {
    /// The topic partition.
    pub topic: String,
    /// Its ledger id (pulsar-lite's).
    pub ledger_id: u64,
    /// The offload UUID.
    pub uuid: String,
    /// Entries written (ids `0..entries`).
    pub entries: u64,
    /// Messages in those entries.
    pub messages: u64,
    /// Sum of the entries' lengths.
    pub size: u64,
    /// Bytes of the data object.
    pub data_object_length: u64,
    /// Blocks written.
    pub blocks: usize,
}

/// Offloads a prefix of the entries of `topic` (one partition or a non-partitioned topic)
/// from the broker at `service_url` into `store` at `prefix`, one offloaded ledger per
/// broker ledger.
pub async fn offload(
    service_url: &str,
    topic: &str,
    entries: Entries,
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    options: OffloadOptions,
) -> Vec<OffloadedLedgerInfo> {
    offload_as(service_url, topic, topic, entries, store, prefix, options).await
}

/// Offloads the entries of `source` as ledgers of `target` (same ledger ids): `target`'s
/// older ledgers, offloaded and gone from the broker, while the broker holds `target`'s own
/// later ledger. pulsar-lite numbers ledgers across topics, so a source written before the
/// target has lower ledger ids, as a real topic's rolled-over ledgers have.
pub async fn offload_as(
    service_url: &str,
    source: &str,
    target: &str,
    entries: Entries,
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    options: OffloadOptions,
) -> Vec<OffloadedLedgerInfo> {
    let stored = read_entries(service_url, &TopicName::parse(source).expect("topic name")).await;
    let topic = TopicName::parse(target).expect("topic name");
    let wanted = match entries {
        Entries::All => stored.len(),
        Entries::Share(share) => ((stored.len() as f64 * share) as usize).clamp(1, stored.len()),
    };
    let mut ledgers: Vec<(u64, Vec<Bytes>)> = Vec::new();
    let mut messages_before = 0;
    for ((ledger_id, _), bytes) in stored.into_iter().take(wanted) {
        if ledgers.last().is_none_or(|(l, _)| *l != ledger_id) {
            ledgers.push((ledger_id, Vec::new()));
        }
        if let Some((_, entries)) = ledgers.last_mut() {
            entries.push(rewrite_entry(&bytes, options, &mut messages_before));
        }
    }
    let mut infos = Vec::new();
    let mut counted = 0;
    for (ledger_id, framed) in ledgers {
        let messages = framed.iter().map(messages_in).sum::<u64>();
        counted += messages;
        infos.push(write_ledger(&topic, ledger_id, framed, messages, store, prefix, options).await);
    }
    assert_eq!(counted, messages_before);
    infos
}

/// Messages in a rewritten entry.
fn messages_in(entry: &Bytes) -> u64 {
    parse_entry(entry.clone())
        .ok()
        .and_then(|e| e.metadata.num_messages_in_batch)
        .unwrap_or(1)
        .max(1) as u64
}

async fn write_ledger(
    topic: &TopicName,
    ledger_id: u64,
    framed: Vec<Bytes>,
    messages: u64,
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    options: OffloadOptions,
) -> OffloadedLedgerInfo {
    let size: u64 = framed.iter().map(|e| e.len() as u64).sum();
    let (data, blocks) = data_object(&framed, options.max_block_size);
    let uuid = uuid::Uuid::new_v4().to_string();
    let (tenant, namespace) = topic.tenant_and_namespace();
    let managed_ledger = format!("{tenant}/{namespace}/persistent/{}", topic.local_name());
    let index = index_object(&data, &blocks, &framed, &managed_ledger);
    let key = |name: String| {
        if prefix.as_ref().is_empty() {
            Path::from(name)
        } else {
            prefix.clone().join(name)
        }
    };
    let data_len = data.len() as u64;
    // The data object first, the index last, as the broker does.
    store
        .put(
            &key(format!("{uuid}-ledger-{ledger_id}")),
            PutPayload::from(data),
        )
        .await
        .expect("write the data object");
    store
        .put(
            &key(format!("{uuid}-ledger-{ledger_id}-index")),
            PutPayload::from(index),
        )
        .await
        .expect("write the index object");
    OffloadedLedgerInfo {
        topic: topic.to_string(),
        ledger_id,
        uuid,
        entries: framed.len() as u64,
        messages,
        size,
        data_object_length: data_len,
        blocks: blocks.len(),
    }
}

/// Every entry of the partition, as stored, in order: ((ledger, entry), bytes). Also for
/// tests that look at what a producer stored (codec, batching).
pub async fn read_entries(service_url: &str, topic: &TopicName) -> Vec<((u64, u64), Bytes)> {
    let client = PulsarClient::connect(ClientConfig::new(service_url.to_string()))
        .await
        .expect("connect to the broker");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let options = SubscribeOptions {
        subscription: format!("test-offloader-{}", uuid::Uuid::new_v4().simple()),
        sub_type: SubscriptionType::Exclusive,
        durable: false,
        initial_position: InitialPosition::Earliest,
        consumer_name: "test-offloader".into(),
        receiver_queue_size: 1000,
    };
    let partition = topic
        .local_name()
        .rsplit_once("-partition-")
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(-1);
    let mut consumer = Consumer::subscribe(client, topic.clone(), partition, 0, tx, options)
        .await
        .expect("subscribe");
    let last = consumer
        .last_message_id()
        .await
        .expect("last message id")
        .last
        .expect("the topic has messages");
    let last = (last.ledger_id, last.entry_id);
    let mut out: Vec<((u64, u64), Bytes)> = Vec::new();
    let mut stalls = 0;
    let mut progress = std::time::Instant::now();
    while out.last().is_none_or(|(id, _)| *id < last) {
        let silence = STALL_TIMEOUT.saturating_sub(progress.elapsed());
        let routed = match tokio::time::timeout(silence, rx.recv()).await {
            Ok(event) => event.expect("the consumer's events"),
            Err(_) => {
                // Nothing new for a while (silence, or the same entries redelivered over
                // and over, which pulsar-lite does): ask again from the last entry kept.
                progress = std::time::Instant::now();
                // pulsar-lite sometimes stops dispatching; ask again from the last entry.
                stalls += 1;
                assert!(
                    stalls < 10,
                    "pulsar-lite stopped dispatching {topic} at {:?}",
                    out.last().map(|o| o.0)
                );
                if let Some(((ledger_id, entry_id), _)) = out.last() {
                    let at = MessageId::new(*ledger_id, *entry_id, partition);
                    let _ = consumer.seek_message_id(at).await;
                }
                consumer.resubscribe().await.expect("resubscribe");
                continue;
            }
        };
        let ConsumerEvent::Message { id, payload, .. } = routed.event else {
            continue;
        };
        let count = parse_entry(payload.clone())
            .ok()
            .and_then(|e| e.metadata.num_messages_in_batch)
            .unwrap_or(1)
            .max(1) as u32;
        consumer.messages_taken(count).expect("flow");
        // pulsar-lite may redeliver; keep each entry once, in order.
        let position = (id.ledger_id, id.entry_id);
        if out.last().is_none_or(|(seen, _)| position > *seen) {
            progress = std::time::Instant::now();
            stalls = 0;
            out.push((position, payload));
            // Acknowledged as it goes: unacknowledged, pulsar-lite redelivers one entry
            // over and over once its backlog is large (seen with 250,000 messages).
            consumer
                .ack_cumulative(EntryPosition {
                    ledger_id: position.0,
                    entry_id: position.1,
                })
                .expect("ack");
        }
    }
    let _ = consumer.unsubscribe().await;
    out
}

/// The entry as a real broker stores it: [broker entry metadata] checksum metadata payload.
fn rewrite_entry(stored: &Bytes, options: OffloadOptions, messages: &mut u64) -> Bytes {
    let parsed = parse_entry(stored.clone()).expect("the broker's entry parses");
    let mut metadata = parsed.metadata;
    let mut payload = parsed.payload.to_vec();
    if options.codec != CompressionType::None {
        assert_eq!(
            metadata.compression.unwrap_or(0),
            0,
            "re-compressing needs an uncompressed entry"
        );
        metadata.uncompressed_size = Some(payload.len() as u32);
        metadata.compression = Some(options.codec as i32);
        payload = compress(options.codec, &payload);
    }
    let count = metadata.num_messages_in_batch.unwrap_or(1).max(1) as u64;
    *messages += count;
    let mut out = BytesMut::new();
    if options.broker_entry_metadata {
        let broker = BrokerEntryMetadata {
            broker_timestamp: Some(metadata.publish_time + 1),
            // The topic-wide offset of the entry's last message.
            index: Some(*messages - 1),
        };
        let encoded = broker.encode_to_vec();
        out.put_u16(0x0e02);
        out.put_u32(encoded.len() as u32);
        out.put_slice(&encoded);
    }
    let meta = metadata.encode_to_vec();
    let mut checked = BytesMut::new();
    checked.put_u32(meta.len() as u32);
    checked.put_slice(&meta);
    checked.put_slice(&payload);
    out.put_u16(0x0e01);
    out.put_u32(crc32c::crc32c(&checked));
    out.put_slice(&checked);
    out.freeze()
}

/// Compresses like the Java client: LZ4 raw block, ZLIB sync-flushed without trailer,
/// a ZSTD frame, raw Snappy.
fn compress(codec: CompressionType, data: &[u8]) -> Vec<u8> {
    match codec {
        CompressionType::None => data.to_vec(),
        CompressionType::Lz4 => lz4_flex::block::compress(data),
        CompressionType::Zlib => {
            let mut deflater = flate2::Compress::new(flate2::Compression::default(), true);
            let mut out = Vec::with_capacity(data.len() + 128);
            deflater
                .compress_vec(data, &mut out, flate2::FlushCompress::Sync)
                .expect("deflate");
            out
        }
        CompressionType::Zstd => zstd::bulk::compress(data, 3).expect("zstd"),
        CompressionType::Snappy => snap::raw::Encoder::new()
            .compress_vec(data)
            .expect("snappy"),
    }
}

/// One block written: (first entry id, offset of its header).
type BlockStart = (u64, u64);

/// The data object: blocks of `max_block_size` bytes except the last, which fits exactly.
fn data_object(entries: &[Bytes], max_block_size: u64) -> (Bytes, Vec<BlockStart>) {
    const HEADER: u64 = 128;
    let mut out = BytesMut::new();
    let mut blocks = Vec::new();
    let mut next = 0usize;
    while next < entries.len() {
        let remaining: u64 = entries[next..].iter().map(|e| 12 + e.len() as u64).sum();
        let block_len = (remaining + HEADER).min(max_block_size);
        let start = out.len() as u64;
        blocks.push((next as u64, start));
        out.put_u32(0xFBDB_ABCB);
        out.put_i64(HEADER as i64);
        out.put_i64(block_len as i64);
        out.put_i64(next as i64);
        out.put_bytes(0, (HEADER - 28) as usize);
        let end = start + block_len;
        let first = next;
        while next < entries.len() && out.len() as u64 + 12 + entries[next].len() as u64 <= end {
            out.put_i32(entries[next].len() as i32);
            out.put_i64(next as i64);
            out.put_slice(&entries[next]);
            next += 1;
        }
        assert!(
            next > first,
            "an entry larger than a block: raise max_block_size"
        );
        let mut phase = 0;
        while (out.len() as u64) < end {
            out.put_u8([0xFE, 0xDC, 0xDE, 0xAD][phase % 4]);
            phase += 1;
        }
    }
    (out.freeze(), blocks)
}

/// The V1 index object.
fn index_object(
    data: &Bytes,
    blocks: &[BlockStart],
    entries: &[Bytes],
    managed_ledger: &str,
) -> Bytes {
    let metadata = LedgerMetadataFormat {
        quorum_size: 1,
        ensemble_size: 1,
        length: entries.iter().map(|e| e.len() as i64).sum(),
        last_entry_id: Some(entries.len() as i64 - 1),
        state: 3,
        segment: vec![Segment {
            ensemble_member: vec!["127.0.0.1:3181".into()],
            first_entry_id: 0,
        }],
        digest_type: Some(3),
        password: None,
        ack_quorum_size: Some(1),
        ctime: Some(0),
        custom_metadata: vec![
            CustomMetadata {
                key: "pulsar/managed-ledger".into(),
                value: managed_ledger.as_bytes().to_vec(),
            },
            CustomMetadata {
                key: "component".into(),
                value: b"managed-ledger".to_vec(),
            },
            CustomMetadata {
                key: "application".into(),
                value: b"pulsar".to_vec(),
            },
        ],
    }
    .encode_to_vec();
    let total = 32 + metadata.len() + 20 * blocks.len();
    let mut out = BytesMut::with_capacity(total);
    out.put_u32(0xDE47_DE47);
    out.put_i32(total as i32);
    out.put_i64(data.len() as i64);
    out.put_i64(128);
    out.put_i32(blocks.len() as i32);
    out.put_i32(metadata.len() as i32);
    out.put_slice(&metadata);
    for (part, (first_entry, offset)) in blocks.iter().enumerate() {
        out.put_i64(*first_entry as i64);
        out.put_i32(part as i32 + 1);
        out.put_i64(*offset as i64);
    }
    out.freeze()
}
