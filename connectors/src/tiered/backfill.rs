//! Streaming the messages of offloaded ledgers: range GETs of the data objects, several
//! in flight at once (bounded), entries framed in order, decoded on blocking threads in
//! parallel with the I/O, delivered per partition in entry order through a bounded
//! channel, so memory stays bounded whatever the ledger size.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::data_block::{BlockScanner, RawEntry};
use super::discovery::OffloadedLedger;
use super::{BackfillProgress, TieredError};
use crate::error::{ConnectorError, Result};
use crate::message_id::{EntryPosition, MessageId, PartitionIndex};
use crate::pulsar::chunks::{ChunkAssembler, is_chunk};
use crate::pulsar::{MalformedEntry, ParsedEntry, ReceivedMessage, messages_of_entry, parse_entry};

/// Bytes per range GET (Pulsar's own reader uses 1 MiB; larger ranges suit object stores).
pub const RANGE_SIZE: u64 = 4 << 20;
/// Range GETs in flight per backfill (over all its partitions).
pub const IO_CONCURRENCY: usize = 8;
/// Ranges fetched ahead of the framing, per partition.
const FETCH_AHEAD: usize = 6;
/// Groups of entries being decoded at once, per partition.
const DECODE_AHEAD: usize = 4;
/// Bytes of entries decoded as one group (a range is split so all cores decode).
const DECODE_GROUP_BYTES: usize = 1 << 20;
/// Messages per delivered batch.
const BATCH_MESSAGES: usize = 8192;
/// Batches buffered between the readers and the consumer of a backfill.
const CHANNEL_CAPACITY: usize = 8;

/// What one partition reads from tiered storage.
#[derive(Clone, Debug)]
pub struct BackfillRequest {
    /// The caller's index of the partition.
    pub slot: usize,
    /// Topic (partition) name, for the messages.
    pub topic: Arc<str>,
    /// Partition index, for message ids.
    pub partition: PartitionIndex,
    /// The partition's offloaded ledgers, ascending.
    pub ledgers: Vec<OffloadedLedger>,
    /// The first entry to read (entries before it are skipped).
    pub from: EntryPosition,
}

impl BackfillRequest {
    /// The last entry this request reads (`None`: nothing to read).
    pub fn end(&self) -> Option<EntryPosition> {
        let last = self.ledgers.iter().rev().find_map(|l| {
            Some(EntryPosition {
                ledger_id: l.ledger_id,
                entry_id: l.index.last_entry_id()?,
            })
        })?;
        (last >= self.from).then_some(last)
    }
}

/// What a backfill delivers.
#[derive(Debug)]
pub enum BackfillEvent {
    /// Messages of one partition, in order, up to and including `last_entry`.
    Batch {
        /// The partition's slot.
        slot: usize,
        /// Messages read.
        messages: Vec<ReceivedMessage>,
        /// Entries that could not be decoded.
        malformed: Vec<MalformedEntry>,
        /// The last entry covered.
        last_entry: EntryPosition,
    },
    /// The partition's offloaded data is read.
    Done {
        /// The partition's slot.
        slot: usize,
    },
    /// Reading failed; the backfill of the partition stops.
    Failed {
        /// The partition's slot.
        slot: usize,
        /// Why.
        error: ConnectorError,
    },
}

/// The running backfill's tasks; dropping it stops them.
#[derive(Debug)]
pub struct BackfillHandle {
    _tasks: JoinSet<()>,
}

