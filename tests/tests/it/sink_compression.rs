//! `pulsar.producer.compressionType`: a sink writes LZ4, ZLIB and ZSTD; the official Python
//! client reads the values back, and the stored entries carry the codec. SNAPPY is refused:
//! pulsar-rs writes Snappy's framed format, which the Java and C++ clients cannot read.

use magnetar::{Engine, EngineConfig};
use magnetar_connectors::pulsar::{TopicName, parse_entry};
use magnetar_tests::offloader::read_entries;
use magnetar_tests::*;
use pulsar::proto::CompressionType;

/// Makes each message compressible on its own (unbatched messages are compressed one by one).
const PADDING: &str = "session=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

#[tokio::test(flavor = "multi_thread")]
async fn each_codec_is_written_and_read_back_by_the_python_client() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let engine = Engine::new(EngineConfig::with_service_url(&url));
    let values: Vec<String> = (0..300)
        .map(|i| {
            format!(
                "('user-{}', 'https://example.com/page/{}?{}')",
                i % 7,
                i % 11,
                PADDING
            )
        })
        .collect();
    for (name, batching, codec) in [
        ("LZ4", "true", CompressionType::Lz4),
        ("zlib", "false", CompressionType::Zlib),
        ("ZSTD", "true", CompressionType::Zstd),
    ] {
        let topic = unique_topic(&format!("codec-{}", name.to_ascii_lowercase()));
        engine
            .execute(&format!(
                "CREATE TABLE out_{name} (user_id STRING, url STRING) WITH (
                   'connector' = 'pulsar', 'topics' = '{topic}', 'format' = 'json',
                   'pulsar.producer.compressionType' = '{name}',
                   'pulsar.producer.batchingEnabled' = '{batching}');
                 SET 'table.dml-sync' = 'true';
                 INSERT INTO out_{name} VALUES {}",
                values.join(", ")
            ))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        let read = python_read_all(&url, &topic);
        assert_eq!(read.len(), values.len(), "{name}: every message read");
        for (i, m) in read.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(&m.value).expect("JSON value");
            assert_eq!(
                v["url"],
                format!("https://example.com/page/{}?{PADDING}", i % 11),
                "{name}"
            );
        }
        let entries = read_entries(&url, &TopicName::parse(&topic).expect("topic")).await;
        assert!(!entries.is_empty());
        for (id, bytes) in entries {
            let entry = parse_entry(bytes).expect("entry");
            assert_eq!(
                entry.metadata.compression,
                Some(codec as i32),
                "{name}: entry {id:?} stored with the codec"
            );
            let inflated = entry.metadata.uncompressed_size.expect("uncompressed size") as usize;
            assert!(
                entry.payload.len() < inflated,
                "{name}: {} stored bytes for {inflated}",
                entry.payload.len()
            );
        }
    }
}

#[tokio::test]
async fn chunking_and_unknown_codecs_are_refused_by_name() {
    let engine = Engine::new(EngineConfig::default());
    for (option, expected) in [
        (
            "'pulsar.producer.chunkingEnabled' = 'true'",
            "cannot split messages into chunks",
        ),
        ("'pulsar.producer.compressionType' = 'BROTLI'", "ZSTD"),
        (
            "'pulsar.producer.compressionType' = 'snappy'",
            "Java and C++ clients cannot read",
        ),
    ] {
        let err = engine
            .execute(&format!(
                "CREATE TABLE t (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = 't', {option})"
            ))
            .await
            .expect_err(option)
            .to_string();
        assert!(err.contains(expected), "{option}: {err}");
    }
}
