//! Tiered storage: the offload index object, data blocks, the whole backfill (discovery,
//! range GETs, framing, decoding) over an in-memory bucket, and chunked-message reassembly,
//! which the backfill does for chunks it reads.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes};
use magnetar_connectors::pulsar::TopicName;
use magnetar_connectors::tiered::data_block::BlockScanner;
use magnetar_connectors::tiered::ledger_metadata::{CustomMetadata, LedgerMetadataFormat, Segment};
use magnetar_connectors::tiered::{
    BackfillEvent, BackfillProgress, BackfillRequest, OffloadIndex, TieredStorage, spawn_backfill,
};
use magnetar_connectors::{ConnectorError, EntryPosition};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use prost::Message as _;
use pulsar::proto::MessageMetadata;

use crate::harness::{Generated, Target, house_bound};
use crate::pulsar::{EntryPlan, encode_entry, entry_parts, gen_entry};
use crate::rng::{Input, Rng, mutate, push_piece};

const UUID: &str = "0c8a3e52-6a3b-4c47-9d0e-1f2a3b4c5d6e";
const LEDGER: u64 = 5;
/// The topic the real fixtures belong to, so they can be read as they are.
const TOPIC: &str = "persistent://public/default/read-test";
const MANAGED_LEDGER: &str = "public/default/persistent/read-test";

fn data_key() -> String {
    format!("{UUID}-ledger-{LEDGER}")
}

fn index_key() -> String {
    format!("{UUID}-ledger-{LEDGER}-index")
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/pulsar-offload/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---------------------------------------------------------------------------------------
// Writing offloaded ledgers (the layout of Pulsar's jclouds offloader).

/// The data object (blocks of at most `max_block` bytes but for a block holding one larger
/// entry) and its V1 index, entries numbered from 0.
pub fn build_ledger(entries: &[Vec<u8>], max_block: u64) -> (Vec<u8>, Vec<u8>) {
    const HEADER: u64 = 128;
    let mut data = Vec::new();
    let mut blocks: Vec<(u64, u64)> = Vec::new();
    let mut next = 0usize;
    while next < entries.len() {
        let start = data.len() as u64;
        let remaining: u64 = entries[next..].iter().map(|e| 12 + e.len() as u64).sum();
        let first_len = 12 + entries[next].len() as u64;
        let block_len = (remaining + HEADER).min(max_block.max(HEADER + first_len));
        blocks.push((next as u64, start));
        data.put_u32(0xFBDB_ABCB);
        data.put_i64(HEADER as i64);
        data.put_i64(block_len as i64);
        data.put_i64(next as i64);
        data.resize((start + HEADER) as usize, 0);
        let end = start + block_len;
        while next < entries.len() && data.len() as u64 + 12 + entries[next].len() as u64 <= end {
            data.put_i32(entries[next].len() as i32);
            data.put_i64(next as i64);
            data.extend_from_slice(&entries[next]);
            next += 1;
        }
        let mut phase = 0;
        while (data.len() as u64) < end {
            data.push([0xFE, 0xDC, 0xDE, 0xAD][phase % 4]);
            phase += 1;
        }
    }
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
        custom_metadata: vec![CustomMetadata {
            key: "pulsar/managed-ledger".into(),
            value: MANAGED_LEDGER.as_bytes().to_vec(),
        }],
    }
    .encode_to_vec();
    let total = 32 + metadata.len() + 20 * blocks.len();
    let mut index = Vec::with_capacity(total);
    index.put_u32(0xDE47_DE47);
    index.put_i32(total as i32);
    index.put_i64(data.len() as i64);
    index.put_i64(HEADER as i64);
    index.put_i32(blocks.len() as i32);
    index.put_i32(metadata.len() as i32);
    index.extend_from_slice(&metadata);
    for (part, (first, offset)) in blocks.iter().enumerate() {
        index.put_i64(*first as i64);
        index.put_i32(part as i32 + 1);
        index.put_i64(*offset as i64);
    }
    (data, index)
}

