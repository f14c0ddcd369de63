//! Reading a table's topics: one consumer per partition, merged into chunks of messages,
//! with start and stop positions, deduplication of redeliveries, and acknowledgement
//! tokens that the caller hands back once what it read is safely processed.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::chunks::{ChunkAssembler, is_chunk};
use super::client::PulsarClient;
use super::connection::{ConsumerEvent, RoutedEvent};
use super::consumer::{Consumer, InitialPosition, SubscribeOptions, SubscriptionType};
use super::entry::{ReceivedMessage, messages_of_entry, parse_entry};
use super::positions::{PositionKey, PositionStore};
use super::topic::TopicName;
use super::topic_discovery::{DiscoveryState, Found, SubscribeContext, TopicDiscovery};
use crate::error::{ConnectorError, Result};
use crate::message_id::{EntryPosition, MessageId};
use crate::tiered::{
    BackfillEvent, BackfillHandle, BackfillProgress, BackfillRequest, TieredStorage, spawn_backfill,
};
use crate::time::UnixMillis;

/// Where reading starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartPosition {
    /// The first message still stored (for a new subscription).
    Earliest,
    /// Only messages published after the subscription is created.
    Latest,
    /// From a message id (inclusive or not) on the partition it names.
    MessageId {
        /// The message id.
        id: MessageId,
        /// Whether the message itself is read.
        inclusive: bool,
    },
    /// From the first message published at or after this time.
    PublishTime(UnixMillis),
}

/// Where a bounded read stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopPosition {
    /// Unbounded.
    Never,
    /// The last message of each partition as of the moment reading starts.
    Latest,
    /// Stop before this message id (it is not read).
    AtMessageId(MessageId),
    /// Stop after this message id (it is read).
    AfterMessageId(MessageId),
    /// Stop before the first message published at or after this time.
    AtPublishTime(UnixMillis),
}

impl StopPosition {
    /// Whether reading ends by itself.
    pub fn is_bounded(&self) -> bool {
        !matches!(self, StopPosition::Never)
    }
}

/// What to read and how to subscribe.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    /// Topics (partitioned topics are expanded to their partitions).
    pub topics: Vec<TopicName>,
    /// Durable subscription name; `None` reads through a private, temporary subscription.
    pub subscription_name: Option<String>,
    /// Subscription type.
    pub subscription_type: SubscriptionType,
    /// Where reading starts.
    pub start: StartPosition,
    /// Where reading stops.
    pub stop: StopPosition,
    /// Messages each partition's consumer may have in flight.
    pub receiver_queue_size: u32,
    /// Consumer name; a unique one is made when `None`.
    pub consumer_name: Option<String>,
    /// Where acknowledged positions of durable subscriptions are remembered.
    pub positions: Option<Arc<dyn PositionStore>>,
    /// Per partition topic, the last entry already processed (a checkpoint's positions):
    /// reading continues after it whatever the subscription's cursor or start position say.
    pub resume: HashMap<String, EntryPosition>,
    /// Offloaded ledgers to read from object storage before the broker, if any.
    pub tiered: Option<TieredSource>,
    /// Which of the partitions this reader takes, when several read the table together.
    pub share: Option<PartitionShare>,
    /// Topics that appear later join the read (unbounded reads only).
    pub discovery: Option<TopicDiscovery>,
}

/// One of several readers of a table's partitions: numbering every partition of every
/// topic in order, this one takes those whose number modulo `readers` is `reader`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionShare {
    /// This reader.
    pub reader: usize,
    /// How many there are.
    pub readers: usize,
}

impl PartitionShare {
    /// Whether partition number `partition` is this reader's.
    pub fn owns(&self, partition: usize) -> bool {
        partition % self.readers.max(1) == self.reader
    }
}

impl SourceConfig {
    /// A read of `topics` from their earliest message to the last one present when it
    /// starts, through a temporary subscription; change fields to read otherwise.
    pub fn reading(topics: Vec<TopicName>) -> SourceConfig {
        SourceConfig {
            topics,
            subscription_name: None,
            subscription_type: SubscriptionType::Exclusive,
            start: StartPosition::Earliest,
            stop: StopPosition::Latest,
            receiver_queue_size: 1000,
            consumer_name: None,
            positions: None,
            resume: HashMap::new(),
            tiered: None,
            share: None,
            discovery: None,
        }
    }
}

/// Where a source finds offloaded ledgers, and where it reports backfill progress.
#[derive(Clone, Debug)]
pub struct TieredSource {
    /// The bucket (and how to find a topic's ledgers in it).
    pub storage: Arc<TieredStorage>,
    /// Progress counters, shared with whoever displays them.
    pub progress: Arc<BackfillProgress>,
}

/// A message that could not be split out of its entry (corrupt frame, bad checksum, ...).
#[derive(Debug, Clone)]
pub struct MalformedEntry {
    /// Topic (partition) name.
    pub topic: Arc<str>,
    /// The entry's id.
    pub id: MessageId,
    /// What was wrong.
    pub reason: String,
}

/// Messages read in one go.
#[derive(Debug, Default)]
pub struct SourceChunk {
    /// Messages in delivery order per partition.
    pub messages: Vec<ReceivedMessage>,
    /// The partition (slot) each message was read from, in step with `messages`.
    pub slots: Vec<usize>,
    /// Entries that could not be read; they count as consumed.
    pub malformed: Vec<MalformedEntry>,
    /// Redelivered messages that were dropped because they had been read already.
    pub duplicates_dropped: u64,
    /// How many of `messages` were read from tiered storage (the rest from the broker).
    pub from_tiered_storage: u64,
}

