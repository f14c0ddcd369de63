//! Backfill from tiered storage: ledgers offloaded (by the test offloader, since pulsar-lite
//! has no tiered storage) into a local directory or a loopback S3 bucket are read from
//! there, then the topic continues from the broker. The official Python client's view of
//! the topic is the reference.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, Int64Array};
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use magnetar::{Engine, EngineConfig, QueryStream, ReadStats};
use magnetar_connectors::pulsar::{
    ClientConfig, PulsarClient, PulsarSource, SourceConfig, StartPosition, TieredSource, TopicName,
};
use magnetar_connectors::tiered::{
    BackfillEvent, BackfillProgress, BackfillRequest, TieredStorage, spawn_backfill,
};
use magnetar_connectors::{EntryPosition, object_url::object_store_for};
use magnetar_tests::moto::MotoS3;
use magnetar_tests::offloader::{Entries, OffloadOptions, OffloadedLedgerInfo, offload};
use magnetar_tests::*;
use pulsar::proto::CompressionType;

/// `n` messages `{"id": i, "name": "user-i"}` keyed `k{i % 50}`, produced in batches by the
/// official client.
fn produce_ids(url: &str, topic: &str, ids: std::ops::Range<i64>, dir: &std::path::Path) {
    let messages: Vec<(Option<String>, String)> = ids
        .map(|i| {
            (
                Some(format!("k{}", i % 50)),
                format!("{{\"id\":{i},\"name\":\"user-{i}\"}}"),
            )
        })
        .collect();
    python_produce_file(url, topic, &write_messages_file(dir, &messages), true);
}

/// Every offloaded message of `topic` read back through the tiered-storage reader:
/// (id `ledger:entry:partition`, key, value, publish time).
async fn read_back(
    storage: &TieredStorage,
    topic: &str,
) -> Vec<(String, Option<String>, String, u64)> {
    let name = TopicName::parse(topic).expect("topic");
    let mut found = storage
        .offloaded_ledgers(std::slice::from_ref(&name))
        .await
        .expect("discovery");
    let ledgers = found.remove(&name).unwrap_or_default();
    assert!(
        !ledgers.is_empty(),
        "the offloaded ledger is found in {}",
        storage.url()
    );
    let request = BackfillRequest {
        slot: 0,
        topic: Arc::from(topic),
        partition: -1,
        ledgers,
        from: EntryPosition {
            ledger_id: 0,
            entry_id: 0,
        },
    };
    let progress = Arc::new(BackfillProgress::default());
    let (mut rx, _handle) =
        spawn_backfill(storage.store().clone(), vec![request], progress.clone());
    let mut out = Vec::new();
    while let Some(event) = rx.recv().await {
        match event {
            BackfillEvent::Batch {
                messages,
                malformed,
                ..
            } => {
                assert!(malformed.is_empty(), "{malformed:?}");
                out.extend(messages.into_iter().map(|m| {
                    (
                        format!("{}:{}:{}", m.id.ledger_id, m.id.entry_id, m.id.partition),
                        m.key,
                        String::from_utf8_lossy(&m.payload).into_owned(),
                        m.publish_time.0,
                    )
                }));
            }
            BackfillEvent::Done { .. } => break,
            BackfillEvent::Failed { error, .. } => panic!("backfill failed: {error}"),
        }
    }
    let p = progress.snapshot();
    assert_eq!(p.ledgers_done, p.ledgers_total);
    assert_eq!(p.bytes_read, p.bytes_total);
    assert_eq!(p.messages, out.len() as u64);
    out
}

/// The one ledger a small topic has on pulsar-lite.
fn single(mut infos: Vec<OffloadedLedgerInfo>) -> OffloadedLedgerInfo {
    assert_eq!(infos.len(), 1, "one ledger: {infos:?}");
    infos.remove(0)
}

fn python_view(url: &str, topic: &str) -> Vec<(String, Option<String>, String, u64)> {
    python_read_all(url, topic)
        .into_iter()
        .map(|m| {
            (
                m.magnetar_id(),
                m.key.clone(),
                m.value.clone(),
                m.publish_time,
            )
        })
        .collect()
}

