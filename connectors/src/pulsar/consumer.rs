//! A consumer of one topic partition (or non-partitioned topic) on our own connection.

use std::sync::Arc;
use std::time::Duration;

use pulsar::proto::{
    self, BaseCommand,
    base_command::Type,
    command_ack::AckType,
    command_subscribe::{InitialPosition as ProtoInitialPosition, SubType},
};
use tokio::sync::mpsc;

use super::client::PulsarClient;
use super::connection::{Connection, RoutedEvent};
use super::topic::TopicName;
use crate::error::{ConnectorError, Result};
use crate::message_id::{EntryPosition, MessageId, PartitionIndex};

/// Pulsar's subscription types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubscriptionType {
    /// One consumer; a second one is refused.
    Exclusive,
    /// Messages spread over consumers, no order.
    Shared,
    /// One active consumer per partition, the others stand by.
    Failover,
    /// Messages spread over consumers by key; one key goes to one consumer.
    KeyShared,
}

impl SubscriptionType {
    /// Whether the broker delivers a partition in order to one consumer, so that
    /// cumulative acks and position-based deduplication apply.
    pub fn is_ordered(self) -> bool {
        matches!(
            self,
            SubscriptionType::Exclusive | SubscriptionType::Failover
        )
    }

    fn to_proto(self) -> SubType {
        match self {
            SubscriptionType::Exclusive => SubType::Exclusive,
            SubscriptionType::Shared => SubType::Shared,
            SubscriptionType::Failover => SubType::Failover,
            SubscriptionType::KeyShared => SubType::KeyShared,
        }
    }
}

/// Where a new subscription's cursor starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitialPosition {
    /// At the first message still stored.
    Earliest,
    /// After the last message.
    Latest,
}

/// How to subscribe.
#[derive(Clone, Debug)]
pub struct SubscribeOptions {
    /// Subscription name.
    pub subscription: String,
    /// Subscription type.
    pub sub_type: SubscriptionType,
    /// A durable subscription keeps its cursor when no consumer is connected.
    pub durable: bool,
    /// Where a subscription that does not exist yet starts.
    pub initial_position: InitialPosition,
    /// Consumer name shown by the broker.
    pub consumer_name: String,
    /// Messages the broker may push before we grant more permits.
    pub receiver_queue_size: u32,
}

/// Answer of GET_LAST_MESSAGE_ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastMessage {
    /// The last message's entry, `None` when the topic holds no message.
    pub last: Option<MessageId>,
    /// The subscription's mark-delete position, when the broker reports it.
    pub mark_delete: Option<EntryPosition>,
}

/// A subscribed consumer on one partition.
#[derive(Debug)]
pub struct Consumer {
    client: Arc<PulsarClient>,
    conn: Arc<Connection>,
    consumer_id: u64,
    topic: TopicName,
    partition: PartitionIndex,
    slot: usize,
    events: mpsc::UnboundedSender<RoutedEvent>,
    options: SubscribeOptions,
    /// Messages taken since permits were last granted.
    permits_owed: u32,
}

impl Consumer {
    /// Subscribes to `topic` and grants the initial flow permits; events go to `events`,
    /// tagged with `slot`.
    pub async fn subscribe(
        client: Arc<PulsarClient>,
        topic: TopicName,
        partition: PartitionIndex,
        slot: usize,
        events: mpsc::UnboundedSender<RoutedEvent>,
        options: SubscribeOptions,
    ) -> Result<Consumer> {
        let conn = client.lookup(&topic).await?;
        let consumer_id = subscribe_on(&conn, &topic, slot, &events, &options).await?;
        let consumer = Consumer {
            client,
            conn,
            consumer_id,
            topic,
            partition,
            slot,
            events,
            options,
            permits_owed: 0,
        };
        consumer.flow(consumer.options.receiver_queue_size)?;
        Ok(consumer)
    }

