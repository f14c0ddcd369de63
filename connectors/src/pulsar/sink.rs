//! Writing messages to a topic with pulsar-rs's producer (which works against pulsar-lite:
//! only its consumer side trips over checksum-less frames).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::FutureExt;
use futures::future::join_all;
use pulsar::producer::{Message as ProducerMessage, SendFuture};
use pulsar::routing_policy::{CustomRoutingPolicy, RoutingPolicy};
use std::time::Duration;

use pulsar::{ConnectionRetryOptions, Producer, ProducerOptions, Pulsar, TokioExecutor};

use super::topic::TopicName;
use crate::error::{ConnectorError, Result};
use crate::message_id::EntryPosition;
use crate::time::UnixMillis;

/// How messages of a partitioned topic are spread over its partitions (Flink's
/// `sink.topic-routing-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RoutingMode {
    /// Round robin over partitions.
    #[default]
    RoundRobin,
    /// By the hash of the message key (the Java client's `Murmur3_32Hash` scheme).
    MessageKeyHash,
}

/// Where and how to write.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// `pulsar://host:port`.
    pub service_url: String,
    /// The topic.
    pub topic: TopicName,
    /// Producer name; the broker makes one up when `None`.
    pub producer_name: Option<String>,
    /// Partition routing for partitioned topics.
    pub routing: RoutingMode,
    /// Messages per batch; 1 disables batching.
    pub batch_size: u32,
    /// The schema announced to the broker (typed consumers read by it), if any.
    pub schema: Option<pulsar::proto::Schema>,
    /// TLS settings and credentials.
    pub security: super::connection::ClientSecurity,
    /// How payloads (each message, or each batch) are compressed.
    pub compression: super::compression::PayloadCodec,
}

/// One message to write.
#[derive(Clone, Debug, Default)]
pub struct OutgoingMessage {
    /// Value bytes.
    pub payload: Vec<u8>,
    /// Message key.
    pub key: Option<String>,
    /// User properties.
    pub properties: HashMap<String, String>,
    /// Event time.
    pub event_time: Option<UnixMillis>,
    /// Delayed delivery: consumers of Shared subscriptions receive it at this time.
    pub deliver_at: Option<UnixMillis>,
}

/// A producer that keeps its send receipts until [`PulsarSink::flush`], and knows the last
/// entry the broker confirmed on each partition (a checkpoint's sink progress).
pub struct PulsarSink {
    _client: Pulsar<TokioExecutor>,
    producer: Producer<TokioExecutor>,
    topic: String,
    /// Partition topic names (the topic itself when it is not partitioned).
    partitions: Vec<String>,
    /// The partition the next message goes to; read by [`ChosenPartition`].
    chosen: Arc<AtomicUsize>,
    round_robin: usize,
    routing: RoutingMode,
    in_flight: VecDeque<(usize, SendFuture)>,
    /// Receipts taken off `in_flight` before the next flush (counted by it).
    reaped: usize,
    confirmed: Vec<Option<EntryPosition>>,
    batching: bool,
}

impl std::fmt::Debug for PulsarSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarSink")
            .field("topic", &self.topic)
            .finish()
    }
}

/// The sink picks each message's partition itself (so it knows where every receipt comes
/// from) and hands the choice to pulsar-rs through this policy.
struct ChosenPartition(Arc<AtomicUsize>);

impl CustomRoutingPolicy for ChosenPartition {
    fn route(&self, _message: &ProducerMessage, num_producers: usize) -> usize {
        self.0.load(Ordering::Relaxed) % num_producers.max(1)
    }
}

/// Partition of `key` among `partitions` under the `Murmur3_32Hash` scheme.
pub fn java_key_partition(key: &str, partitions: usize) -> usize {
    let hash = murmur3::murmur3_32(&mut key.as_bytes(), 0).unwrap_or(0) & 0x7fff_ffff;
    hash as usize % partitions.max(1)
}