/// Writes, then reads back, with every codec and with and without broker entry metadata,
/// in small blocks: exactly the messages the Python client reads from the broker.
#[tokio::test(flavor = "multi_thread")]
async fn offloaded_ledgers_round_trip_with_every_codec_in_a_local_directory() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let topic = unique_topic("tiered-codecs");
    let dir = tempfile::tempdir().expect("tempdir");
    produce_ids(&url, &topic, 0..20_000, dir.path());
    let expected = python_view(&url, &topic);
    assert_eq!(expected.len(), 20_000);
    let codecs = [
        CompressionType::None,
        CompressionType::Lz4,
        CompressionType::Zlib,
        CompressionType::Zstd,
        CompressionType::Snappy,
    ];
    for (i, codec) in codecs.into_iter().enumerate() {
        let bucket = tempfile::tempdir().expect("bucket dir");
        let url_of_bucket = format!("file://{}", bucket.path().display());
        let (store, prefix) = object_store_for(&url_of_bucket).expect("store");
        let options = OffloadOptions {
            max_block_size: 48 << 10,
            codec,
            broker_entry_metadata: i % 2 == 0,
        };
        let info = single(offload(&url, &topic, Entries::All, &store, &prefix, options).await);
        assert!(
            info.blocks > 1,
            "{codec:?}: several blocks ({})",
            info.blocks
        );
        assert!(info.messages > info.entries, "{codec:?}: batched entries");
        let storage = TieredStorage::open(&url_of_bucket, None).expect("open");
        let got = read_back(&storage, &topic).await;
        assert_eq!(got, expected, "{codec:?}");
    }
}

/// The same through S3 (moto on loopback), ZSTD-compressed, under a key prefix.
#[tokio::test(flavor = "multi_thread")]
async fn offloaded_ledgers_round_trip_through_s3() {
    let moto = MotoS3::start("offload").await;
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let topic = unique_topic("tiered-s3");
    let dir = tempfile::tempdir().expect("tempdir");
    produce_ids(&url, &topic, 0..10_000, dir.path());
    let expected = python_view(&url, &topic);
    let bucket_url = moto.url("offload", "cluster-a");
    let (store, prefix) = object_store_for(&bucket_url).expect("store");
    let options = OffloadOptions {
        max_block_size: 16 << 10,
        codec: CompressionType::Zstd,
        broker_entry_metadata: true,
    };
    let info = single(offload(&url, &topic, Entries::All, &store, &prefix, options).await);
    assert!(info.blocks > 1);
    let storage = TieredStorage::open(&bucket_url, None).expect("open");
    assert_eq!(read_back(&storage, &topic).await, expected);
}

async fn collect(stream: QueryStream) -> (Vec<RecordBatch>, QueryStream) {
    let mut stream = stream;
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        batches.push(batch.expect("batch"));
    }
    (batches, stream)
}

fn single_row(batches: &[RecordBatch]) -> Vec<i64> {
    let batch = batches.iter().find(|b| b.num_rows() > 0).expect("a row");
    (0..batch.num_columns())
        .map(|c| {
            let column = batch.column(c);
            let column = column
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("BIGINT");
            assert!(!column.is_null(0));
            column.value(0)
        })
        .collect()
}

const PARTITIONS: u32 = 4;

/// A topic of `PARTITIONS` partitions with messages `0..total`; the first `share` of each
/// partition's entries offloaded into `bucket_url` (several blocks per ledger, LZ4).
async fn offloaded_topic(
    url: &str,
    topic: &str,
    total: i64,
    entries: Entries,
    bucket_url: &str,
    dir: &std::path::Path,
) -> Vec<OffloadedLedgerInfo> {
    let clock = std::time::Instant::now();
    produce_ids(url, topic, 0..total, dir);
    eprintln!("produced {total} messages in {:?}", clock.elapsed());
    let (store, prefix) = object_store_for(bucket_url).expect("store");
    let options = OffloadOptions {
        max_block_size: 64 << 10,
        codec: CompressionType::Lz4,
        broker_entry_metadata: true,
    };
    let mut infos = Vec::new();
    for p in 0..PARTITIONS {
        let partition = format!("{topic}-partition-{p}");
        infos.extend(offload(url, &partition, entries, &store, &prefix, options).await);
        eprintln!("offloaded {:?} after {:?}", infos.last(), clock.elapsed());
    }
    infos
}

fn create_table(topic: &str, url: &str, extra: &str) -> String {
    format!(
        "CREATE TABLE events (id BIGINT, name STRING) WITH (
           'connector' = 'pulsar', 'topics' = '{topic}', 'service-url' = '{url}',
           'source.start.message-id' = 'earliest', 'source.stop.at-message-id' = 'latest'{extra})"
    )
}