const INDEX_DICTIONARY: &[&[u8]] = &[
    &[0xDE, 0x47, 0xDE, 0x47],
    &[0x3D, 0x1F, 0xB0, 0xBC],
    &[0xFB, 0xDB, 0xAB, 0xCB],
    &[0xFE, 0xDC, 0xDE, 0xAD],
    &[0x7f, 0xff, 0xff, 0xff],
    &[0x80, 0x00, 0x00, 0x00],
    &[0x20, 0x7f], // lastEntryId = 127
];

// ---------------------------------------------------------------------------------------
// The index object.

fn index(input: &[u8]) -> Result<(), String> {
    const OBJECT: &str = "fuzz-index";
    match OffloadIndex::parse(OBJECT, Bytes::copy_from_slice(input)) {
        Err(e) => {
            let text = e.to_string();
            if !text.contains(&format!(
                "tiered storage object '{OBJECT}' at byte {}",
                e.offset
            )) || e.reason.trim().is_empty()
            {
                return Err(format!("an error that does not name its place: {text}"));
            }
            if e.offset > input.len() as u64 {
                return Err(format!(
                    "error offset {} beyond the object: {text}",
                    e.offset
                ));
            }
            Ok(())
        }
        Ok(index) => {
            let first = index.blocks.first().ok_or("an index without blocks")?;
            if (first.first_entry_id, first.offset) != (0, 0) {
                return Err(format!("first block {first:?}"));
            }
            for i in 0..index.blocks.len() {
                let (start, end) = index.block_range(i);
                if start >= end || end > index.data_object_length {
                    return Err(format!("block {i} spans {start}..{end}"));
                }
            }
            if let Some(last) = index.last_entry_id() {
                for probe in [0, last / 2, last, last.saturating_add(1), u64::MAX] {
                    let b = index.block_of(probe);
                    if b >= index.blocks.len() {
                        return Err(format!("block_of({probe}) = {b}"));
                    }
                }
            }
            let _ = index.managed_ledger_name();
            Ok(())
        }
    }
}

pub const INDEX: Target = Target {
    name: "index",
    run: index,
    bound: house_bound,
};

pub fn gen_index(rng: &mut Rng) -> Vec<u8> {
    let mut bytes = match rng.below(3) {
        0 => fixture(rng.pick::<&str>(&["ledger-1-index", "ledger-2-index"])),
        _ => {
            let entries: Vec<Vec<u8>> = (0..rng.range(1, 12))
                .map(|_| {
                    let n = rng.below(300);
                    rng.bytes(n)
                })
                .collect();
            build_ledger(&entries, rng.range(140, 2000) as u64).1
        }
    };
    if rng.chance(1, 3) {
        // Header fields with extreme values: block count, metadata length, lengths.
        let at = *rng.pick(&[4usize, 8, 16, 24, 28]);
        let v = rng.interesting_i32().to_be_bytes();
        if bytes.len() >= at + 4 {
            bytes[at..at + 4].copy_from_slice(&v);
        }
    }
    if rng.chance(4, 5) {
        mutate(rng, &mut bytes, 1 << 16, INDEX_DICTIONARY);
    }
    bytes
}

// ---------------------------------------------------------------------------------------
// Data blocks.

/// Framing parameters the index gives the scanner.
struct BlockParams {
    piece: usize,
    skip_before: u64,
    first_entry: u64,
    header_length: u64,
    end: u64,
}

const DATA_OBJECT: &str = "fuzz-data";

/// Entry ids and lengths a scan framed, and the error it ended with.
type Scanned = (Vec<(u64, usize)>, Option<String>);