/// Starts reading every request's ledgers; events arrive on the returned channel.
pub fn spawn_backfill(
    store: Arc<dyn ObjectStore>,
    requests: Vec<BackfillRequest>,
    progress: Arc<BackfillProgress>,
) -> (mpsc::Receiver<BackfillEvent>, BackfillHandle) {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let permits = Arc::new(Semaphore::new(IO_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for request in requests {
        let plan = plan(&request);
        BackfillProgress::add(&progress.ledgers_total, plan.ledgers as u64);
        BackfillProgress::add(&progress.bytes_total, plan.bytes);
        BackfillProgress::add(&progress.partitions_active, 1);
        let (store, permits, tx, progress) =
            (store.clone(), permits.clone(), tx.clone(), progress.clone());
        tasks.spawn(async move {
            let slot = request.slot;
            let result = read_partition(store, request, plan, permits, &tx, &progress).await;
            progress
                .partitions_active
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let _ = match result {
                Ok(()) => tx.send(BackfillEvent::Done { slot }).await,
                Err(error) => tx.send(BackfillEvent::Failed { slot, error }).await,
            };
        });
    }
    (rx, BackfillHandle { _tasks: tasks })
}

/// One range GET of a block.
#[derive(Clone, Debug)]
struct RangeJob {
    ledger: usize,
    block: usize,
    start: u64,
    end: u64,
    first_of_block: bool,
    last_of_block: bool,
    last_of_ledger: bool,
}

/// One block to read, split into range GETs only as they are issued: the block's length
/// comes from the index, and a corrupt index claiming an exabyte must not make a plan of
/// billions of ranges up front.
#[derive(Clone, Copy, Debug)]
struct BlockSpan {
    ledger: usize,
    block: usize,
    start: u64,
    end: u64,
    last_of_ledger: bool,
}

impl BlockSpan {
    /// The block's range GETs, of at most [`RANGE_SIZE`] bytes each.
    fn ranges(self) -> impl Iterator<Item = RangeJob> {
        let mut at = self.start;
        std::iter::from_fn(move || {
            if at >= self.end {
                return None;
            }
            let next = at.saturating_add(RANGE_SIZE).min(self.end);
            let job = RangeJob {
                ledger: self.ledger,
                block: self.block,
                start: at,
                end: next,
                first_of_block: at == self.start,
                last_of_block: next == self.end,
                last_of_ledger: next == self.end && self.last_of_ledger,
            };
            at = next;
            Some(job)
        })
    }
}

struct Plan {
    blocks: Vec<BlockSpan>,
    /// First entry to return, per ledger of the request.
    skip_before: Vec<u64>,
    ledgers: usize,
    bytes: u64,
}

/// The range GETs that read `request`: from the block holding its first entry (floor
/// lookup in the index) to the end of its last ledger.
fn plan(request: &BackfillRequest) -> Plan {
    let mut blocks = Vec::new();
    let mut skip_before = Vec::new();
    let (mut ledgers, mut bytes) = (0, 0);
    for (l, ledger) in request.ledgers.iter().enumerate() {
        let skip = if ledger.ledger_id == request.from.ledger_id {
            request.from.entry_id
        } else {
            0
        };
        skip_before.push(skip);
        let index = &ledger.index;
        let readable = ledger.ledger_id >= request.from.ledger_id
            && index.last_entry_id().is_some_and(|last| last >= skip);
        if !readable {
            continue;
        }
        ledgers += 1;
        let first_block = index.block_of(skip);
        let last_block = index.blocks.len() - 1;
        for block in first_block..=last_block {
            let (start, end) = index.block_range(block);
            bytes = u64::saturating_add(bytes, end - start);
            blocks.push(BlockSpan {
                ledger: l,
                block,
                start,
                end,
                last_of_ledger: block == last_block,
            });
        }
    }
    Plan {
        blocks,
        skip_before,
        ledgers,
        bytes,
    }
}

async fn fetch(
    store: Arc<dyn ObjectStore>,
    object: Path,
    job: RangeJob,
    permits: Arc<Semaphore>,
) -> Result<(RangeJob, Bytes)> {
    let _permit = permits.acquire_owned().await;
    let bytes = store
        .get_range(&object, job.start..job.end)
        .await
        .map_err(|e| {
            TieredError::new(
                object.as_ref(),
                job.start,
                format!("range GET {}..{}: {e}", job.start, job.end),
            )
        })?;
    let wanted = job.end - job.start;
    if bytes.len() as u64 != wanted {
        return Err(TieredError::new(
            object.as_ref(),
            job.start + bytes.len() as u64,
            format!(
                "object is truncated: a range GET of {wanted} bytes returned {}; the index says \
                 the data object is longer",
                bytes.len()
            ),
        )
        .into());
    }
    Ok((job, bytes))
}

/// An entry's messages, or a chunk to assemble, or why it cannot be read.
enum DecodedEntry {
    Messages(Vec<ReceivedMessage>),
    Chunk(u64, Box<ParsedEntry>),
    Malformed(u64, String),
}

struct Decoded {
    entries: Vec<DecodedEntry>,
    last_entry: EntryPosition,
}

fn decode(
    entries: Vec<RawEntry>,
    object: &str,
    ledger_id: u64,
    partition: PartitionIndex,
    topic: &Arc<str>,
) -> Decoded {
    let last = entries.last().map_or(0, |e| e.entry_id);
    let decoded = entries
        .into_iter()
        .map(|raw| {
            let id = MessageId::new(ledger_id, raw.entry_id, partition);
            let at = |reason: String| {
                DecodedEntry::Malformed(
                    raw.entry_id,
                    TieredError::new(object, raw.offset, reason).to_string(),
                )
            };
            match parse_entry(raw.bytes) {
                Err(reason) => at(reason),
                Ok(entry) if is_chunk(&entry) => DecodedEntry::Chunk(raw.entry_id, Box::new(entry)),
                Ok(entry) => match messages_of_entry(entry, id, topic, 0) {
                    Ok(messages) => DecodedEntry::Messages(messages),
                    Err(reason) => at(reason),
                },
            }
        })
        .collect();
    Decoded {
        entries: decoded,
        last_entry: EntryPosition {
            ledger_id,
            entry_id: last,
        },
    }
}

async fn read_partition(
    store: Arc<dyn ObjectStore>,
    request: BackfillRequest,
    plan: Plan,
    permits: Arc<Semaphore>,
    tx: &mpsc::Sender<BackfillEvent>,
    progress: &BackfillProgress,
) -> Result<()> {
    let ledgers = Arc::new(request.ledgers.clone());
    let objects: Vec<Path> = ledgers.iter().map(|l| l.data_object.clone()).collect();
    let mut fetches = futures::stream::iter(plan.blocks.into_iter().flat_map(BlockSpan::ranges))
        .map(|job| {
            let object = objects[job.ledger].clone();
            // Spawned, so GETs progress while this task frames, decodes and waits to send.
            tokio::spawn(fetch(store.clone(), object, job, permits.clone()))
        })
        .buffered(FETCH_AHEAD);
    let mut decodes = FuturesOrdered::new();
    let mut scanner: Option<BlockScanner> = None;
    // The entry id the next block must start at (continuity across blocks).
    let mut next_entry: Option<u64> = None;
    let mut chunks = ChunkAssembler::default();
    while let Some(joined) = fetches.next().await {
        let (job, bytes) = joined.map_err(|e| ConnectorError::Io(std::io::Error::other(e)))??;
        BackfillProgress::add(&progress.bytes_read, bytes.len() as u64);
        let ledger = &ledgers[job.ledger];
        let index = &ledger.index;
        let object: Arc<str> = Arc::from(ledger.data_object.as_ref());
        if job.first_of_block {
            let first = index.blocks[job.block].first_entry_id;
            if let Some(expected) = next_entry
                && expected != first
            {
                return Err(TieredError::new(
                    &object,
                    job.start,
                    format!(
                        "the index starts this block at entry {first}, the previous block ended \
                         before entry {expected}"
                    ),
                )
                .into());
            }
            scanner = Some(BlockScanner::new(
                object.clone(),
                index.block_range(job.block),
                index.data_header_length,
                first,
                plan.skip_before[job.ledger],
            ));
        }
        let Some(active) = scanner.as_mut() else {
            return Err(
                TieredError::new(&object, job.start, "range outside a block".into()).into(),
            );
        };
        let mut entries = Vec::new();
        active.feed(bytes, &mut entries)?;
        if job.last_of_block
            && let Some(done) = scanner.take()
        {
            let next = done.finish()?;
            next_entry = Some(next);
            if job.last_of_ledger {
                let expected = index.last_entry_id().map_or(0, |l| l + 1);
                if next != expected {
                    return Err(TieredError::new(
                        &object,
                        job.end,
                        format!(
                            "data ends before entry {next}, the index says the ledger's last \
                             entry is {}",
                            expected.saturating_sub(1)
                        ),
                    )
                    .into());
                }
                next_entry = None;
            }
        }
        for group in decode_groups(entries) {
            let (topic, ledger_id, partition) =
                (request.topic.clone(), ledger.ledger_id, request.partition);
            let object = object.clone();
            decodes.push_back(tokio::task::spawn_blocking(move || {
                decode(group, &object, ledger_id, partition, &topic)
            }));
            while decodes.len() > DECODE_AHEAD {
                if let Some(done) = decodes.next().await {
                    let done = done.map_err(|e| ConnectorError::Io(std::io::Error::other(e)))?;
                    deliver(done, &request, &mut chunks, tx, progress).await?;
                }
            }
        }
        if job.last_of_ledger {
            while let Some(done) = decodes.next().await {
                let done = done.map_err(|e| ConnectorError::Io(std::io::Error::other(e)))?;
                deliver(done, &request, &mut chunks, tx, progress).await?;
            }
            BackfillProgress::add(&progress.ledgers_done, 1);
        }
    }
    while let Some(done) = decodes.next().await {
        let done = done.map_err(|e| ConnectorError::Io(std::io::Error::other(e)))?;
        deliver(done, &request, &mut chunks, tx, progress).await?;
    }
    Ok(())
}

/// Splits framed entries into groups of about [`DECODE_GROUP_BYTES`], in order.
fn decode_groups(entries: Vec<RawEntry>) -> Vec<Vec<RawEntry>> {
    let mut groups = Vec::new();
    let mut group = Vec::new();
    let mut bytes = 0;
    for entry in entries {
        bytes += entry.bytes.len();
        group.push(entry);
        if bytes >= DECODE_GROUP_BYTES {
            groups.push(std::mem::take(&mut group));
            bytes = 0;
        }
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

/// Sends decoded entries on, assembling chunked messages in order.
async fn deliver(
    decoded: Decoded,
    request: &BackfillRequest,
    chunks: &mut ChunkAssembler,
    tx: &mpsc::Sender<BackfillEvent>,
    progress: &BackfillProgress,
) -> Result<()> {
    let mut messages = Vec::new();
    let mut malformed = Vec::new();
    let ledger_id = decoded.last_entry.ledger_id;
    let id = |entry_id| MessageId::new(ledger_id, entry_id, request.partition);
    for entry in decoded.entries {
        match entry {
            DecodedEntry::Messages(m) => messages.extend(m),
            DecodedEntry::Malformed(entry_id, reason) => malformed.push(MalformedEntry {
                topic: request.topic.clone(),
                id: id(entry_id),
                reason,
            }),
            DecodedEntry::Chunk(entry_id, chunk) => {
                let assembled = chunks.add(*chunk).and_then(|whole| match whole {
                    None => Ok(Vec::new()),
                    Some(whole) => messages_of_entry(whole, id(entry_id), &request.topic, 0),
                });
                match assembled {
                    Ok(m) => messages.extend(m),
                    Err(reason) => malformed.push(MalformedEntry {
                        topic: request.topic.clone(),
                        id: id(entry_id),
                        reason,
                    }),
                }
            }
        }
    }
    BackfillProgress::add(&progress.messages, messages.len() as u64);
    // Batches end at entry boundaries, so a batch's `last_entry` is wholly delivered.
    let mut batch = Vec::new();
    let mut rest = messages.into_iter().peekable();
    while let Some(m) = rest.next() {
        let entry = m.id.entry();
        batch.push(m);
        let more = rest.peek().map(|n| n.id.entry());
        if batch.len() >= BATCH_MESSAGES && more.is_some_and(|n| n != entry) {
            send(
                tx,
                request.slot,
                std::mem::take(&mut batch),
                Vec::new(),
                entry,
            )
            .await?;
        }
    }
    send(tx, request.slot, batch, malformed, decoded.last_entry).await
}

async fn send(
    tx: &mpsc::Sender<BackfillEvent>,
    slot: usize,
    messages: Vec<ReceivedMessage>,
    malformed: Vec<MalformedEntry>,
    last_entry: EntryPosition,
) -> Result<()> {
    let event = BackfillEvent::Batch {
        slot,
        messages,
        malformed,
        last_entry,
    };
    tx.send(event)
        .await
        .map_err(|_| ConnectorError::Io(std::io::Error::other("the backfill's reader went away")))
}