    /// Subscribes again after the broker closed this consumer or the connection broke.
    pub async fn resubscribe(&mut self) -> Result<()> {
        if self.conn.is_open() {
            // The broker may still hold the old consumer (an Exclusive subscription refuses a
            // second one; pulsar-lite then drops the whole connection): close it first.
            let _ = self.close().await;
        }
        self.conn.unregister_consumer(self.consumer_id);
        let conn = self.client.lookup(&self.topic).await?;
        self.consumer_id =
            subscribe_on(&conn, &self.topic, self.slot, &self.events, &self.options).await?;
        self.conn = conn;
        self.permits_owed = 0;
        self.flow(self.options.receiver_queue_size)
    }

    /// The consumer's id on its current connection (events carry it).
    pub fn consumer_id(&self) -> u64 {
        self.consumer_id
    }

    /// The topic partition's full name.
    pub fn topic(&self) -> &TopicName {
        &self.topic
    }

    /// The partition index (`-1` for a non-partitioned topic).
    pub fn partition(&self) -> PartitionIndex {
        self.partition
    }

    /// Records that `count` messages were taken; grants permits back in halves of the queue.
    pub fn messages_taken(&mut self, count: u32) -> Result<()> {
        self.permits_owed += count;
        let threshold = (self.options.receiver_queue_size / 2).max(1);
        if self.permits_owed >= threshold {
            let permits = std::mem::take(&mut self.permits_owed);
            self.flow(permits)?;
        }
        Ok(())
    }

    fn flow(&self, permits: u32) -> Result<()> {
        self.conn.send(BaseCommand {
            r#type: Type::Flow as i32,
            flow: Some(proto::CommandFlow {
                consumer_id: self.consumer_id,
                message_permits: permits,
            }),
            ..Default::default()
        })
    }

    /// Acknowledges everything up to and including `entry` (Exclusive and Failover only).
    pub fn ack_cumulative(&self, entry: EntryPosition) -> Result<()> {
        self.ack(
            AckType::Cumulative,
            vec![MessageId::new(entry.ledger_id, entry.entry_id, self.partition).to_proto()],
        )
    }

    /// Acknowledges whole entries one by one (Shared and Key_Shared).
    pub fn ack_individual(&self, entries: &[EntryPosition]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        self.ack(
            AckType::Individual,
            entries
                .iter()
                .map(|e| MessageId::new(e.ledger_id, e.entry_id, self.partition).to_proto())
                .collect(),
        )
    }