/// Frames a block fed `piece` bytes at a time: the entry ids and lengths, and the error.
fn scan(params: &BlockParams, block: &[u8], piece: usize) -> Result<Scanned, String> {
    let mut scanner = BlockScanner::new(
        Arc::from(DATA_OBJECT),
        (0, params.end),
        params.header_length,
        params.first_entry,
        params.skip_before,
    );
    let fed = &block[..block.len().min(params.end as usize)];
    let mut out = Vec::new();
    let check = |e: magnetar_connectors::tiered::TieredError| -> Result<String, String> {
        let text = e.to_string();
        if !text.contains(&format!("'{DATA_OBJECT}' at byte {}", e.offset)) || e.reason.is_empty() {
            return Err(format!("an error that does not name its place: {text}"));
        }
        if e.offset > params.end {
            return Err(format!(
                "error offset beyond the block's end {}: {text}",
                params.end
            ));
        }
        Ok(text)
    };
    for chunk in fed.chunks(piece.max(1)) {
        if let Err(e) = scanner.feed(Bytes::copy_from_slice(chunk), &mut out) {
            return Ok((summary(&out), Some(check(e)?)));
        }
    }
    let finished = scanner.finish();
    let ids = summary(&out);
    for (expected, (id, len)) in (params.first_entry.max(params.skip_before)..).zip(&ids) {
        if *id != expected || *len as u64 > params.end {
            return Err(format!(
                "entry {id} ({len} bytes) where entry {expected} was due"
            ));
        }
    }
    match finished {
        Ok(next) => {
            if ids.last().is_some_and(|(last, _)| next != last + 1) {
                return Err(format!("finish says {next} after entries {ids:?}"));
            }
            Ok((ids, None))
        }
        Err(e) => Ok((ids, Some(check(e)?))),
    }
}

fn summary(out: &[magnetar_connectors::tiered::data_block::RawEntry]) -> Vec<(u64, usize)> {
    out.iter().map(|e| (e.entry_id, e.bytes.len())).collect()
}

/// `[piece u8][skip u8][first entry u8][header length u16][end u32][block]`.
fn data_block(input: &[u8]) -> Result<(), String> {
    let mut r = Input::new(input);
    let params = BlockParams {
        piece: r.u8() as usize,
        skip_before: r.u8() as u64,
        first_entry: r.u8() as u64,
        // The index refuses a header length below the 28 bytes of fixed fields.
        header_length: (r.u16() as u64).max(28),
        end: r.u32() as u64,
    };
    let block = r.rest();
    let whole = scan(&params, block, usize::MAX)?;
    let pieces = scan(&params, block, params.piece)?;
    if whole != pieces {
        return Err(format!(
            "fed {} bytes at a time the block frames differently: {whole:?} vs {pieces:?}",
            params.piece
        ));
    }
    Ok(())
}

pub const DATA_BLOCK: Target = Target {
    name: "data_block",
    run: data_block,
    bound: house_bound,
};

pub fn gen_data_block(rng: &mut Rng) -> Vec<u8> {
    let (mut block, first_entry) = if rng.chance(1, 4) {
        (fixture(rng.pick::<&str>(&["ledger-1", "ledger-2"])), 0u8)
    } else {
        let entries: Vec<Vec<u8>> = (0..rng.range(1, 8))
            .map(|_| {
                let n = rng.below(200);
                rng.bytes(n)
            })
            .collect();
        let (data, _) = build_ledger(&entries, u64::MAX);
        (data, 0)
    };
    let mut end = block.len() as u32;
    let mut header_length = 128u16;
    let mut first = first_entry;
    match rng.below(6) {
        0 => end = end.wrapping_add(rng.interesting_i32() as u32 % 64),
        1 => end = rng.below(block.len() + 1) as u32,
        2 => header_length = *rng.pick(&[0u16, 27, 28, 29, 127, 129, 4096, u16::MAX]),
        3 => first = rng.byte(),
        _ => {}
    }
    if rng.chance(3, 4) {
        mutate(rng, &mut block, 1 << 16, INDEX_DICTIONARY);
    }
    let mut input = vec![
        *rng.pick(&[1u8, 2, 3, 5, 7, 12, 13, 64, 200, 0]),
        if rng.chance(1, 4) {
            rng.below(4) as u8
        } else {
            0
        },
        first,
    ];
    input.extend_from_slice(&header_length.to_be_bytes());
    input.extend_from_slice(&end.to_be_bytes());
    input.extend_from_slice(&block);
    input
}

