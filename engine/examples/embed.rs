//! Embedding Magnetar: start a pulsar-lite broker, write a few messages, run a bounded
//! aggregate and a continuous query, start and stop a job.
//!
//! Run with `cargo run -p magnetar --example embed` (after `./scripts/setup.sh`).

use std::time::Duration;

use futures::StreamExt;
use magnetar::arrow::util::pretty::pretty_format_batches;
use magnetar::connectors::pulsar::{
    LiteOptions, OutgoingMessage, PulsarLite, PulsarSink, RoutingMode, SinkConfig, TopicName,
};
use magnetar::{Engine, EngineConfig, StatementOutput};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("magnetar-embed-{}", std::process::id()));
    let broker = PulsarLite::start(LiteOptions {
        data_dir: dir.clone(),
        ..Default::default()
    })
    .await?;
    println!("broker at {}", broker.service_url());

    // Some input, written with the connectors crate's producer.
    let mut sink = PulsarSink::connect(SinkConfig {
        service_url: broker.service_url(),
        topic: TopicName::parse("readings")?,
        producer_name: None,
        routing: RoutingMode::RoundRobin,
        batch_size: 100,
        schema: None,
        security: Default::default(),
        compression: Default::default(),
    })
    .await?;
    for i in 0..1000 {
        let payload = format!(r#"{{"sensor": "s{}", "celsius": {}}}"#, i % 4, 15 + i % 20);
        sink.send(OutgoingMessage {
            payload: payload.into_bytes(),
            key: Some(format!("s{}", i % 4)),
            ..Default::default()
        })
        .await?;
    }
    sink.close().await?;

    let engine = Engine::new(EngineConfig::with_service_url(broker.service_url()));
    engine
        .execute(
            "CREATE TABLE readings (sensor STRING, celsius INT) WITH (
               'connector' = 'pulsar', 'topics' = 'readings', 'source.stop.at-message-id' = 'latest');
             CREATE TABLE live (sensor STRING, celsius INT) WITH (
               'connector' = 'pulsar', 'topics' = 'readings');
             CREATE TABLE hot (sensor STRING, celsius INT) WITH (
               'connector' = 'pulsar', 'topics' = 'hot-readings', 'key.fields' = 'sensor');",
        )
        .await?;

    // A bounded query: DataFusion runs it to the end of the topic.
    let rows: Vec<_> = engine
        .query("SELECT sensor, count(*) AS n, avg(celsius) AS mean FROM readings GROUP BY sensor ORDER BY sensor")
        .await?
        .collect()
        .await;
    let rows = rows.into_iter().collect::<Result<Vec<_>, _>>()?;
    println!("{}", pretty_format_batches(&rows)?);

    // A job: hot readings go to another topic until stopped.
    let outputs = engine
        .execute("INSERT INTO hot SELECT sensor, celsius FROM live WHERE celsius >= 30")
        .await?;
    if let Some(StatementOutput::JobStarted(job)) = outputs.last() {
        println!("job {} started", job.id);
    }

    // A continuous query: the first 5 hot readings as they arrive.
    let mut stream = engine
        .query("SELECT * FROM live WHERE celsius >= 33 LIMIT 5")
        .await?;
    while let Some(batch) = tokio::time::timeout(Duration::from_secs(30), stream.next()).await? {
        println!("{}", pretty_format_batches(&[batch?])?);
    }

    engine.shutdown().await;
    for job in engine.jobs() {
        println!(
            "job {} {}: wrote {} messages",
            job.id,
            job.state.name(),
            job.messages_written
        );
    }
    drop(broker);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