    fn ack(&self, ack_type: AckType, ids: Vec<proto::MessageIdData>) -> Result<()> {
        self.conn.send(BaseCommand {
            r#type: Type::Ack as i32,
            ack: Some(proto::CommandAck {
                consumer_id: self.consumer_id,
                ack_type: ack_type as i32,
                message_id: ids,
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    /// Asks the broker for the partition's last message (and our mark-delete position).
    pub async fn last_message_id(&self) -> Result<LastMessage> {
        let request_id = self.conn.new_request_id();
        let answer = self
            .conn
            .request(
                "GET_LAST_MESSAGE_ID",
                &self.topic.to_string(),
                request_id,
                BaseCommand {
                    r#type: Type::GetLastMessageId as i32,
                    get_last_message_id: Some(proto::CommandGetLastMessageId {
                        consumer_id: self.consumer_id,
                        request_id,
                    }),
                    ..Default::default()
                },
                None,
            )
            .await;
        let answer = match answer {
            // pulsar-lite answers an empty topic with an error where Pulsar answers with the
            // "no entry" position; both mean there is nothing to read.
            Err(ConnectorError::Broker { error, message, .. })
                if error == "UnknownError" && message.contains("no messages") =>
            {
                return Ok(LastMessage {
                    last: None,
                    mark_delete: None,
                });
            }
            other => other?,
        };
        let response = answer.get_last_message_id_response.ok_or_else(|| {
            ConnectorError::Frame("GET_LAST_MESSAGE_ID answered with another command".into())
        })?;
        let last = &response.last_message_id;
        // Java sends -1 (as uint64) for "no entry": an empty topic.
        let last = (last.ledger_id != u64::MAX && last.entry_id != u64::MAX)
            .then(|| MessageId::from_proto(last));
        let mark_delete = response
            .consumer_mark_delete_position
            .as_ref()
            .filter(|m| m.ledger_id != u64::MAX && m.entry_id != u64::MAX)
            .map(|m| MessageId::from_proto(m).entry());
        Ok(LastMessage { last, mark_delete })
    }

    /// Moves the subscription's cursor to `id` (the broker redelivers from there).
    pub async fn seek_message_id(&self, id: MessageId) -> Result<()> {
        self.seek(Some(id.to_proto()), None).await
    }

    /// Moves the subscription's cursor to the first message published at or after `ms`.
    pub async fn seek_publish_time(&self, ms: u64) -> Result<()> {
        self.seek(None, Some(ms)).await
    }

    async fn seek(&self, id: Option<proto::MessageIdData>, time: Option<u64>) -> Result<()> {
        let request_id = self.conn.new_request_id();
        self.conn
            .request(
                "SEEK",
                &self.topic.to_string(),
                request_id,
                BaseCommand {
                    r#type: Type::Seek as i32,
                    seek: Some(proto::CommandSeek {
                        consumer_id: self.consumer_id,
                        request_id,
                        message_id: id,
                        message_publish_time: time,
                    }),
                    ..Default::default()
                },
                None,
            )
            .await?;
        Ok(())
    }

    /// Closes the consumer on the broker; the subscription (if durable) stays.
    pub async fn close(&self) -> Result<()> {
        let request_id = self.conn.new_request_id();
        let result = self
            .conn
            .request(
                "CLOSE_CONSUMER",
                &self.topic.to_string(),
                request_id,
                BaseCommand {
                    r#type: Type::CloseConsumer as i32,
                    close_consumer: Some(proto::CommandCloseConsumer {
                        consumer_id: self.consumer_id,
                        request_id,
                    }),
                    ..Default::default()
                },
                Some(Duration::from_secs(5)),
            )
            .await;
        self.conn.unregister_consumer(self.consumer_id);
        result.map(|_| ())
    }

    /// Deletes the subscription (its consumer must be the only one).
    pub async fn unsubscribe(&self) -> Result<()> {
        let request_id = self.conn.new_request_id();
        let result = self
            .conn
            .request(
                "UNSUBSCRIBE",
                &self.topic.to_string(),
                request_id,
                BaseCommand {
                    r#type: Type::Unsubscribe as i32,
                    unsubscribe: Some(proto::CommandUnsubscribe {
                        consumer_id: self.consumer_id,
                        request_id,
                    }),
                    ..Default::default()
                },
                Some(Duration::from_secs(5)),
            )
            .await;
        self.conn.unregister_consumer(self.consumer_id);
        result.map(|_| ())
    }
}

async fn subscribe_on(
    conn: &Arc<Connection>,
    topic: &TopicName,
    slot: usize,
    events: &mpsc::UnboundedSender<RoutedEvent>,
    options: &SubscribeOptions,
) -> Result<u64> {
    let consumer_id = conn.register_consumer(slot, events.clone())?;
    let request_id = conn.new_request_id();
    let name = topic.to_string();
    let key_shared_meta =
        (options.sub_type == SubscriptionType::KeyShared).then(|| proto::KeySharedMeta {
            key_shared_mode: proto::KeySharedMode::AutoSplit as i32,
            ..Default::default()
        });
    let result = conn
        .request(
            "SUBSCRIBE",
            &name,
            request_id,
            BaseCommand {
                r#type: Type::Subscribe as i32,
                subscribe: Some(proto::CommandSubscribe {
                    topic: name.clone(),
                    subscription: options.subscription.clone(),
                    sub_type: options.sub_type.to_proto() as i32,
                    consumer_id,
                    request_id,
                    consumer_name: Some(options.consumer_name.clone()),
                    durable: Some(options.durable),
                    initial_position: Some(match options.initial_position {
                        InitialPosition::Earliest => ProtoInitialPosition::Earliest as i32,
                        InitialPosition::Latest => ProtoInitialPosition::Latest as i32,
                    }),
                    key_shared_meta,
                    ..Default::default()
                }),
                ..Default::default()
            },
            None,
        )
        .await;
    if let Err(e) = result {
        conn.unregister_consumer(consumer_id);
        return Err(e);
    }
    Ok(consumer_id)
}