// ---------------------------------------------------------------------------------------
// The whole backfill.

thread_local! {
    static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    RUNTIME.with(|cell| {
        let mut slot = cell.borrow_mut();
        let runtime = slot.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
        });
        runtime.block_on(future)
    })
}

/// What a backfill read: each message's entry, batch index and value; the malformed
/// entries' ids; the failure, if any.
#[derive(Debug, Default, PartialEq)]
pub struct Read {
    pub messages: Vec<(u64, i32, Vec<u8>)>,
    pub malformed: Vec<(u64, String)>,
    pub failed: Option<String>,
}

fn check_error(error: &ConnectorError) -> Result<String, String> {
    let text = error.to_string();
    if text.trim().is_empty() {
        return Err("an empty error".into());
    }
    if let ConnectorError::TieredStorage(t) = error
        && t.object != data_key()
        && t.object != index_key()
    {
        return Err(format!("an error naming another object: {text}"));
    }
    if text.contains("panicked") {
        return Err(format!("a task panicked: {text}"));
    }
    Ok(text)
}

/// Puts the two objects in a bucket, finds the topic's ledgers by listing it (parsing the
/// index), and backfills them.
pub fn backfill_objects(index: &[u8], data: &[u8]) -> Result<Read, String> {
    block_on(async {
        let store = Arc::new(InMemory::new());
        for (key, bytes) in [(data_key(), data), (index_key(), index)] {
            store
                .put(
                    &Path::from(key),
                    PutPayload::from(Bytes::copy_from_slice(bytes)),
                )
                .await
                .map_err(|e| format!("put: {e}"))?;
        }
        let store: Arc<dyn ObjectStore> = store;
        let storage = TieredStorage::with_store("memory://fuzz", store.clone(), Path::default());
        let topic = TopicName::parse(TOPIC).map_err(|e| e.to_string())?;
        let mut read = Read::default();
        let ledgers = match storage
            .offloaded_ledgers(std::slice::from_ref(&topic))
            .await
        {
            Ok(mut found) => found.remove(&topic).unwrap_or_default(),
            Err(e) => {
                let text = check_error(&e)?;
                if !text.contains(&index_key()) {
                    return Err(format!("an index error not naming the index: {text}"));
                }
                read.failed = Some(text);
                return Ok(read);
            }
        };
        let last = ledgers.first().and_then(|l| l.index.last_entry_id());
        let request = BackfillRequest {
            slot: 0,
            topic: Arc::from(TOPIC),
            partition: 2,
            ledgers,
            from: EntryPosition {
                ledger_id: 0,
                entry_id: 0,
            },
        };
        let progress = Arc::new(BackfillProgress::default());
        let (mut rx, _handle) = spawn_backfill(store, vec![request], progress);
        let mut previous: Option<(u64, i32)> = None;
        loop {
            let event = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .map_err(|_| "the backfill hung".to_string())?;
            match event {
                None => return Err("the backfill ended without Done or Failed".into()),
                Some(BackfillEvent::Done { slot: 0 }) => return Ok(read),
                Some(BackfillEvent::Failed { slot: 0, error }) => {
                    read.failed = Some(check_error(&error)?);
                    return Ok(read);
                }
                Some(BackfillEvent::Batch {
                    slot: 0,
                    messages,
                    malformed,
                    last_entry,
                }) => {
                    if last_entry.ledger_id != LEDGER {
                        return Err(format!("a batch up to {last_entry}"));
                    }
                    for m in messages {
                        let at = (m.id.entry_id, m.id.batch_index);
                        if m.id.ledger_id != LEDGER
                            || m.id.partition != 2
                            || &*m.topic != TOPIC
                            || previous.is_some_and(|p| p >= at)
                            || last.is_none_or(|l| m.id.entry_id > l)
                        {
                            return Err(format!("message {} out of place or order", m.id));
                        }
                        previous = Some(at);
                        read.messages
                            .push((m.id.entry_id, m.id.batch_index, m.payload.to_vec()));
                    }
                    for bad in malformed {
                        if bad.id.ledger_id != LEDGER
                            || &*bad.topic != TOPIC
                            || bad.reason.trim().is_empty()
                        {
                            return Err(format!("a malformed entry without its place: {bad:?}"));
                        }
                        read.malformed.push((bad.id.entry_id, bad.reason));
                    }
                }
                Some(other) => return Err(format!("an event of another slot: {other:?}")),
            }
        }
    })
}

