//! What pulsar-lite and pulsar-rs 6.9.1 do that Magnetar works around; each test confirms a
//! fact written down in `connectors/README.md`. If one starts failing, the broker or client
//! changed: re-check the workaround.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use magnetar_connectors::pulsar::{
    AckToken, ClientConfig, ConsumerEvent, PulsarClient, PulsarSource, SourceConfig,
    SubscriptionType, TopicName, parse_entry,
};
use magnetar_tests::*;

fn messages(n: usize) -> Vec<(Option<String>, String)> {
    (0..n)
        .map(|i| (Some(format!("k{}", i % 7)), format!("{{\"n\":{i}}}")))
        .collect()
}

/// pulsar-lite dispatches MESSAGE frames without the optional `0x0e01` + CRC32C prefix and
/// stock pulsar-rs 6.9.1 rejects such frames, so its consumer never yields a message; our
/// consumer reads the same messages.
#[tokio::test(flavor = "multi_thread")]
async fn stock_pulsar_rs_cannot_consume_from_pulsar_lite_but_our_consumer_can() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let topic = unique_topic("facts-checksum");
    let dir = tempfile::tempdir().expect("tempdir");
    python_produce_file(
        &url,
        &topic,
        &write_messages_file(dir.path(), &messages(10)),
        false,
    );

    // Stock pulsar-rs: every delivery fails to decode; it yields no message.
    let pulsar = pulsar::Pulsar::builder(url.clone(), pulsar::TokioExecutor)
        .build()
        .await
        .expect("pulsar-rs connects");
    let mut consumer: pulsar::Consumer<Vec<u8>, _> = pulsar
        .consumer()
        .with_topic(&topic)
        .with_subscription("stock")
        .with_options(pulsar::ConsumerOptions {
            initial_position: pulsar::consumer::InitialPosition::Earliest,
            ..Default::default()
        })
        .build()
        .await
        .expect("pulsar-rs subscribes");
    // An absence can only be observed over a period: 10 messages are ready at once, so a
    // working consumer yields its first within milliseconds.
    let stock = tokio::time::timeout(Duration::from_secs(5), consumer.next()).await;
    let delivered = matches!(stock, Ok(Some(Ok(_))));
    assert!(
        !delivered,
        "pulsar-rs 6.9.1 consumed from pulsar-lite: the frame defect may be fixed; re-check connectors/README.md"
    );

    // Our consumer: all 10, and the frames indeed carry no checksum.
    let client = PulsarClient::connect(ClientConfig::new(url.clone()))
        .await
        .expect("connect");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let ours = magnetar_connectors::pulsar::Consumer::subscribe(
        client,
        TopicName::parse(&topic).expect("topic"),
        -1,
        0,
        tx,
        magnetar_connectors::pulsar::SubscribeOptions {
            subscription: "ours".into(),
            sub_type: SubscriptionType::Exclusive,
            durable: true,
            initial_position: magnetar_connectors::pulsar::InitialPosition::Earliest,
            consumer_name: "ours".into(),
            receiver_queue_size: 100,
        },
    )
    .await
    .expect("subscribe");
    let mut payloads = Vec::new();
    while payloads.len() < 10 {
        let event = rx.recv().await.expect("event");
        if let ConsumerEvent::Message { payload, .. } = event.event {
            let entry = parse_entry(payload).expect("parses without checksum");
            assert!(
                !entry.checksum_verified,
                "pulsar-lite started sending checksums"
            );
            payloads.push(entry.payload);
        }
    }
    assert_eq!(payloads[9].as_ref(), b"{\"n\":9}");
    ours.close().await.expect("close");
}

/// pulsar-lite never answers GET_SCHEMA: a client waits for its own timeout.
#[tokio::test(flavor = "multi_thread")]
async fn pulsar_lite_does_not_answer_get_schema() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let topic = unique_topic("facts-schema");
    let client = PulsarClient::connect(ClientConfig::new(url))
        .await
        .expect("connect");
    let conn = client
        .lookup(&TopicName::parse(&topic).expect("topic"))
        .await
        .expect("lookup");
    let request_id = conn.new_request_id();
    let answer = conn
        .request(
            "GET_SCHEMA",
            &topic,
            request_id,
            pulsar::proto::BaseCommand {
                r#type: pulsar::proto::base_command::Type::GetSchema as i32,
                get_schema: Some(pulsar::proto::CommandGetSchema {
                    request_id,
                    topic: topic.clone(),
                    schema_version: None,
                }),
                ..Default::default()
            },
            Some(Duration::from_secs(2)),
        )
        .await;
    let err = answer.expect_err("pulsar-lite answered GET_SCHEMA: re-check connectors/README.md");
    assert!(
        err.to_string().contains("did not answer GET_SCHEMA"),
        "{err}"
    );
    // The connection stays usable after an unanswered request.
    assert!(
        client
            .partitions(&TopicName::parse(&topic).expect("topic"))
            .await
            .is_ok()
    );
}

/// Redelivered entries never reach the output twice: a consumer that reads batched entries
/// without acknowledging them, subscribes again (as after a broker restart or a lost
/// connection) and is sent them again drops the repeats by position. pulsar-lite also
/// redelivers acknowledged messages on its own in long runs (see the notes); the same
/// position check covers that.
#[tokio::test(flavor = "multi_thread")]
async fn redelivered_entries_are_dropped_by_position() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let topic = unique_topic("facts-redelivery");
    let dir = tempfile::tempdir().expect("tempdir");
    python_produce_file(
        &url,
        &topic,
        &write_messages_file(dir.path(), &messages(3000)),
        true,
    );
    let client = PulsarClient::connect(ClientConfig::new(url.clone()))
        .await
        .expect("connect");
    let mut source = PulsarSource::open(
        client,
        SourceConfig {
            subscription_name: Some("redelivery".into()),
            receiver_queue_size: 500,
            ..SourceConfig::reading(vec![TopicName::parse(&topic).expect("topic")])
        },
    )
    .await
    .expect("open");
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut first = true;
    let mut duplicates = 0;
    while let Some(chunk) = source.next_chunk(200).await.expect("chunk") {
        duplicates += chunk.duplicates_dropped;
        for m in &chunk.messages {
            *seen
                .entry(String::from_utf8_lossy(&m.payload).into_owned())
                .or_default() += 1;
        }
        if first {
            // Nothing acknowledged yet: a fresh subscribe makes the broker resend from the start.
            first = false;
            source.resubscribe_all();
        }
    }
    let _: AckToken = source.take_ack_token();
    assert_eq!(seen.len(), 3000, "every message read");
    assert!(seen.values().all(|&n| n == 1), "no message read twice");
    assert!(
        duplicates > 0,
        "the broker did resend entries after the resubscribe"
    );
    source.close().await;
}
