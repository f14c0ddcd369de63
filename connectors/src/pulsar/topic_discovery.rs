//! Topics and partitions that appear while a source runs (a topic pattern's new matches, and
//! partitions added to a partitioned topic it reads): listed every interval, and subscribed by
//! a task of their own, so that a read cut short by the engine never leaves a subscription half
//! made.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::client::PulsarClient;
use super::connection::RoutedEvent;
use super::consumer::{Consumer, InitialPosition, SubscribeOptions};
use super::sink::java_key_partition;
use super::source::PartitionShare;
use super::topic::TopicName;
use crate::error::Result;

/// Lists the topics a source should read now (all of them, old and new).
pub type TopicLister = Arc<dyn Fn() -> BoxFuture<'static, Result<Vec<TopicName>>> + Send + Sync>;

/// How a source finds new topics: Flink's `pulsar.source.partitionDiscoveryIntervalMs`.
#[derive(Clone)]
pub struct TopicDiscovery {
    /// How often to list.
    pub every: Duration,
    /// The listing.
    pub list: TopicLister,
}

impl std::fmt::Debug for TopicDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicDiscovery")
            .field("every", &self.every)
            .finish()
    }
}

/// A partition subscribed by discovery, for the source to add as a slot.
pub(crate) struct Discovered {
    /// The partition (or non-partitioned topic).
    pub topic: TopicName,
    /// Its consumer, already subscribed and routing to the source's slot `slot`.
    pub consumer: Consumer,
}

/// What one listing found: the partitions this reader now reads, and every new partition
/// (also those that belong to other readers).
#[derive(Default)]
pub(crate) struct Found {
    pub partitions: Vec<Discovered>,
    pub seen: Vec<TopicName>,
}

/// What subscribing new partitions needs, from the source.
pub(crate) struct SubscribeContext {
    pub client: Arc<PulsarClient>,
    pub options: SubscribeOptions,
    pub events: mpsc::UnboundedSender<RoutedEvent>,
    pub share: Option<PartitionShare>,
}

/// The discovery state of a running source.
pub(crate) struct DiscoveryState {
    config: TopicDiscovery,
    /// Partitions (or non-partitioned topics) already read, by this reader or another.
    known: HashSet<TopicName>,
    next_at: tokio::time::Instant,
    running: Option<oneshot::Receiver<Result<Found>>>,
}

impl DiscoveryState {
    /// Discovery over `config`, `known` being every partition read from the start.
    pub fn new(config: TopicDiscovery, known: &[TopicName]) -> Self {
        Self {
            next_at: tokio::time::Instant::now() + config.every,
            config,
            known: known.iter().cloned().collect(),
            running: None,
        }
    }

    /// Waits until a listing is due (and starts it) or a running one has finished: its new
    /// partitions, or `None` when there was nothing to take yet.
    pub async fn next(
        &mut self,
        context: &SubscribeContext,
        first_slot: usize,
    ) -> Option<Result<Found>> {
        match &mut self.running {
            Some(rx) => {
                let result = rx.await.unwrap_or_else(|_| Ok(Found::default()));
                self.running = None;
                self.next_at = tokio::time::Instant::now() + self.config.every;
                if let Ok(found) = &result {
                    self.known.extend(found.seen.iter().cloned());
                }
                Some(result)
            }
            None => {
                tokio::time::sleep_until(self.next_at).await;
                self.start(context, first_slot);
                None
            }
        }
    }

    fn start(&mut self, context: &SubscribeContext, first_slot: usize) {
        let (tx, rx) = oneshot::channel();
        let list = self.config.list.clone();
        let known = self.known.clone();
        let client = context.client.clone();
        // A topic or partition that appears while the read runs is read from its start, as
        // Flink reads discovered splits: with `latest`, what was written to it before the
        // listing found it would be lost.
        let options = SubscribeOptions {
            initial_position: InitialPosition::Earliest,
            ..context.options.clone()
        };
        let events = context.events.clone();
        let share = context.share;
        tokio::spawn(async move {
            let mut found = Found::default();
            let result = async {
                // New topics, and new partitions of known ones (a partitioned topic grown).
                for topic in list().await? {
                    // One topic that cannot be looked up (deleted since, not authorised) does
                    // not hold back the others; it is tried again at the next listing.
                    let targets = match client.partition_targets(&topic).await {
                        Ok(targets) => targets,
                        Err(e) => {
                            tracing::warn!(%topic, error = %e, "cannot look up a listed topic's partitions; trying again at the next listing");
                            continue;
                        }
                    };
                    for (partition_topic, partition) in targets {
                        if known.contains(&partition_topic) {
                            continue;
                        }
                        found.seen.push(partition_topic.clone());
                        // New partitions go to readers by a hash of their name: every reader
                        // decides alike without knowing the others.
                        if share.is_some_and(|s| {
                            java_key_partition(&partition_topic.to_string(), s.readers) != s.reader
                        }) {
                            continue;
                        }
                        let consumer = Consumer::subscribe(
                            client.clone(),
                            partition_topic.clone(),
                            partition,
                            first_slot + found.partitions.len(),
                            events.clone(),
                            options.clone(),
                        )
                        .await?;
                        found.partitions.push(Discovered {
                            topic: partition_topic,
                            consumer,
                        });
                    }
                }
                Ok(())
            }
            .await;
            let result = match result {
                Ok(()) => Ok(found),
                Err(e) => {
                    // Nothing half done: what was subscribed is closed, and listed again later.
                    for d in found.partitions {
                        let _ = d.consumer.close().await;
                    }
                    Err(e)
                }
            };
            if let Err(Ok(unclaimed)) = tx.send(result) {
                // The source is gone: leave no consumer registered behind it.
                for d in unclaimed.partitions {
                    let _ = d.consumer.close().await;
                }
            }
        });
        self.running = Some(rx);
    }
}