/// `[index length u16][index][data]`.
fn backfill(input: &[u8]) -> Result<(), String> {
    let mut r = Input::new(input);
    let n = r.u16() as usize;
    let index = r.take(n);
    let data = r.rest();
    let read = backfill_objects(index, data)?;
    for (_, reason) in &read.malformed {
        // Entries the framing delivered but the parser refused name the object and offset.
        if !reason.contains("chunk") && !reason.contains(&format!("'{}' at byte ", data_key())) {
            return Err(format!(
                "a malformed entry without object and offset: {reason}"
            ));
        }
    }
    Ok(())
}

pub const BACKFILL: Target = Target {
    name: "backfill",
    run: backfill,
    bound: house_bound,
};

pub fn gen_backfill(rng: &mut Rng) -> Vec<u8> {
    let (mut index, mut data) = if rng.chance(1, 5) {
        let which = rng.pick(&["ledger-1", "ledger-2"]).to_string();
        (fixture(&format!("{which}-index")), fixture(&which))
    } else {
        let entries: Vec<Vec<u8>> = (0..rng.range(1, 10)).map(|_| gen_entry(rng).0).collect();
        let (data, index) = build_ledger(&entries, rng.range(200, 4000) as u64);
        (index, data)
    };
    match rng.below(4) {
        0 => mutate(rng, &mut index, 1 << 15, INDEX_DICTIONARY),
        1 | 2 => mutate(rng, &mut data, 1 << 16, INDEX_DICTIONARY),
        _ => {}
    }
    let mut input = Vec::new();
    push_piece(&mut input, &index);
    input.extend_from_slice(&data);
    input
}

// ---------------------------------------------------------------------------------------
// Chunked messages, reassembled by the backfill.

/// `[block size u16][entry: len u16, bytes]...`: the entries are written as a valid ledger.
fn chunks(input: &[u8]) -> Result<(), String> {
    chunks_read(input).map(|_| ())
}

fn chunks_read(input: &[u8]) -> Result<Read, String> {
    let mut r = Input::new(input);
    let block = r.u16() as u64 + 200;
    let mut entries = Vec::new();
    while !r.is_empty() {
        let n = r.u16() as usize;
        entries.push(r.take(n).to_vec());
    }
    if entries.is_empty() {
        return Ok(Read::default());
    }
    let (data, index) = build_ledger(&entries, block);
    let read = backfill_objects(&index, &data)?;
    if let Some(failed) = &read.failed {
        return Err(format!("a valid ledger failed to read: {failed}"));
    }
    Ok(read)
}

pub const CHUNKS: Target = Target {
    name: "chunks",
    run: chunks,
    bound: house_bound,
};

/// A chunked message's entries (metadata, payload) and the values it holds.
type Chunked = (Vec<(MessageMetadata, Vec<u8>)>, Vec<Vec<u8>>);

/// One chunked message: its chunk entries (metadata, payload) and the values it holds.
fn chunked_message(rng: &mut Rng, uuid: &str) -> Chunked {
    let mut plan = EntryPlan::default();
    let (meta, payload) = entry_parts(rng, &mut plan);
    let count = rng.range(2, 5);
    let size = payload.len().div_ceil(count).max(1);
    let pieces: Vec<&[u8]> = payload.chunks(size).collect();
    let count = pieces.len().max(1);
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let mut m = meta.clone();
        m.uuid = Some(uuid.to_string());
        m.chunk_id = Some(i as i32);
        m.num_chunks_from_msg = Some(count as i32);
        m.total_chunk_msg_size = Some(payload.len() as i32);
        out.push((m, piece.to_vec()));
    }
    (out, plan.values)
}

