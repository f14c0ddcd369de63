//! The tiered-storage reader against ledgers offloaded by a real Pulsar broker (the
//! fixtures from Pulsar's own test suite), and against corrupted copies of them.
//! Expected values come from the fixtures' README (decoded independently), never from
//! our own writer.

use std::sync::Arc;

use bytes::Bytes;
use magnetar_connectors::pulsar::{ReceivedMessage, TopicName};
use magnetar_connectors::tiered::{
    BackfillEvent, BackfillProgress, BackfillRequest, OffloadIndex, TieredStorage, spawn_backfill,
};
use magnetar_connectors::{ConnectorError, EntryPosition, UnixMillis};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

const UUID_1: &str = "0c8a3e52-6a3b-4c47-9d0e-1f2a3b4c5d6e";
const UUID_2: &str = "7f0e1d2c-3b4a-4958-8776-655443322110";

fn fixture(name: &str) -> Bytes {
    let path = format!(
        "{}/tests/fixtures/pulsar-offload/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

/// A bucket holding the two real ledgers under the jclouds key names, as ledgers 1 and 2.
async fn bucket(data: [Bytes; 2], index: [Bytes; 2]) -> TieredStorage {
    let store = Arc::new(InMemory::new());
    let [d1, d2] = data;
    let [i1, i2] = index;
    for (key, bytes) in [
        (format!("{UUID_1}-ledger-1"), d1),
        (format!("{UUID_1}-ledger-1-index"), i1),
        (format!("{UUID_2}-ledger-2"), d2),
        (format!("{UUID_2}-ledger-2-index"), i2),
        // Unrelated objects are ignored.
        ("README".to_string(), Bytes::from_static(b"not a ledger")),
    ] {
        store
            .put(&Path::from(key), PutPayload::from(bytes))
            .await
            .expect("put");
    }
    TieredStorage::with_store("memory://fixtures", store, Path::default())
}

async fn real_bucket() -> TieredStorage {
    bucket(
        [fixture("ledger-1"), fixture("ledger-2")],
        [fixture("ledger-1-index"), fixture("ledger-2-index")],
    )
    .await
}

fn read_test_topic() -> TopicName {
    TopicName::parse("persistent://public/default/read-test").expect("topic")
}

/// Reads every offloaded message of the fixture topic; the first error, if any.
async fn read_all(
    storage: &TieredStorage,
    from: EntryPosition,
) -> Result<(Vec<ReceivedMessage>, Vec<String>), ConnectorError> {
    let topic = read_test_topic();
    let mut found = storage
        .offloaded_ledgers(std::slice::from_ref(&topic))
        .await?;
    let ledgers = found.remove(&topic).unwrap_or_default();
    let request = BackfillRequest {
        slot: 0,
        topic: Arc::from(topic.to_string()),
        partition: -1,
        ledgers,
        from,
    };
    let progress = Arc::new(BackfillProgress::default());
    let (mut rx, _handle) = spawn_backfill(storage.store().clone(), vec![request], progress);
    let mut messages = Vec::new();
    let mut malformed = Vec::new();
    while let Some(event) = rx.recv().await {
        match event {
            BackfillEvent::Batch {
                messages: m,
                malformed: bad,
                ..
            } => {
                messages.extend(m);
                malformed.extend(bad.into_iter().map(|b| b.reason));
            }
            BackfillEvent::Done { .. } => break,
            BackfillEvent::Failed { error, .. } => return Err(error),
        }
    }
    Ok((messages, malformed))
}

/// What the fixture README lists per message: topic, ledger, producer, entry, sequence id,
/// publish time, payload.
type Fields = (String, u64, String, u64, u64, UnixMillis, Vec<u8>);

#[test]
fn the_real_indexes_parse() {
    let index = OffloadIndex::parse("ledger-1-index", fixture("ledger-1-index")).expect("index");
    assert_eq!(index.data_object_length, 205);
    assert_eq!(index.data_header_length, 128);
    assert_eq!(index.last_entry_id(), Some(0));
    assert_eq!(index.ledger.length, 65);
    assert_eq!(index.ledger.ctime, Some(1_632_298_336_121));
    assert_eq!(index.ledger.digest_type, Some(3), "CRC32C");
    assert_eq!(
        index.managed_ledger_name().as_deref(),
        Some("public/default/persistent/read-test")
    );
    assert_eq!(index.blocks.len(), 1);
    assert_eq!(
        (
            index.blocks[0].first_entry_id,
            index.blocks[0].part_id,
            index.blocks[0].offset
        ),
        (0, 1, 0)
    );
    let index = OffloadIndex::parse("ledger-2-index", fixture("ledger-2-index")).expect("index");
    assert_eq!(index.data_object_length, 284);
    assert_eq!(index.last_entry_id(), Some(1));
}

#[tokio::test]
async fn the_real_ledgers_decode_to_exactly_their_messages() {
    let storage = real_bucket().await;
    let (messages, malformed) = read_all(
        &storage,
        EntryPosition {
            ledger_id: 0,
            entry_id: 0,
        },
    )
    .await
    .expect("read");
    assert!(malformed.is_empty(), "{malformed:?}");
    let got: Vec<Fields> = messages
        .iter()
        .map(|m| {
            (
                m.topic.to_string(),
                m.id.ledger_id,
                m.producer_name.to_string(),
                m.id.entry_id,
                m.sequence_id,
                m.publish_time,
                m.payload.to_vec(),
            )
        })
        .collect();
    let topic = "persistent://public/default/read-test".to_string();
    let expected = vec![
        (
            topic.clone(),
            1,
            "standalone-9-0".to_string(),
            0,
            0,
            UnixMillis(1_632_298_359_277),
            b"hello-reader-1".to_vec(),
        ),
        (
            topic.clone(),
            2,
            "standalone-10-0".to_string(),
            0,
            0,
            UnixMillis(1_632_298_419_077),
            b"hello-reader-1".to_vec(),
        ),
        (
            topic,
            2,
            "standalone-10-1".to_string(),
            1,
            0,
            UnixMillis(1_632_298_424_564),
            b"hello-reader-2".to_vec(),
        ),
    ];
    assert_eq!(got, expected);
    for m in &messages {
        assert_eq!(m.id.batch_index, 0, "each entry is a batch of one");
        assert_eq!(m.key, None);
        assert!(!m.null_value);
    }
}

#[tokio::test]
async fn reading_resumes_inside_offloaded_data() {
    let storage = real_bucket().await;
    let (messages, _) = read_all(
        &storage,
        EntryPosition {
            ledger_id: 2,
            entry_id: 1,
        },
    )
    .await
    .expect("read");
    let ids: Vec<String> = messages.iter().map(|m| m.id.to_string()).collect();
    assert_eq!(ids, ["2:1:-1:0"]);
    let (messages, _) = read_all(
        &storage,
        EntryPosition {
            ledger_id: 1,
            entry_id: 1,
        },
    )
    .await
    .expect("read");
    assert_eq!(
        messages.len(),
        2,
        "ledger 1 has no entry 1: ledger 2 from its start"
    );
}

#[tokio::test]
async fn another_topic_finds_nothing() {
    let storage = real_bucket().await;
    let other = TopicName::parse("persistent://public/default/read-test-2").expect("topic");
    let found = storage
        .offloaded_ledgers(std::slice::from_ref(&other))
        .await
        .expect("list");
    assert!(found[&other].is_empty());
}

fn flip(bytes: &Bytes, at: usize, value: u8) -> Bytes {
    let mut v = bytes.to_vec();
    v[at] = value;
    Bytes::from(v)
}

/// Asserts the read fails naming the object and the byte offset, with `reason` in it.
async fn assert_fails(storage: TieredStorage, object: &str, offset: u64, reason: &str) {
    let error = match read_all(
        &storage,
        EntryPosition {
            ledger_id: 0,
            entry_id: 0,
        },
    )
    .await
    {
        Ok((_, malformed)) if !malformed.is_empty() => malformed.join("; "),
        Ok(_) => panic!("corrupt input read without an error"),
        Err(e) => e.to_string(),
    };
    let expected = format!("tiered storage object '{object}' at byte {offset}");
    assert!(
        error.contains(&expected),
        "{error}\nshould contain {expected}"
    );
    assert!(error.contains(reason), "{error}\nshould say {reason}");
}

#[tokio::test]
async fn corrupt_objects_are_named_with_their_offsets() {
    let (d1, d2) = (fixture("ledger-1"), fixture("ledger-2"));
    let (i1, i2) = (fixture("ledger-1-index"), fixture("ledger-2-index"));
    let data_2 = format!("{UUID_2}-ledger-2");
    let index_2 = format!("{UUID_2}-ledger-2-index");

    // A truncated data object: the index says 284 bytes.
    let storage = bucket([d1.clone(), d2.slice(..200)], [i1.clone(), i2.clone()]).await;
    assert_fails(storage, &data_2, 200, "truncated").await;

    // A bad block magic.
    let storage = bucket([d1.clone(), flip(&d2, 0, 0x00)], [i1.clone(), i2.clone()]).await;
    assert_fails(storage, &data_2, 0, "bad data block magic").await;

    // A bad index magic; a V2 index is recognised and refused.
    let storage = bucket([d1.clone(), d2.clone()], [i1.clone(), flip(&i2, 0, 0x00)]).await;
    assert_fails(storage, &index_2, 0, "bad index magic").await;
    let mut v2 = i2.to_vec();
    v2[..4].copy_from_slice(&[0x3D, 0x1F, 0xB0, 0xBC]);
    let storage = bucket([d1.clone(), d2.clone()], [i1.clone(), Bytes::from(v2)]).await;
    assert_fails(storage, &index_2, 0, "V2 index").await;

    // A flipped payload byte: the CRC32C no longer matches (entry 1 starts at byte 206).
    let storage = bucket([d1.clone(), flip(&d2, 283, b'3')], [i1.clone(), i2.clone()]).await;
    assert_fails(storage, &data_2, 206, "CRC32C checksum mismatch").await;

    // An index that disagrees with its data: it claims entry 2 exists (lastEntryId 1 -> 2;
    // byte 40 of the index holds lastEntryId's varint).
    assert_eq!(i2[39], 0x20, "lastEntryId field tag of the fixture");
    assert_eq!(i2[40], 0x01);
    let storage = bucket([d1.clone(), d2.clone()], [i1.clone(), flip(&i2, 40, 0x02)]).await;
    assert_fails(storage, &data_2, 284, "last entry is 2").await;

    // The header's entry id disagrees with the index.
    let storage = bucket([d1.clone(), flip(&d2, 27, 0x05)], [i1.clone(), i2.clone()]).await;
    assert_fails(storage, &data_2, 20, "block starts at entry 5").await;

    // An entry length running past the block.
    let storage = bucket([d1.clone(), flip(&d2, 130, 0x7f)], [i1, i2]).await;
    assert_fails(storage, &data_2, 128, "overruns the block").await;
    let _ = d1;
}