/// The end-to-end figure: 1,000,000 messages, the first ledgers' worth offloaded;
/// a bounded aggregate is exact, and the read counters show the prefix came from object
/// storage and the rest from the broker, nothing twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_million_messages_backfill_from_storage_then_continue_from_the_broker() {
    const TOTAL: i64 = 1_000_000;
    let topic = unique_topic("tiered-million");
    let broker = TestBroker::start_partitioned(&[(&topic, PARTITIONS)]).await;
    let url = broker.service_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = tempfile::tempdir().expect("bucket");
    let bucket_url = format!("file://{}", bucket.path().display());
    let infos = offloaded_topic(
        &url,
        &topic,
        TOTAL,
        Entries::Share(0.6),
        &bucket_url,
        dir.path(),
    )
    .await;
    let offloaded: u64 = infos.iter().map(|i| i.messages).sum();
    assert!(
        infos.iter().any(|i| i.blocks > 1),
        "several blocks per ledger: {infos:?}"
    );
    let offloaded_partitions: HashSet<&str> = infos.iter().map(|i| i.topic.as_str()).collect();
    assert_eq!(
        offloaded_partitions.len(),
        PARTITIONS as usize,
        "closed ledgers in every partition: {infos:?}"
    );
    assert!(offloaded > 0 && offloaded < TOTAL as u64);

    let engine = Engine::new(EngineConfig::with_service_url(url.clone()));
    engine
        .execute(&create_table(
            &topic,
            &url,
            &format!(", 'source.tiered-storage.url' = '{bucket_url}'"),
        ))
        .await
        .expect("create table");
    let clock = std::time::Instant::now();
    let query = async {
        collect(
            engine
                .query("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM events")
                .await
                .expect("query"),
        )
        .await
    };
    let (batches, stream) = tokio::time::timeout(std::time::Duration::from_secs(300), query)
        .await
        .expect("the query finishes within 5 minutes");
    assert_eq!(single_row(&batches), vec![TOTAL, TOTAL, 0, TOTAL - 1]);
    let stats = stream.read_stats();
    eprintln!("query took {:?}; reads: {stats:?}", clock.elapsed());
    assert_eq!(stats.messages_read, TOTAL as u64, "no message read twice");
    assert_eq!(
        stats.from_tiered_storage, offloaded,
        "the offloaded prefix came from object storage"
    );
    assert_eq!(
        stats.from_broker(),
        TOTAL as u64 - offloaded,
        "the rest from the broker"
    );
    assert_eq!(stats.backfill.ledgers_done, infos.len() as u64);
    assert_eq!(
        stats.backfill.bytes_read,
        infos.iter().map(|i| i.data_object_length).sum::<u64>()
    );
}