pub fn gen_chunks(rng: &mut Rng) -> Generated {
    let (mut a, values_a) = chunked_message(rng, "producer-0-1");
    let two = rng.chance(1, 2);
    let (mut b, values_b) = if two {
        chunked_message(rng, "producer-0-2")
    } else {
        (Vec::new(), Vec::new())
    };
    // Two producers' chunk sequences with the same uuid are distinct messages.
    if two && rng.chance(1, 3) {
        for (m, _) in &mut b {
            m.uuid = Some("producer-0-1".into());
            m.producer_name = "other".into();
        }
    }
    // Interleave b into a (both keep their own order); the message is complete at its
    // last chunk, where its values appear.
    let mut order: Vec<(MessageMetadata, Vec<u8>)> = Vec::new();
    let mut expected = Vec::new();
    let (mut ia, mut ib) = (0, 0);
    let (na, nb) = (a.len(), b.len());
    while ia < na || ib < nb {
        let take_a = ib >= nb || (ia < na && rng.chance(1, 2));
        if take_a {
            order.push(std::mem::take(&mut a[ia]));
            ia += 1;
            if ia == na {
                expected.extend(values_a.iter().cloned());
            }
        } else {
            order.push(std::mem::take(&mut b[ib]));
            ib += 1;
            if ib == nb {
                expected.extend(values_b.iter().cloned());
            }
        }
    }
    let intact = rng.chance(1, 3);
    if !intact {
        let i = rng.below(order.len());
        let honest = order[i].0.total_chunk_msg_size.unwrap_or(0);
        match rng.below(8) {
            0 => order[i].0.chunk_id = Some(rng.interesting_i32()),
            1 => order[i].0.num_chunks_from_msg = Some(rng.interesting_i32()),
            2 => {
                order[i].0.total_chunk_msg_size = Some(*rng.pick(&[
                    1 << 30,
                    (1 << 30) - 1,
                    (1 << 30) + 1,
                    i32::MAX,
                    -1,
                    0,
                    honest + 1,
                    honest - 1,
                ]))
            }
            3 => order[i].0.uuid = None,
            4 => {
                let dup = order[i].clone();
                order.insert(i, dup);
            }
            5 => {
                order.remove(i);
            }
            6 => {
                let j = rng.below(order.len());
                order.swap(i, j);
            }
            _ => order[i].0.compression = Some(rng.below(6) as i32),
        }
    }
    let checksum = rng.chance(1, 2);
    let mut entries: Vec<Vec<u8>> = order
        .iter()
        .map(|(m, p)| encode_entry(m, p, false, checksum))
        .collect();
    if !intact && rng.chance(1, 4) && !entries.is_empty() {
        let i = rng.below(entries.len());
        mutate(rng, &mut entries[i], 1 << 16, &[]);
    }
    let block = rng.below(3000) as u16;
    let mut input = block.to_be_bytes().to_vec();
    for e in &entries {
        push_piece(&mut input, e);
    }
    let oracle_input = input.clone();
    let oracle: Option<Box<dyn FnOnce() -> Result<(), String>>> = intact.then(|| {
        Box::new(move || {
            let read = chunks_read(&oracle_input)?;
            let got: Vec<Vec<u8>> = read.messages.into_iter().map(|(_, _, v)| v).collect();
            if !read.malformed.is_empty() || got != expected {
                return Err(format!(
                    "intact chunked messages read back as {} values (expected {}), malformed {:?}",
                    got.len(),
                    expected.len(),
                    read.malformed
                ));
            }
            Ok(())
        }) as Box<dyn FnOnce() -> Result<(), String>>
    });
    (input, oracle)
}
