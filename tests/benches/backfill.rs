//! Backfill speed from tiered storage: messages/s and MB/s reading offloaded ledgers from a
//! local directory and from S3 (moto on loopback), next to the raw `object_store` range-GET
//! throughput of the same objects in the same run (same range size and concurrency), and
//! next to reading the same messages through the broker (pulsar-lite).
//!
//! `cargo bench -p magnetar-tests --bench backfill` (`-- --messages N`, default 1,000,000).
//! Needs `./scripts/setup.sh` (pulsar-lite, the Python client, moto).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use magnetar_connectors::EntryPosition;
use magnetar_connectors::object_url::object_store_for;
use magnetar_connectors::pulsar::TopicName;
use magnetar_connectors::tiered::backfill::{IO_CONCURRENCY, RANGE_SIZE};
use magnetar_connectors::tiered::{
    BackfillEvent, BackfillProgress, BackfillRequest, OffloadedLedger, TieredStorage,
    spawn_backfill,
};
use magnetar_tests::moto::MotoS3;
use magnetar_tests::offloader::{Entries, OffloadOptions, offload};
use magnetar_tests::{TestBroker, python_produce_file, unique_topic, write_messages_file};
use object_store::ObjectStoreExt;
use pulsar::proto::CompressionType;

const RUNS: usize = 3;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn ledgers_of(storage: &TieredStorage, topic: &TopicName) -> Vec<OffloadedLedger> {
    let mut found = storage
        .offloaded_ledgers(std::slice::from_ref(topic))
        .await
        .expect("discovery");
    found.remove(topic).unwrap_or_default()
}

/// Range GETs of every data object, `IO_CONCURRENCY` in flight: the bytes, nothing else.
async fn raw_get(storage: &TieredStorage, ledgers: &[OffloadedLedger]) -> (Duration, u64) {
    let store = storage.store().clone();
    let ranges: Vec<_> = ledgers
        .iter()
        .flat_map(|l| {
            let len = l.index.data_object_length;
            (0..len.div_ceil(RANGE_SIZE)).map(move |i| {
                (
                    l.data_object.clone(),
                    i * RANGE_SIZE..((i + 1) * RANGE_SIZE).min(len),
                )
            })
        })
        .collect();
    let clock = Instant::now();
    let bytes: u64 = futures::stream::iter(ranges)
        .map(|(path, range)| {
            let store = store.clone();
            async move { store.get_range(&path, range).await.expect("GET").len() as u64 }
        })
        .buffer_unordered(IO_CONCURRENCY)
        .fold(0, |a, b| async move { a + b })
        .await;
    (clock.elapsed(), bytes)
}