/// Discovery through the admin REST API (`internal-info`, `internalStats`): an offload the
/// broker reports as incomplete is not read from storage; that partition comes wholly
/// from the broker. Starting from a message id inside offloaded data reads from there.
#[tokio::test(flavor = "multi_thread")]
async fn admin_discovery_reads_only_complete_offloads_and_starts_inside_them() {
    let topic = unique_topic("tiered-admin");
    let broker = TestBroker::start_partitioned(&[(&topic, PARTITIONS)]).await;
    let url = broker.service_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let bucket = tempfile::tempdir().expect("bucket");
    let bucket_url = format!("file://{}", bucket.path().display());
    const TOTAL: i64 = 20_000;
    let infos = offloaded_topic(
        &url,
        &topic,
        TOTAL,
        Entries::Share(0.5),
        &bucket_url,
        dir.path(),
    )
    .await;
    let admin = AdminRestFixture::start();
    let in_partition = |p: u32| -> Vec<OffloadedLedgerInfo> {
        let name = format!("{topic}-partition-{p}");
        infos.iter().filter(|i| i.topic == name).cloned().collect()
    };
    for p in 0..PARTITIONS {
        let ledgers: Vec<_> = in_partition(p).into_iter().map(|i| (i, p != 1)).collect();
        admin
            .set_offloaded(&format!("{topic}-partition-{p}"), &ledgers)
            .await;
    }

    let engine = Engine::new(EngineConfig::with_service_url(url.clone()));
    let extra = format!(
        ", 'source.tiered-storage.url' = '{bucket_url}', 'admin-url' = '{}'",
        admin.admin_url()
    );
    engine
        .execute(&create_table(&topic, &url, &extra))
        .await
        .expect("create table");
    let (batches, stream) = collect(
        engine
            .query("SELECT count(*), count(DISTINCT id) FROM events")
            .await
            .expect("query"),
    )
    .await;
    assert_eq!(single_row(&batches), vec![TOTAL, TOTAL]);
    let stats = stream.read_stats();
    let complete: u64 = (0..PARTITIONS)
        .filter(|p| *p != 1)
        .flat_map(in_partition)
        .map(|i| i.messages)
        .sum();
    assert_eq!(
        stats.from_tiered_storage, complete,
        "the incomplete offload was not read"
    );
    assert_eq!(stats.messages_read, TOTAL as u64);

    // The CLI says where the messages came from.
    let data_dir = tempfile::tempdir().expect("data dir");
    let script = format!(
        "{}; SELECT count(*) FROM events;",
        create_table(&topic, &url, &extra)
    );
    let out = run_magnetar(
        &[
            "--data-dir",
            &data_dir.path().display().to_string(),
            "--format",
            "csv",
            "-e",
            &script,
        ],
        std::time::Duration::from_secs(120),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&TOTAL.to_string()));
    let line = format!("read {complete} message(s) from tiered storage");
    assert!(
        stderr.contains(&line),
        "stderr should say '{line}':\n{stderr}"
    );

    // From a message id inside partition 2's offloaded ledger: that partition reads from
    // the id on (floor lookup in the index, then a scan), the others from their start.
    let partition_2 = in_partition(2);
    let info = single(partition_2);
    let info = &info;
    let start_entry = info.entries / 2;
    // The Python client reads the one partition (its multi-partition reader's
    // has_message_available() has stopped early under load).
    let skipped = python_read_all(&url, &format!("{topic}-partition-2"))
        .iter()
        .filter(|m| {
            let id = m.magnetar_id();
            let entry: u64 = id
                .split(':')
                .nth(1)
                .and_then(|e| e.parse().ok())
                .unwrap_or(u64::MAX);
            entry < start_entry
        })
        .count() as i64;
    assert!(skipped > 0);
    let expected = TOTAL - skipped;
    engine.execute("DROP TABLE events").await.expect("drop");
    let extra = format!(
        "{extra}, 'source.start.message-id' = '{}:{start_entry}:2'",
        info.ledger_id
    );
    let ddl =
        create_table(&topic, &url, &extra).replace("'source.start.message-id' = 'earliest', ", "");
    engine.execute(&ddl).await.expect("create table");
    let (batches, _) = collect(
        engine
            .query("SELECT count(*) FROM events")
            .await
            .expect("query"),
    )
    .await;
    assert_eq!(single_row(&batches), vec![expected]);
}

/// Reads `topic` to its end through a source with tiered storage at `bucket_url`:
/// the payloads in order, and how many came from storage.
async fn read_with_storage(
    url: &str,
    topic: &TopicName,
    bucket_url: &str,
    start: StartPosition,
    resume: HashMap<String, EntryPosition>,
) -> (Vec<String>, u64) {
    let client = PulsarClient::connect(ClientConfig::new(url.to_string()))
        .await
        .expect("connect");
    let mut source = PulsarSource::open(
        client,
        SourceConfig {
            subscription_name: Some(format!("read-{}", uuid::Uuid::new_v4().simple())),
            start,
            resume,
            tiered: Some(TieredSource {
                storage: Arc::new(TieredStorage::open(bucket_url, None).expect("open")),
                progress: Arc::new(BackfillProgress::default()),
            }),
            ..SourceConfig::reading(vec![topic.clone()])
        },
    )
    .await
    .expect("open");
    let mut got = Vec::new();
    let mut from_storage = 0;
    while let Some(chunk) = source.next_chunk(500).await.expect("chunk") {
        from_storage += chunk.from_tiered_storage;
        got.extend(
            chunk
                .messages
                .iter()
                .map(|m| String::from_utf8_lossy(&m.payload).into_owned()),
        );
    }
    source.close().await;
    (got, from_storage)
}