/// What to acknowledge for what was read up to some point; see [`PulsarSource::take_ack_token`].
#[derive(Debug, Default, Clone)]
pub struct AckToken {
    acks: Vec<(usize, SlotAck)>,
}

#[derive(Debug, Clone)]
enum SlotAck {
    Cumulative(EntryPosition),
    Individual(Vec<EntryPosition>),
}

/// The last position read on a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPosition {
    /// Topic (partition) name.
    pub topic: Arc<str>,
    /// The last message read, if any.
    pub last_read: Option<MessageId>,
}

/// Stop bound of one partition: messages before it are read, the partition ends on reaching it.
#[derive(Debug, Clone, Copy)]
struct StopBound {
    entry: EntryPosition,
    /// `None` means the whole entry.
    batch_index: Option<i32>,
    inclusive: bool,
}

impl StopBound {
    fn keeps(&self, id: &MessageId) -> bool {
        match id.entry().cmp(&self.entry) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => match self.batch_index {
                None => self.inclusive,
                Some(b) => match id.batch_index.cmp(&b) {
                    Ordering::Less => true,
                    Ordering::Equal => self.inclusive,
                    Ordering::Greater => false,
                },
            },
        }
    }

    fn reached_by(&self, entry: EntryPosition) -> bool {
        entry >= self.entry
    }
}

/// Remembers recently read entries on unordered subscriptions, to drop redeliveries.
#[derive(Debug, Default)]
struct RecentEntries {
    set: HashSet<EntryPosition>,
    order: VecDeque<EntryPosition>,
}

impl RecentEntries {
    /// Entries remembered per partition (about 2 MiB); redeliveries older than this are not
    /// recognised. Redeliveries concern unacknowledged, hence recent, entries.
    const CAPACITY: usize = 1 << 16;

    fn insert(&mut self, entry: EntryPosition) -> bool {
        if !self.set.insert(entry) {
            return false;
        }
        self.order.push_back(entry);
        if self.order.len() > Self::CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

struct Slot {
    consumer: Consumer,
    topic: Arc<str>,
    start_after: Option<(MessageId, bool)>,
    start_time: Option<UnixMillis>,
    stop: Option<StopBound>,
    stop_time: Option<UnixMillis>,
    finished: bool,
    last_read: Option<MessageId>,
    recent: RecentEntries,
    unacked: Vec<EntryPosition>,
    /// The broker closed the consumer; subscribe again before reading on.
    needs_resubscribe: bool,
    /// The broker stalled: seek to the last entry read and subscribe again.
    needs_reposition: bool,
    /// Stalls in a row since an entry beyond `last_read` arrived.
    stalls: u32,
    /// Key of this partition in the position store.
    position_key: Option<PositionKey>,
    /// Positioned by [`SourceConfig::resume`]; the start position does not apply.
    resumed: bool,
    /// Offloaded data is being read from object storage; the broker's messages wait.
    backfilling: bool,
    /// Broker messages that arrived while backfilling, handled once it ends.
    held: Vec<RoutedEvent>,
    /// Chunked messages being reassembled.
    chunks: ChunkAssembler,
}

impl Slot {
    /// A partition read by `consumer`, from where its subscription stands.
    fn new(consumer: Consumer, topic: &TopicName) -> Slot {
        Slot {
            consumer,
            topic: Arc::from(topic.to_string()),
            start_after: None,
            start_time: None,
            stop: None,
            stop_time: None,
            finished: false,
            last_read: None,
            stalls: 0,
            recent: RecentEntries::default(),
            unacked: Vec::new(),
            needs_resubscribe: false,
            needs_reposition: false,
            position_key: None,
            resumed: false,
            backfilling: false,
            held: Vec::new(),
            chunks: ChunkAssembler::default(),
        }
    }
}

/// Reads the partitions of a table's topics as one stream of message chunks.
pub struct PulsarSource {
    slots: Vec<Slot>,
    events: mpsc::UnboundedReceiver<RoutedEvent>,
    config: SourceConfig,
    temporary_subscription: bool,
    /// Set for `AtPublishTime` stops until the partitions' last ids were fetched after it.
    pending_time_stop: Option<UnixMillis>,
    /// The running backfill from tiered storage.
    backfill: Option<(mpsc::Receiver<BackfillEvent>, BackfillHandle)>,
    /// When the broker last delivered anything, for stall detection across reads.
    stall: StallWatch,
    /// New topics: how to subscribe them, and the discovery's state.
    discovery: Option<(SubscribeContext, DiscoveryState)>,
    /// Events of partitions discovery subscribed before their slots exist.
    early: Vec<RoutedEvent>,
}

impl std::fmt::Debug for PulsarSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarSource")
            .field("config", &self.config)
            .field("partitions", &self.slots.len())
            .finish()
    }
}