impl PulsarSink {
    /// Connects a producer to the topic.
    pub async fn connect(config: SinkConfig) -> Result<PulsarSink> {
        let topic = config.topic.to_string();
        let fail = |reason: String| ConnectorError::Produce {
            topic: topic.clone(),
            reason,
        };
        // pulsar-rs retries an unreachable broker for about 40 s before it gives up; check
        // first, so that a wrong URL is reported at once and in the same words as for reads.
        let tls = &config.security.tls;
        if config.service_url.starts_with("pulsar+ssl://")
            && (tls.allow_insecure
                || !tls.hostname_verification
                || tls.client_certificate.is_some())
        {
            // pulsar-rs's rustls connector always verifies the host name and has no client
            // certificates: refuse rather than connect differently than asked.
            return Err(fail(
                "writing over TLS supports trusted certificates with hostname verification only; \
                 'pulsar.client.tlsAllowInsecureConnection', \
                 'pulsar.client.tlsHostnameVerificationEnable' = 'false' and client certificates \
                 (mTLS) apply to reading only"
                    .into(),
            ));
        }
        super::client::PulsarClient::connect(super::client::ClientConfig {
            security: config.security.clone(),
            ..super::client::ClientConfig::new(config.service_url.clone())
        })
        .await?;
        let mut builder = Pulsar::builder(config.service_url.clone(), TokioExecutor)
            .with_connection_retry_options(ConnectionRetryOptions {
                max_backoff: Duration::from_secs(5),
                ..Default::default()
            });
        if let Some(auth) = &config.security.auth {
            builder = builder.with_auth_provider(auth.to_pulsar_rs());
        }
        if let Some(file) = &tls.trust_certs_file {
            builder = builder
                .with_certificate_chain_file(file)
                .map_err(|e| fail(format!("cannot read '{}': {e}", file.display())))?;
        }
        let client = builder.build().await.map_err(|e| {
            fail(format!(
                "cannot connect to {}: {e}",
                crate::redact::url(&config.service_url)
            ))
        })?;
        let batching = config.batch_size > 1;
        let chosen = Arc::new(AtomicUsize::new(0));
        let options = ProducerOptions {
            batch_size: batching.then_some(config.batch_size),
            routing_policy: Some(RoutingPolicy::Custom(Arc::new(ChosenPartition(
                chosen.clone(),
            )))),
            schema: config.schema.clone(),
            compression: config.compression.producer_compression(),
            // Wait for room when the connection's send queue is full, rather than fail the
            // message with SlowDown (seen writing a few hundred unbatched messages at once).
            block_queue_if_full: true,
            ..Default::default()
        };
        let mut builder = client
            .producer()
            .with_topic(topic.clone())
            .with_options(options);
        if let Some(name) = &config.producer_name {
            builder = builder.with_name(name.clone());
        }
        let producer = builder
            .build()
            .await
            .map_err(|e| fail(format!("cannot create a producer: {e}")))?;
        let partitions = producer
            .partitions()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| vec![topic.clone()]);
        Ok(PulsarSink {
            _client: client,
            producer,
            topic,
            confirmed: vec![None; partitions.len()],
            partitions,
            chosen,
            round_robin: 0,
            routing: config.routing,
            in_flight: VecDeque::new(),
            reaped: 0,
            batching,
        })
    }

    /// The topic written to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Each partition topic with the last entry the broker confirmed on it (through the
    /// last [`Self::flush`]); `None` where nothing was confirmed yet.
    pub fn confirmed(&self) -> Vec<(String, Option<EntryPosition>)> {
        self.partitions
            .iter()
            .cloned()
            .zip(self.confirmed.iter().copied())
            .collect()
    }

    /// Takes `entries` (partition topic → entry, such as the topic's end when a job starts)
    /// as confirmed where nothing later was.
    pub fn assume_confirmed(&mut self, entries: &HashMap<String, EntryPosition>) {
        for (name, slot) in self.partitions.iter().zip(self.confirmed.iter_mut()) {
            if let Some(entry) = entries.get(name)
                && slot.is_none_or(|s| s < *entry)
            {
                *slot = Some(*entry);
            }
        }
    }

    /// Round robin over partitions, or the key's hash (round robin for keyless messages).
    fn partition_for(&mut self, key: Option<&str>) -> usize {
        let n = self.partitions.len().max(1);
        match (self.routing, key) {
            (RoutingMode::MessageKeyHash, Some(key)) => java_key_partition(key, n),
            _ => {
                self.round_robin = self.round_robin.wrapping_add(1);
                self.round_robin % n
            }
        }
    }

    /// Queues a message; its receipt is awaited by [`Self::flush`].
    pub async fn send(&mut self, message: OutgoingMessage) -> Result<()> {
        let partition = self.partition_for(message.key.as_deref());
        self.chosen.store(partition, Ordering::Relaxed);
        let m = ProducerMessage {
            payload: message.payload,
            properties: message.properties,
            partition_key: message.key,
            event_time: message.event_time.map(|t| t.0),
            deliver_at_time: message.deliver_at.and_then(|t| i64::try_from(t.0).ok()),
            ..Default::default()
        };
        let receipt =
            self.producer
                .send_non_blocking(m)
                .await
                .map_err(|e| ConnectorError::Produce {
                    topic: self.topic.clone(),
                    reason: e.to_string(),
                })?;
        self.in_flight.push_back((partition, receipt));
        if self.in_flight.len() >= Self::REAP_AT {
            self.reap_ready()?;
        }
        Ok(())
    }

    /// Receipts kept before the ones already answered are taken off: flushes may be minutes
    /// apart (a job flushes at its checkpoints).
    const REAP_AT: usize = 8192;

    /// Takes the receipts the broker has already answered off the front of the queue.
    fn reap_ready(&mut self) -> Result<()> {
        while let Some((partition, mut receipt)) = self.in_flight.pop_front() {
            match (&mut receipt).now_or_never() {
                Some(result) => {
                    self.record(partition, result)?;
                    self.reaped += 1;
                }
                None => {
                    self.in_flight.push_front((partition, receipt));
                    break;
                }
            }
        }
        Ok(())
    }

    /// Checks one receipt and remembers the entry it confirms.
    fn record(
        &mut self,
        partition: usize,
        result: std::result::Result<pulsar::proto::CommandSendReceipt, pulsar::Error>,
    ) -> Result<()> {
        let receipt = result.map_err(|e| ConnectorError::Produce {
            topic: self.topic.clone(),
            reason: e.to_string(),
        })?;
        if let (Some(id), Some(slot)) = (receipt.message_id, self.confirmed.get_mut(partition)) {
            let entry = EntryPosition {
                ledger_id: id.ledger_id,
                entry_id: id.entry_id,
            };
            if slot.is_none_or(|s| s < entry) {
                *slot = Some(entry);
            }
        }
        Ok(())
    }

    /// Sends any open batch and waits until the broker has confirmed every queued message.
    /// Returns how many were confirmed.
    pub async fn flush(&mut self) -> Result<usize> {
        if self.batching {
            self.producer
                .send_batch()
                .await
                .map_err(|e| ConnectorError::Produce {
                    topic: self.topic.clone(),
                    reason: e.to_string(),
                })?;
        }
        let (partitions, receipts): (Vec<usize>, Vec<SendFuture>) =
            std::mem::take(&mut self.in_flight).into_iter().unzip();
        let count = receipts.len() + std::mem::take(&mut self.reaped);
        for (partition, result) in partitions.into_iter().zip(join_all(receipts).await) {
            self.record(partition, result)?;
        }
        Ok(count)
    }

    /// Flushes and closes the producer.
    pub async fn close(mut self) -> Result<()> {
        self.flush().await?;
        self.producer
            .close()
            .await
            .map_err(|e| ConnectorError::Produce {
                topic: self.topic.clone(),
                reason: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_stable_and_spreads_keys() {
        let mut used = [false; 4];
        for i in 0..200 {
            let key = format!("user-{i}");
            let p = java_key_partition(&key, 4);
            assert_eq!(p, java_key_partition(&key, 4));
            used[p] = true;
        }
        assert!(used.iter().all(|u| *u), "200 keys reach every partition");
    }
}