/// A checkpoint taken during a backfill holds an entry inside offloaded data; resuming
/// from it (the source's `resume` positions) reads exactly what follows, first from
/// storage, then from the broker.
#[tokio::test(flavor = "multi_thread")]
async fn resuming_inside_offloaded_data_reads_exactly_the_rest() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let topic = unique_topic("tiered-resume");
    let dir = tempfile::tempdir().expect("tempdir");
    // Unbatched, so that the entry count (and with it the block count) does not depend on
    // how the client happened to batch.
    let messages: Vec<(Option<String>, String)> = (0..3_000)
        .map(|i| {
            (
                Some(format!("k{}", i % 50)),
                format!("{{\"id\":{i},\"name\":\"user-{i}\"}}"),
            )
        })
        .collect();
    python_produce_file(
        &url,
        &topic,
        &write_messages_file(dir.path(), &messages),
        false,
    );
    let bucket = tempfile::tempdir().expect("bucket");
    let bucket_url = format!("file://{}", bucket.path().display());
    let (store, prefix) = object_store_for(&bucket_url).expect("store");
    let options = OffloadOptions {
        max_block_size: 16 << 10,
        ..OffloadOptions::default()
    };
    let info = single(offload(&url, &topic, Entries::Share(0.7), &store, &prefix, options).await);
    assert!(
        info.blocks > 2,
        "the resume position is a few blocks in: {info:?}"
    );
    let everything = python_view(&url, &topic);
    let resume_at = EntryPosition {
        ledger_id: info.ledger_id,
        entry_id: info.entries / 3,
    };
    let expected: Vec<String> = everything
        .iter()
        .filter(|(id, ..)| {
            let entry: u64 = id
                .split(':')
                .nth(1)
                .and_then(|e| e.parse().ok())
                .unwrap_or(0);
            entry > resume_at.entry_id
        })
        .map(|(_, _, value, _)| value.clone())
        .collect();
    let full_topic = TopicName::parse(&topic).expect("topic");
    let (got, from_storage) = read_with_storage(
        &url,
        &full_topic,
        &bucket_url,
        StartPosition::Earliest,
        HashMap::from([(full_topic.to_string(), resume_at)]),
    )
    .await;
    assert_eq!(
        got, expected,
        "exactly the messages after the resume position, in order"
    );
    let offloaded_after: usize = everything
        .iter()
        .filter(|(id, ..)| {
            let entry: u64 = id
                .split(':')
                .nth(1)
                .and_then(|e| e.parse().ok())
                .unwrap_or(0);
            entry > resume_at.entry_id && entry < info.entries
        })
        .count();
    assert_eq!(from_storage as usize, offloaded_after);
    let seen: HashSet<&String> = got.iter().collect();
    assert_eq!(seen.len(), got.len());

    // From a publish time that falls in offloaded data: every message published at or
    // after it, the offloaded ones from storage.
    let at = everything[everything.len() / 4].3;
    let expected: Vec<&String> = everything
        .iter()
        .filter(|(.., publish_time)| *publish_time >= at)
        .map(|(_, _, value, _)| value)
        .collect();
    let (got, from_storage) = read_with_storage(
        &url,
        &full_topic,
        &bucket_url,
        StartPosition::PublishTime(magnetar_connectors::UnixMillis(at)),
        HashMap::new(),
    )
    .await;
    assert_eq!(got.iter().collect::<Vec<_>>(), expected);
    assert!(from_storage > 0, "the offloaded part came from storage");
}

/// A topic as real Pulsar has it after ledger roll-over: its older ledger offloaded (and gone
/// from the broker), its data continuing in a later ledger on the broker. Returns the topic,
/// the bucket (kept alive by the caller), the offloaded ledger and the broker's ledger id.
struct RolledOver {
    topic: String,
    bucket_url: String,
    _bucket: tempfile::TempDir,
    offloaded: OffloadedLedgerInfo,
    broker_ledger: u64,
}

const ROLLED_OFFLOADED: i64 = 300;
const ROLLED_ON_BROKER: i64 = 200;