/// The tiered-storage reader: discovery, range GETs, framing, checksums, batch splitting.
async fn backfill(storage: &TieredStorage, topic: &TopicName) -> (Duration, u64, u64) {
    let clock = Instant::now();
    let ledgers = ledgers_of(storage, topic).await;
    let request = BackfillRequest {
        slot: 0,
        topic: Arc::from(topic.to_string()),
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
    let mut messages = 0u64;
    while let Some(event) = rx.recv().await {
        match event {
            BackfillEvent::Batch { messages: m, .. } => messages += m.len() as u64,
            BackfillEvent::Done { .. } => break,
            BackfillEvent::Failed { error, .. } => panic!("{error}"),
        }
    }
    (clock.elapsed(), messages, progress.snapshot().bytes_read)
}

async fn through_broker(url: &str, topic: &TopicName) -> (Duration, u64) {
    let (messages, time) = magnetar_tests::bare_read(url, topic).await;
    (time, messages)
}

fn row(name: &str, messages: u64, bytes: u64, time: Duration, raw: Option<f64>) {
    let secs = time.as_secs_f64();
    let mbs = bytes as f64 / secs / 1e6;
    let dash = || String::from("—");
    let share = raw.map_or_else(dash, |r| format!("{:.0}%", 100.0 * mbs / r));
    let (mb, mbs) = if bytes == 0 {
        (dash(), dash())
    } else {
        (format!("{:.1}", bytes as f64 / 1e6), format!("{mbs:.1}"))
    };
    let (count, rate) = if messages == 0 {
        (dash(), dash())
    } else {
        (
            messages.to_string(),
            format!("{:.0}", messages as f64 / secs),
        )
    };
    println!(
        "| {name:<34} | {count:>9} | {mb:>8} | {secs:>7.3} | {rate:>11} | {mbs:>8} | {share:>7} |"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let messages: i64 = args
        .iter()
        .position(|a| a == "--messages")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let payload_bytes: usize = args
        .iter()
        .position(|a| a == "--payload-bytes")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let codec = match args
        .iter()
        .position(|a| a == "--codec")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
    {
        Some("none") => CompressionType::None,
        Some("zstd") => CompressionType::Zstd,
        _ => CompressionType::Lz4,
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let broker = TestBroker::start().await;
        let url = broker.service_url();
        let topic_name = unique_topic("bench-backfill");
        let topic = TopicName::parse(&topic_name).expect("topic");
        let dir = tempfile::tempdir().expect("tempdir");
        let batch: Vec<(Option<String>, String)> = (0..messages)
            .map(|i| {
                // Optional filler: pseudo-random text, so compression does not erase it.
                let filler: String = (0..payload_bytes)
                    .map(|j| (b'a' + ((i as usize * 31 + j * 17) % 26) as u8) as char)
                    .collect();
                (
                    Some(format!("k{}", i % 1000)),
                    format!("{{\"id\":{i},\"user\":\"user-{}\",\"url\":\"/page/{}\",\"filler\":\"{filler}\"}}", i % 5000, i % 97),
                )
            })
            .collect();
        python_produce_file(&url, &topic_name, &write_messages_file(dir.path(), &batch), true);
        drop(batch);

        let local = tempfile::tempdir().expect("bucket dir");
        let local_url = format!("file://{}", local.path().display());
        let moto = MotoS3::start("bench").await;
        let s3_url = moto.url("bench", "offload");
        let options = OffloadOptions {
            max_block_size: 8 << 20,
            codec,
            broker_entry_metadata: true,
        };
        for target in [&local_url, &s3_url] {
            let (store, prefix) = object_store_for(target).expect("store");
            let infos = offload(&url, &topic_name, Entries::All, &store, &prefix, options).await;
            assert_eq!(infos.iter().map(|i| i.messages).sum::<u64>(), messages as u64);
        }

        println!("\nBackfill of {messages} messages (one partition, {codec:?} batches, +{payload_bytes} filler bytes per message, 8 MiB blocks, {} MiB range GETs, {IO_CONCURRENCY} in flight); median of {RUNS} runs\n", RANGE_SIZE >> 20);
        println!("| {:<34} | {:>9} | {:>8} | {:>7} | {:>11} | {:>8} | {:>7} |", "read", "messages", "MB", "s", "msg/s", "MB/s", "of raw");
        println!("|{:-<36}|{:->11}|{:->10}|{:->9}|{:->13}|{:->10}|{:->9}|", "", "", "", "", "", "", "");
        for (name, target) in [("local directory", &local_url), ("S3 (moto, loopback)", &s3_url)] {
            let storage = TieredStorage::open(target, None).expect("open");
            let ledgers = ledgers_of(&storage, &topic).await;
            let mut raw_times = Vec::new();
            let mut fill_times = Vec::new();
            let (mut bytes, mut count) = (0, 0);
            for _ in 0..RUNS {
                let (t, b) = raw_get(&storage, &ledgers).await;
                raw_times.push(t);
                bytes = b;
                let (t, m, _) = backfill(&storage, &topic).await;
                fill_times.push(t);
                count = m;
            }
            assert_eq!(count, messages as u64, "every message backfilled");
            let raw = median(raw_times);
            let raw_mbs = bytes as f64 / raw.as_secs_f64() / 1e6;
            row(&format!("{name}: raw range GETs"), 0, bytes, raw, None);
            row(&format!("{name}: tiered-storage reader"), count, bytes, median(fill_times), Some(raw_mbs));
        }
        let mut broker_times = Vec::new();
        let mut count = 0;
        for _ in 0..RUNS {
            let (t, m) = through_broker(&url, &topic).await;
            broker_times.push(t);
            count = m;
        }
        row("broker (pulsar-lite), same messages", count, 0, median(broker_times), None);
    });
}