impl PulsarSource {
    /// Subscribes to every partition of every topic and positions them.
    pub async fn open(client: Arc<PulsarClient>, config: SourceConfig) -> Result<PulsarSource> {
        let temporary_subscription = config.subscription_name.is_none();
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let subscription = config
            .subscription_name
            .clone()
            .unwrap_or_else(|| format!("magnetar-reader-{}", &unique[..12]));
        let consumer_name = config
            .consumer_name
            .clone()
            .unwrap_or_else(|| format!("magnetar-{}", &unique[..12]));
        let initial_position = match config.start {
            StartPosition::Latest => InitialPosition::Latest,
            _ => InitialPosition::Earliest,
        };
        let options = SubscribeOptions {
            subscription,
            sub_type: config.subscription_type,
            durable: !temporary_subscription,
            initial_position,
            consumer_name,
            receiver_queue_size: config.receiver_queue_size.max(1),
        };

        let (tx, events) = mpsc::unbounded_channel();
        let mut slots: Vec<Slot> = Vec::new();
        let mut numbered = 0usize;
        // Every partition of the topics (also other readers'), for discovery to tell new ones.
        let mut all_partitions = Vec::new();
        for topic in &config.topics {
            for (partition_topic, partition) in client.partition_targets(topic).await? {
                all_partitions.push(partition_topic.clone());
                numbered += 1;
                if config.share.is_some_and(|s| !s.owns(numbered - 1)) {
                    continue;
                }
                let slot = slots.len();
                let subscribed = Consumer::subscribe(
                    client.clone(),
                    partition_topic.clone(),
                    partition,
                    slot,
                    tx.clone(),
                    options.clone(),
                )
                .await;
                let consumer = match subscribed {
                    Ok(c) => c,
                    Err(e) => {
                        // Leave nothing subscribed behind (an Exclusive subscription would stay
                        // taken).
                        for slot in &slots {
                            release(&slot.consumer, temporary_subscription).await;
                        }
                        return Err(e);
                    }
                };
                slots.push(Slot::new(consumer, &partition_topic));
            }
        }
        let discovery = match &config.discovery {
            Some(d) if !config.stop.is_bounded() => Some((
                SubscribeContext {
                    client: client.clone(),
                    options: options.clone(),
                    events: tx.clone(),
                    share: config.share,
                },
                DiscoveryState::new(d.clone(), &all_partitions),
            )),
            _ => None,
        };
        let mut source = PulsarSource {
            slots,
            events,
            config,
            temporary_subscription,
            pending_time_stop: None,
            backfill: None,
            stall: StallWatch::new(STALL_TIMEOUT),
            discovery,
            early: Vec::new(),
        };
        let positioned = async {
            source
                .apply_remembered_positions(&client, &options.subscription)
                .await?;
            source.position_resumed().await?;
            source.position_start().await?;
            source.position_stop().await?;
            source.start_backfill().await
        }
        .await;
        match positioned {
            Ok(()) => Ok(source),
            Err(e) => {
                source.close().await;
                Err(e)
            }
        }
    }

    /// For durable, ordered subscriptions read from their cursor: nothing at or before the
    /// position Magnetar last acknowledged is read again (see [`super::positions`]).
    async fn apply_remembered_positions(
        &mut self,
        client: &PulsarClient,
        subscription: &str,
    ) -> Result<()> {
        let Some(store) = &self.config.positions else {
            return Ok(());
        };
        let resumes = matches!(
            self.config.start,
            StartPosition::Earliest | StartPosition::Latest
        );
        if self.temporary_subscription || !self.config.subscription_type.is_ordered() {
            return Ok(());
        }
        for slot in &mut self.slots {
            let key = PositionKey {
                service_url: client.config().service_url.clone(),
                subscription: subscription.to_string(),
                topic: slot.topic.to_string(),
            };
            if resumes && let Some(acked) = store.load(&key) {
                // A position beyond the topic's last message means the topic was deleted and
                // created again (or the broker's data was wiped): forget it, never skip data.
                let last = slot.consumer.last_message_id().await?.last;
                if last.is_some_and(|l| l.entry() >= acked) {
                    slot.last_read = Some(MessageId::new(
                        acked.ledger_id,
                        acked.entry_id,
                        slot.consumer.partition(),
                    ));
                } else {
                    tracing::warn!(topic = %slot.topic, %subscription, position = %acked, "the remembered position is beyond the topic's end; ignoring it");
                }
            }
            slot.position_key = Some(key);
        }
        Ok(())
    }

    /// Seeks the partitions named in [`SourceConfig::resume`] to their positions: the
    /// broker redelivers from there (even if the cursor went further or was lost), and
    /// nothing at or before the position is read again.
    async fn position_resumed(&mut self) -> Result<()> {
        for slot in &mut self.slots {
            let Some(entry) = self.config.resume.get(slot.topic.as_ref()).copied() else {
                continue;
            };
            let id = MessageId::new(entry.ledger_id, entry.entry_id, slot.consumer.partition());
            slot.consumer.seek_message_id(id).await?;
            slot.consumer.resubscribe().await?;
            slot.last_read = Some(id);
            // Every message of the entry, whatever its batch index, was processed.
            let whole_entry = MessageId {
                batch_index: i32::MAX,
                ..id
            };
            slot.start_after = Some((whole_entry, false));
            slot.resumed = true;
        }
        Ok(())
    }

