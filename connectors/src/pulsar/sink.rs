//! Writing messages to a topic with pulsar-rs's producer (which works against pulsar-lite:
//! only its consumer side trips over checksum-less frames).

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::join_all;
use pulsar::producer::{Message as ProducerMessage, SendFuture};
use pulsar::routing_policy::{CustomRoutingPolicy, RoutingPolicy};
use std::time::Duration;

use pulsar::{ConnectionRetryOptions, Producer, ProducerOptions, Pulsar, TokioExecutor};

use super::topic::TopicName;
use crate::error::{ConnectorError, Result};
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
}

/// A producer that keeps its send receipts until [`PulsarSink::flush`].
pub struct PulsarSink {
    _client: Pulsar<TokioExecutor>,
    producer: Producer<TokioExecutor>,
    topic: String,
    in_flight: Vec<SendFuture>,
    batching: bool,
}

impl std::fmt::Debug for PulsarSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarSink")
            .field("topic", &self.topic)
            .finish()
    }
}

/// Key routing with the Java client's `Murmur3_32Hash` scheme: murmur3-32 of the key's
/// UTF-8 bytes (seed 0), sign bit cleared, modulo the partition count.
struct JavaKeyHash;

impl CustomRoutingPolicy for JavaKeyHash {
    fn route(&self, message: &ProducerMessage, num_producers: usize) -> usize {
        let Some(key) = &message.partition_key else {
            return rand::random_range(0..num_producers.max(1));
        };
        java_key_partition(key, num_producers)
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
        super::client::PulsarClient::connect(super::client::ClientConfig::new(
            config.service_url.clone(),
        ))
        .await?;
        let client = Pulsar::builder(config.service_url.clone(), TokioExecutor)
            .with_connection_retry_options(ConnectionRetryOptions {
                max_backoff: Duration::from_secs(5),
                ..Default::default()
            })
            .build()
            .await
            .map_err(|e| fail(format!("cannot connect to {}: {e}", config.service_url)))?;
        let batching = config.batch_size > 1;
        let options = ProducerOptions {
            batch_size: batching.then_some(config.batch_size),
            routing_policy: Some(match config.routing {
                RoutingMode::RoundRobin => RoutingPolicy::RoundRobin,
                RoutingMode::MessageKeyHash => RoutingPolicy::Custom(Arc::new(JavaKeyHash)),
            }),
            schema: config.schema.clone(),
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
        Ok(PulsarSink {
            _client: client,
            producer,
            topic,
            in_flight: Vec::new(),
            batching,
        })
    }

    /// The topic written to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues a message; its receipt is awaited by [`Self::flush`].
    pub async fn send(&mut self, message: OutgoingMessage) -> Result<()> {
        let m = ProducerMessage {
            payload: message.payload,
            properties: message.properties,
            partition_key: message.key,
            event_time: message.event_time.map(|t| t.0),
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
        self.in_flight.push(receipt);
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
        let receipts = std::mem::take(&mut self.in_flight);
        let count = receipts.len();
        for result in join_all(receipts).await {
            result.map_err(|e| ConnectorError::Produce {
                topic: self.topic.clone(),
                reason: e.to_string(),
            })?;
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