async fn rolled_over(url: &str) -> RolledOver {
    let dir = tempfile::tempdir().expect("tempdir");
    // Written first, so its ledger id is lower (pulsar-lite numbers ledgers across topics).
    let older = unique_topic("tiered-rolled-old");
    let topic = unique_topic("tiered-rolled");
    // One entry per message there, a few batched entries here: the last offloaded entry id is
    // beyond the broker ledger's last one, as after a long ledger and a young one.
    let unbatched: Vec<(Option<String>, String)> = (0..ROLLED_OFFLOADED)
        .map(|i| (None, format!("{{\"id\":{i},\"name\":\"user-{i}\"}}")))
        .collect();
    python_produce_file(
        url,
        &older,
        &write_messages_file(dir.path(), &unbatched),
        false,
    );
    produce_ids(
        url,
        &topic,
        ROLLED_OFFLOADED..ROLLED_OFFLOADED + ROLLED_ON_BROKER,
        dir.path(),
    );
    let bucket = tempfile::tempdir().expect("bucket");
    let bucket_url = format!("file://{}", bucket.path().display());
    let (store, prefix) = object_store_for(&bucket_url).expect("store");
    let offloaded = single(
        magnetar_tests::offloader::offload_as(
            url,
            &older,
            &topic,
            Entries::All,
            &store,
            &prefix,
            OffloadOptions::default(),
        )
        .await,
    );
    assert_eq!(offloaded.entries, ROLLED_OFFLOADED as u64);
    let broker_ledger = magnetar_tests::offloader::read_entries(
        url,
        &magnetar_connectors::pulsar::TopicName::parse(&topic).expect("topic"),
    )
    .await[0]
        .0
        .0;
    assert!(
        broker_ledger > offloaded.ledger_id,
        "the broker's ledger {broker_ledger} follows the offloaded {}",
        offloaded.ledger_id
    );
    RolledOver {
        topic,
        bucket_url,
        _bucket: bucket,
        offloaded,
        broker_ledger,
    }
}

/// Reads `rolled`'s topic with its offloaded ledger, discovered through `admin`.
async fn read_rolled_over(
    url: &str,
    rolled: &RolledOver,
    admin: &AdminRestFixture,
) -> Result<(Vec<RecordBatch>, ReadStats), String> {
    let engine = Engine::new(EngineConfig::with_service_url(url.to_string()));
    let extra = format!(
        ", 'source.tiered-storage.url' = '{}', 'admin-url' = '{}'",
        rolled.bucket_url,
        admin.admin_url()
    );
    engine
        .execute(&create_table(&rolled.topic, url, &extra))
        .await
        .expect("create table");
    let mut stream = engine
        .query("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM events")
        .await
        .expect("query");
    let mut batches = Vec::new();
    let read = async {
        while let Some(batch) = stream.next().await {
            batches.push(batch.map_err(|e| e.to_string())?);
        }
        Ok::<(), String>(())
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("the read ends")?;
    Ok((batches, stream.read_stats()))
}

/// The backfill reads the offloaded ledger, then hands over at the broker's next ledger,
/// whatever its id. Before, the hand-over sought the last offloaded entry, which pulsar-lite
/// (like a broker that no longer has the ledger) answers with nothing, and the read asked
/// again forever.
#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_hands_over_to_the_brokers_next_ledger() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let rolled = rolled_over(&url).await;
    let admin = AdminRestFixture::start();
    admin
        .set_ledgers(
            &rolled.topic,
            &[(rolled.offloaded.clone(), true)],
            &[rolled.broker_ledger],
        )
        .await;
    let (batches, stats) = read_rolled_over(&url, &rolled, &admin).await.expect("read");
    let total = ROLLED_OFFLOADED + ROLLED_ON_BROKER;
    assert_eq!(single_row(&batches), vec![total, total, 0, total - 1]);
    assert_eq!(stats.from_tiered_storage, rolled.offloaded.messages);
    assert_eq!(stats.messages_read, total as u64);
}

/// Where the broker's next ledger is unknown (the admin API lists only the offloaded one), the
/// hand-over seeks the last offloaded entry and pulsar-lite delivers nothing (its defect: a
/// real broker moves on to the next entry). The read asks again a few times, then ends with an
/// error naming the partition, instead of asking forever.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_that_can_make_no_progress_ends_with_an_error() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let rolled = rolled_over(&url).await;
    let admin = AdminRestFixture::start();
    admin
        .set_offloaded(&rolled.topic, &[(rolled.offloaded.clone(), true)])
        .await;
    let err = read_rolled_over(&url, &rolled, &admin)
        .await
        .expect_err("no progress");
    assert!(
        err.contains("no progress reading") && err.contains(&rolled.topic) && err.contains("tries"),
        "{err}"
    );
}