    async fn position_start(&mut self) -> Result<()> {
        match self.config.start {
            StartPosition::Earliest => {}
            StartPosition::Latest => {
                // A new subscription starts after the partition's last message: make that a
                // position, so a checkpoint taken before anything arrives still holds one
                // (a restart through another new subscription would skip what came between).
                if self.temporary_subscription {
                    for slot in self.slots.iter_mut().filter(|s| !s.resumed) {
                        if let Some(last) = slot.consumer.last_message_id().await?.last {
                            slot.last_read = Some(MessageId {
                                batch_index: -1,
                                partition: slot.consumer.partition(),
                                ..last
                            });
                        }
                    }
                }
            }
            StartPosition::MessageId { id, inclusive } => {
                for slot in &mut self.slots {
                    if slot.consumer.partition() == id.partition && !slot.resumed {
                        let target = MessageId {
                            partition: slot.consumer.partition(),
                            ..id
                        };
                        slot.consumer.seek_message_id(target).await?;
                        // Real Pulsar closes the consumer after a seek and the client subscribes
                        // again; pulsar-lite only redelivers after a new subscribe. Do it here.
                        slot.consumer.resubscribe().await?;
                        // The filter makes the start exact whatever the broker redelivers.
                        slot.start_after = Some((target, inclusive));
                    }
                }
            }
            StartPosition::PublishTime(ms) => {
                for slot in self.slots.iter_mut().filter(|s| !s.resumed) {
                    slot.consumer.seek_publish_time(ms.0).await?;
                    slot.consumer.resubscribe().await?;
                    slot.start_time = Some(ms);
                }
            }
        }
        Ok(())
    }

    async fn position_stop(&mut self) -> Result<()> {
        match self.config.stop {
            StopPosition::Never => {}
            StopPosition::Latest => {
                for index in 0..self.slots.len() {
                    self.bound_at_latest(index).await?;
                }
            }
            StopPosition::AtMessageId(id) | StopPosition::AfterMessageId(id) => {
                let inclusive = matches!(self.config.stop, StopPosition::AfterMessageId(_));
                for index in 0..self.slots.len() {
                    if self.slots[index].consumer.partition() == id.partition {
                        let slot = &mut self.slots[index];
                        slot.stop = Some(StopBound {
                            entry: id.entry(),
                            batch_index: (id.batch_index >= 0).then_some(id.batch_index),
                            inclusive,
                        });
                    } else {
                        // A message id names one partition; the others are read to their end.
                        self.bound_at_latest(index).await?;
                    }
                }
            }
            StopPosition::AtPublishTime(ms) => {
                for slot in &mut self.slots {
                    slot.stop_time = Some(ms);
                }
                self.pending_time_stop = Some(ms);
                self.fetch_time_stop_bounds().await?;
            }
        }
        Ok(())
    }

    /// Bounds a partition at its last message as of now; finishes it if nothing is left.
    async fn bound_at_latest(&mut self, index: usize) -> Result<()> {
        let slot = &mut self.slots[index];
        let last = slot.consumer.last_message_id().await?;
        match last.last {
            None => slot.finished = true,
            Some(last_id) => {
                let bound = StopBound {
                    entry: last_id.entry(),
                    batch_index: None,
                    inclusive: true,
                };
                if last.mark_delete.is_some_and(|m| bound.reached_by(m))
                    || slot.last_read.is_some_and(|r| bound.reached_by(r.entry()))
                {
                    slot.finished = true;
                }
                slot.stop = Some(match slot.stop {
                    Some(existing) if existing.entry <= bound.entry => existing,
                    _ => bound,
                });
            }
        }
        Ok(())
    }

    /// For `AtPublishTime(t)`: once the clock has passed `t`, every later message is
    /// published after `t`, so each partition can also stop at its last message as of now.
    async fn fetch_time_stop_bounds(&mut self) -> Result<()> {
        let Some(t) = self.pending_time_stop else {
            return Ok(());
        };
        if UnixMillis::now() <= t {
            return Ok(());
        }
        for index in 0..self.slots.len() {
            if !self.slots[index].finished {
                self.bound_at_latest(index).await?;
            }
        }
        self.pending_time_stop = None;
        Ok(())
    }

    /// With tiered storage: finds each partition's offloaded ledgers after its start
    /// position, starts reading them from object storage, and moves the broker's
    /// subscription to the last offloaded entry, where reading continues afterwards.
    async fn start_backfill(&mut self) -> Result<()> {
        let Some(tiered) = self.config.tiered.clone() else {
            return Ok(());
        };
        let topics: Vec<TopicName> = self
            .slots
            .iter()
            .map(|s| s.consumer.topic().clone())
            .collect();
        let mut found = tiered.storage.offloaded_ledgers(&topics).await?;
        let mut requests = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            let partition = slot.consumer.partition();
            let Some(ledgers) = found.remove(slot.consumer.topic()) else {
                continue;
            };
            if slot.finished || ledgers.is_empty() {
                continue;
            }
            let from = match (slot.last_read, self.config.start) {
                (Some(read), _) => EntryPosition {
                    ledger_id: read.ledger_id,
                    entry_id: read.entry_id + 1,
                },
                (None, StartPosition::Latest) => continue,
                (None, StartPosition::MessageId { id, .. }) if id.partition == partition => {
                    id.entry()
                }
                (None, StartPosition::PublishTime(t)) => {
                    // A ledger is created before its first message is published: start at
                    // the last one created by `t`; the publish-time filter does the rest.
                    let created_by = |l: &&crate::tiered::OffloadedLedger| {
                        l.index.ledger.ctime.is_some_and(|c| c <= t.0 as i64)
                    };
                    let ledger_id = ledgers
                        .iter()
                        .rev()
                        .find(created_by)
                        .map_or(0, |l| l.ledger_id);
                    EntryPosition {
                        ledger_id,
                        entry_id: 0,
                    }
                }
                (None, _) => EntryPosition {
                    ledger_id: 0,
                    entry_id: 0,
                },
            };
            let request = BackfillRequest {
                slot: index,
                topic: slot.topic.clone(),
                partition,
                ledgers,
                from,
            };
            let Some(end) = request.end() else {
                continue;
            };
            if slot.stop.is_some_and(|s| s.entry < from) {
                continue;
            }
            // The broker's part starts after the last offloaded entry: in the next ledger
            // when the broker has one (seek goes to its first entry), else at that entry
            // (redelivered, and dropped as read).
            let next_ledger = tiered
                .storage
                .ledger_ids(slot.consumer.topic())
                .await?
                .into_iter()
                .find(|l| *l > end.ledger_id);
            let handover = match next_ledger {
                Some(ledger) => MessageId::new(ledger, 0, partition),
                None => MessageId::new(end.ledger_id, end.entry_id, partition),
            };
            slot.consumer.seek_message_id(handover).await?;
            slot.consumer.resubscribe().await?;
            slot.backfilling = true;
            tracing::info!(topic = %slot.topic, %from, until = %end, ledgers = request.ledgers.len(), "backfilling from tiered storage");
            requests.push(request);
        }
        if !requests.is_empty() {
            let store = tiered.storage.store().clone();
            self.backfill = Some(spawn_backfill(store, requests, tiered.progress.clone()));
        }
        Ok(())
    }

    /// Takes what a backfill delivered into `chunk`.
    fn handle_backfill(&mut self, event: BackfillEvent, chunk: &mut SourceChunk) -> Result<()> {
        match event {
            BackfillEvent::Batch {
                slot: index,
                messages,
                malformed,
                last_entry,
            } => {
                let Some(slot) = self.slots.get_mut(index) else {
                    return Ok(());
                };
                if slot.finished {
                    return Ok(());
                }
                for m in messages {
                    if slot.keeps(&m) {
                        chunk.messages.push(m);
                        chunk.slots.push(index);
                        chunk.from_tiered_storage += 1;
                    }
                }
                chunk.malformed.extend(malformed);
                slot.last_read = Some(MessageId::new(
                    last_entry.ledger_id,
                    last_entry.entry_id,
                    slot.consumer.partition(),
                ));
                slot.unacked.push(last_entry);
                if slot.stop.is_some_and(|b| b.reached_by(last_entry)) {
                    slot.finished = true;
                }
            }
            BackfillEvent::Done { slot: index } => {
                let Some(slot) = self.slots.get_mut(index) else {
                    return Ok(());
                };
                slot.backfilling = false;
                tracing::info!(topic = %slot.topic, "backfill from tiered storage done; reading from the broker");
                for held in std::mem::take(&mut slot.held) {
                    self.handle(held, chunk)?;
                }
            }
            BackfillEvent::Failed { error, .. } => return Err(error),
        }
        Ok(())
    }

    /// Whether every partition has reached its stop position.
    pub fn is_finished(&self) -> bool {
        self.config.stop.is_bounded() && self.slots.iter().all(|s| s.finished)
    }

    /// Number of partitions being read.
    pub fn partition_count(&self) -> usize {
        self.slots.len()
    }

    /// Whether partition `slot` has reached its stop position (or the topic was terminated).
    pub fn partition_finished(&self, slot: usize) -> bool {
        self.slots.get(slot).is_some_and(|s| s.finished)
    }

    /// Waits for messages and returns up to about `max` of them; `None` once a bounded read
    /// has reached its stop position on every partition.
    ///
    /// Cancel-safe: if the future is dropped, no message is lost (events are handled
    /// without awaiting, and deferred work is remembered in flags).
    pub async fn next_chunk(&mut self, max: usize) -> Result<Option<SourceChunk>> {
        let mut chunk = SourceChunk::default();
        loop {
            if self.is_finished() {
                return Ok(None);
            }
            self.maintain().await?;
            let bounded = self.config.stop.is_bounded() && self.pending_time_stop.is_none();
            let wait = self
                .pending_time_stop
                .map(|t| Duration::from_millis(t.0.saturating_sub(UnixMillis::now().0) + 1));
            let stall_deadline = self.stall.deadline();
            let first_new_slot = self.slots.len();
            let next = {
                let from_storage = self.backfill.as_mut().map(|(rx, _)| rx);
                let events = &mut self.events;
                let discovery = self.discovery.as_mut();
                tokio::select! {
                    biased;
                    found = async {
                        match discovery {
                            Some((context, state)) => state.next(context, first_new_slot).await,
                            None => std::future::pending().await,
                        }
                    } => Next::Discovered(found),
                    event = async {
                        match from_storage {
                            Some(rx) => rx.recv().await,
                            None => std::future::pending().await,
                        }
                    } => Next::Storage(event),
                    event = events.recv() => Next::Broker(event),
                    _ = async {
                        match wait {
                            Some(wait) => tokio::time::sleep(wait).await,
                            None => std::future::pending().await,
                        }
                    } => Next::Tick,
                    _ = async {
                        if bounded {
                            tokio::time::sleep_until(stall_deadline).await
                        } else {
                            std::future::pending().await
                        }
                    } => Next::Stalled,
                }
            };
            if matches!(next, Next::Broker(_) | Next::Storage(_)) {
                self.stall.progress();
            }
            let event = match next {
                Next::Broker(event) => event,
                Next::Tick | Next::Discovered(None) => continue,
                Next::Discovered(Some(found)) => {
                    self.add_discovered(found);
                    for event in std::mem::take(&mut self.early) {
                        self.handle(event, &mut chunk)?;
                    }
                    continue;
                }
                Next::Stalled => {
                    self.recover_stalled()?;
                    self.stall.progress();
                    continue;
                }
                Next::Storage(event) => {
                    match event {
                        Some(event) => self.handle_backfill(event, &mut chunk)?,
                        None => self.backfill = None,
                    }
                    if !chunk.messages.is_empty() || !chunk.malformed.is_empty() {
                        return Ok(Some(chunk));
                    }
                    continue;
                }
            };
            let Some(event) = event else {
                return Err(ConnectorError::Disconnected {
                    address: "all brokers".into(),
                    reason: "every consumer's connection is gone".into(),
                });
            };
            self.handle(event, &mut chunk)?;
            while chunk.messages.len() < max {
                match self.events.try_recv() {
                    Ok(event) => self.handle(event, &mut chunk)?,
                    Err(_) => break,
                }
            }
            if !chunk.messages.is_empty()
                || !chunk.malformed.is_empty()
                || chunk.duplicates_dropped > 0
            {
                return Ok(Some(chunk));
            }
        }
    }

    /// Deferred work: subscribe again where the broker closed a consumer, and fetch the
    /// stop bounds of an `AtPublishTime` stop once its time has passed.
    async fn maintain(&mut self) -> Result<()> {
        for slot in &mut self.slots {
            if slot.needs_reposition {
                // Redelivery from the last entry read, not from the (unacknowledged) cursor.
                if let Some(read) = slot.last_read {
                    let at = MessageId {
                        batch_index: -1,
                        ..read
                    };
                    if let Err(e) = slot.consumer.seek_message_id(at).await {
                        tracing::debug!(topic = %slot.topic, error = %e, "seek before resubscribing");
                    }
                }
                slot.needs_reposition = false;
                slot.needs_resubscribe = true;
            }
            if slot.needs_resubscribe {
                resubscribe_with_backoff(&mut slot.consumer).await?;
                slot.needs_resubscribe = false;
            }
        }
        self.fetch_time_stop_bounds().await
    }

    /// A bounded read whose partitions still have messages to deliver, but nothing arrived
    /// for [`STALL_TIMEOUT`]: the broker stopped dispatching (pulsar-lite does, now and
    /// then, under load). Those partitions are read again from their last entry; one that
    /// still gets nothing after [`MAX_STALLS`] tries in a row ends the read with an error
    /// (a broker that has not what it says it has would otherwise be asked forever).
    fn recover_stalled(&mut self) -> Result<()> {
        for slot in &mut self.slots {
            let waiting = !slot.finished
                && !slot.backfilling
                && slot
                    .stop
                    .is_some_and(|b| slot.last_read.is_none_or(|r| !b.reached_by(r.entry())));
            if waiting {
                slot.stalls += 1;
                if slot.stalls > MAX_STALLS {
                    return Err(ConnectorError::NoProgress {
                        topic: slot.topic.to_string(),
                        reason: format!(
                            "the broker delivered nothing after {} in {} tries of {STALL_TIMEOUT:?}, although the partition has messages up to {}",
                            slot.last_read.map_or_else(
                                || "the start".to_string(),
                                |r| format!("message {}", r.entry())
                            ),
                            MAX_STALLS,
                            slot.stop.map_or_else(String::new, |b| b.entry.to_string()),
                        ),
                    });
                }
                tracing::warn!(topic = %slot.topic, last_read = ?slot.last_read, "no message from the broker for {STALL_TIMEOUT:?} although the partition has more; reading again from the last entry read");
                slot.needs_reposition = true;
            }
        }
        Ok(())
    }

    fn handle(&mut self, routed: RoutedEvent, chunk: &mut SourceChunk) -> Result<()> {
        let Some(slot) = self.slots.get_mut(routed.slot) else {
            // A partition that discovery subscribed, whose slot is added when the listing
            // ends: its first messages wait for it.
            if self.discovery.is_some() {
                self.early.push(routed);
            }
            return Ok(());
        };
        if routed.consumer_id != slot.consumer.consumer_id() {
            // Left over from before a resubscription.
            return Ok(());
        }
        if slot.backfilling && matches!(routed.event, ConsumerEvent::Message { .. }) {
            // Taken without granting permits: the broker waits until the backfill is done.
            slot.held.push(routed);
            return Ok(());
        }
        match routed.event {
            ConsumerEvent::Message {
                id,
                redelivery_count,
                payload,
            } => {
                let entry_id = MessageId {
                    partition: slot.consumer.partition(),
                    batch_index: -1,
                    ..MessageId::from_proto(&id)
                };
                let parsed = parse_entry(payload);
                let permits = parsed
                    .as_ref()
                    .ok()
                    .and_then(|p| p.metadata.num_messages_in_batch)
                    .unwrap_or(1)
                    .max(1) as u32;
                slot.consumer.messages_taken(permits)?;
                if slot.finished {
                    return Ok(());
                }
                let fresh = if self.config.subscription_type.is_ordered() {
                    slot.last_read.is_none_or(|r| entry_id.entry() > r.entry())
                } else {
                    slot.recent.insert(entry_id.entry())
                };
                if !fresh {
                    chunk.duplicates_dropped += 1;
                    return Ok(());
                }
                let messages = parsed.and_then(|entry| {
                    if !is_chunk(&entry) {
                        return messages_of_entry(entry, entry_id, &slot.topic, redelivery_count);
                    }
                    match slot.chunks.add(entry)? {
                        None => Ok(Vec::new()),
                        Some(whole) => {
                            messages_of_entry(whole, entry_id, &slot.topic, redelivery_count)
                        }
                    }
                });
                match messages {
                    Err(reason) => chunk.malformed.push(MalformedEntry {
                        topic: slot.topic.clone(),
                        id: entry_id,
                        reason,
                    }),
                    Ok(messages) => {
                        for m in messages {
                            if slot.keeps(&m) {
                                chunk.messages.push(m);
                                chunk.slots.push(routed.slot);
                            }
                        }
                    }
                }
                if slot.last_read.is_none_or(|r| r.entry() < entry_id.entry()) {
                    slot.stalls = 0;
                }
                slot.last_read = Some(entry_id);
                if !(self.temporary_subscription && self.config.subscription_type.is_ordered()) {
                    slot.unacked.push(entry_id.entry());
                } else {
                    // A private subscription's acknowledgements mean nothing to anyone else
                    // (positions come from Magnetar's own state); acknowledging as it reads
                    // keeps pulsar-lite from redelivering an entry over and over, which it
                    // does to a consumer with a large unacknowledged backlog.
                    // (So nothing is left for an ack token to acknowledge again.)
                    slot.consumer.ack_cumulative(entry_id.entry())?;
                }
                if slot.stop.is_some_and(|b| b.reached_by(entry_id.entry())) {
                    slot.finished = true;
                }
            }
            ConsumerEvent::ActiveChange(active) => {
                tracing::debug!(topic = %slot.topic, active, "failover consumer state");
            }
            ConsumerEvent::EndOfTopic => slot.finished = true,
            ConsumerEvent::Closed(reason) => {
                tracing::info!(topic = %slot.topic, %reason, "consumer closed; subscribing again");
                slot.needs_resubscribe = true;
            }
        }
        Ok(())
    }

    /// Adds the partitions a topic discovery subscribed; a failed listing is logged and tried
    /// again at the next interval.
    fn add_discovered(&mut self, found: Result<Found>) {
        match found {
            Ok(found) => {
                for d in found.partitions {
                    tracing::info!(topic = %d.topic, "a new topic joins the read");
                    self.slots.push(Slot::new(d.consumer, &d.topic));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing the topics to read failed; trying again later")
            }
        }
    }

    /// Subscribes every partition again before the next read, as after a lost connection.
    /// The broker resends what was not acknowledged; repeats are dropped by position.
    pub fn resubscribe_all(&mut self) {
        for slot in &mut self.slots {
            slot.needs_resubscribe = true;
        }
    }

    /// Takes what was read since the last token; acknowledge it with [`Self::ack`] once the
    /// messages are safely processed.
    pub fn take_ack_token(&mut self) -> AckToken {
        let ordered = self.config.subscription_type.is_ordered();
        let mut token = AckToken::default();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if slot.unacked.is_empty() {
                continue;
            }
            let entries = std::mem::take(&mut slot.unacked);
            let ack = if ordered {
                match entries.iter().max() {
                    Some(last) => SlotAck::Cumulative(*last),
                    None => continue,
                }
            } else {
                SlotAck::Individual(entries)
            };
            token.acks.push((index, ack));
        }
        token
    }

    /// Acknowledges what a token covers.
    pub fn ack(&mut self, token: AckToken) -> Result<()> {
        for (index, ack) in token.acks {
            let Some(slot) = self.slots.get_mut(index) else {
                continue;
            };
            match ack {
                SlotAck::Cumulative(entry) => {
                    slot.consumer.ack_cumulative(entry)?;
                    if let (Some(store), Some(key)) = (&self.config.positions, &slot.position_key) {
                        store.store(key, entry);
                    }
                }
                SlotAck::Individual(entries) => slot.consumer.ack_individual(&entries)?,
            }
        }
        Ok(())
    }

    /// Each partition with the entry its read stops at (bounded reads; `None`: the
    /// partition was empty or is unbounded).
    pub fn stop_entries(&self) -> Vec<(Arc<str>, Option<EntryPosition>)> {
        self.slots
            .iter()
            .map(|s| (s.topic.clone(), s.stop.map(|b| b.entry)))
            .collect()
    }

    /// Entries not read yet, summed over the partitions the broker could tell about: from
    /// the last entry read (or the subscription's mark-delete position) to the partition's
    /// last entry. Entries, like Pulsar's `msgBacklog`. Across a ledger boundary only the
    /// last ledger's entries are counted (the broker does not say how many earlier ones
    /// hold). `None` when no partition's position is known.
    pub async fn backlog(&self) -> Result<Option<u64>> {
        let mut total = None;
        for slot in self.slots.iter().filter(|s| !s.finished) {
            let answer = slot.consumer.last_message_id().await?;
            let Some(last) = answer.last else {
                // An empty partition has no backlog.
                total = Some(total.unwrap_or(0));
                continue;
            };
            let read = slot
                .last_read
                .map(|id| (id.ledger_id, id.entry_id))
                .or(answer.mark_delete.map(|p| (p.ledger_id, p.entry_id)));
            let Some((ledger, entry)) = read else {
                continue;
            };
            let behind = match ledger.cmp(&last.ledger_id) {
                Ordering::Equal => last.entry_id.saturating_sub(entry),
                Ordering::Less => last.entry_id + 1,
                Ordering::Greater => 0,
            };
            total = Some(total.unwrap_or(0) + behind);
        }
        Ok(total)
    }

    /// The last message read on each partition.
    pub fn positions(&self) -> Vec<PartitionPosition> {
        self.slots
            .iter()
            .map(|s| PartitionPosition {
                topic: s.topic.clone(),
                last_read: s.last_read,
            })
            .collect()
    }

    /// Closes every consumer; a temporary subscription is deleted.
    pub async fn close(self) {
        if let Some(store) = &self.config.positions {
            store.flush();
        }
        for slot in &self.slots {
            release(&slot.consumer, self.temporary_subscription).await;
        }
    }
}

impl Slot {
    fn keeps(&self, m: &ReceivedMessage) -> bool {
        if let Some((start, inclusive)) = self.start_after {
            match m.id.cmp_position(&start) {
                Ordering::Less => return false,
                Ordering::Equal if !inclusive => return false,
                _ => {}
            }
        }
        if self.start_time.is_some_and(|t| m.publish_time < t) {
            return false;
        }
        if self.stop.is_some_and(|b| !b.keeps(&m.id)) {
            return false;
        }
        self.stop_time.is_none_or(|t| m.publish_time < t)
    }
}

/// What woke a read up.
enum Next {
    Discovered(Option<Result<Found>>),
    Storage(Option<BackfillEvent>),
    Broker(Option<RoutedEvent>),
    Tick,
    Stalled,
}

/// Silence after which a bounded read with messages still to come asks for them again.
const STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Stalls in a row a partition may have before a bounded read gives up on it.
const MAX_STALLS: u32 = 3;

/// The deadline of a broker's silence. It is kept by the source, not by one read: the engine
/// races each read against barriers and timers, and a timer restarted by every read would
/// never fire while a job takes checkpoints or flushes more often than the timeout.
#[derive(Debug, Clone, Copy)]
struct StallWatch {
    timeout: Duration,
    last_progress: tokio::time::Instant,
}

impl StallWatch {
    fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            last_progress: tokio::time::Instant::now(),
        }
    }

    /// Something arrived (or the read was restarted): the silence starts again.
    fn progress(&mut self) {
        self.last_progress = tokio::time::Instant::now();
    }

    /// When the silence counts as a stall.
    fn deadline(&self) -> tokio::time::Instant {
        self.last_progress + self.timeout
    }
}

/// Closes a consumer on the broker; deletes its subscription if it was temporary.
async fn release(consumer: &Consumer, temporary_subscription: bool) {
    let result = if temporary_subscription {
        consumer.unsubscribe().await
    } else {
        consumer.close().await
    };
    if let Err(e) = result {
        tracing::debug!(topic = %consumer.topic(), error = %e, "closing consumer");
    }
}

async fn resubscribe_with_backoff(consumer: &mut Consumer) -> Result<()> {
    let mut delay = Duration::from_millis(100);
    let mut attempts = 0;
    loop {
        match consumer.resubscribe().await {
            Ok(()) => return Ok(()),
            // Refused credentials or certificates stay refused: retrying only hammers the broker.
            Err(e) if attempts >= 8 || e.is_refusal() => return Err(e),
            Err(e) => {
                tracing::warn!(topic = %consumer.topic(), error = %e, "resubscribe failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                attempts += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine races every read against a flush or barrier timer; the stall deadline must
    /// still come, however often the read is dropped and started again.
    #[tokio::test]
    async fn a_stall_is_detected_although_every_read_is_cut_short() {
        let watch = StallWatch::new(Duration::from_millis(50));
        let mut reads = 0;
        let stalled = loop {
            reads += 1;
            if reads > 500 {
                break false;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(watch.deadline()) => break true,
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        };
        assert!(stalled, "no stall seen in {reads} cut-short reads");
        let mut moved = watch;
        moved.progress();
        assert!(
            moved.deadline() > watch.deadline(),
            "progress restarts the silence"
        );
    }

    fn id(l: u64, e: u64, b: i32) -> MessageId {
        MessageId {
            batch_index: b,
            ..MessageId::new(l, e, -1)
        }
    }

    #[test]
    fn stop_bounds_keep_the_right_messages() {
        let whole_entry = StopBound {
            entry: id(1, 5, -1).entry(),
            batch_index: None,
            inclusive: true,
        };
        assert!(whole_entry.keeps(&id(1, 5, 7)));
        assert!(!whole_entry.keeps(&id(1, 6, -1)));
        assert!(whole_entry.reached_by(id(1, 5, -1).entry()));
        assert!(!whole_entry.reached_by(id(1, 4, -1).entry()));

        let at = StopBound {
            entry: id(1, 5, -1).entry(),
            batch_index: Some(2),
            inclusive: false,
        };
        assert!(at.keeps(&id(1, 5, 1)));
        assert!(!at.keeps(&id(1, 5, 2)));
        let after = StopBound {
            inclusive: true,
            ..at
        };
        assert!(after.keeps(&id(1, 5, 2)));
        assert!(!after.keeps(&id(1, 5, 3)));
    }

    #[test]
    fn recent_entries_forget_the_oldest() {
        let mut recent = RecentEntries::default();
        let e = |i: u64| EntryPosition {
            ledger_id: 0,
            entry_id: i,
        };
        assert!(recent.insert(e(1)));
        assert!(!recent.insert(e(1)));
        for i in 2..(RecentEntries::CAPACITY as u64 + 2) {
            recent.insert(e(i));
        }
        assert!(recent.insert(e(1)), "the oldest entry was forgotten");
    }
}
