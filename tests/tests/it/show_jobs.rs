//! What `SHOW JOBS` reports about a running job: input rate, backlog, watermark and its
//! lag, window state, last checkpoint.

use std::time::{Duration, SystemTime};

use magnetar::{Engine, EngineConfig, StatementOutput};
use magnetar_connectors::pulsar::{
    ClientConfig, PulsarClient, PulsarSource, SourceConfig, StopPosition, TopicName,
};
use magnetar_tests::clicks::format_ts;
use magnetar_tests::*;

/// 2025-11-24 10:00:00 UTC.
const T0_MS: u64 = 1_763_978_400_000;

fn events(range: std::ops::Range<u64>) -> Vec<(Option<String>, String)> {
    range
        .map(|i| {
            (
                None,
                format!(
                    r#"{{"user_id": "u{}", "ts": "{}"}}"#,
                    i % 5,
                    format_ts(T0_MS + i * 100)
                ),
            )
        })
        .collect()
}

/// The backlog is the entries between the last one read and the partition's end, as the
/// broker's GET_LAST_MESSAGE_ID says (Pulsar's `msgBacklog` counts entries as well).
#[tokio::test(flavor = "multi_thread")]
async fn the_backlog_counts_the_entries_not_read_yet() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let topic = unique_topic("backlog");
    let dir = tempfile::tempdir().expect("tempdir");
    // Unbatched: one message per entry.
    python_produce_file(
        &url,
        &topic,
        &write_messages_file(dir.path(), &events(0..100)),
        false,
    );
    let client = PulsarClient::connect(ClientConfig::new(url.clone()))
        .await
        .expect("connect");
    let mut source = PulsarSource::open(
        client,
        SourceConfig {
            subscription_name: Some("backlog".into()),
            stop: StopPosition::Never,
            receiver_queue_size: 10,
            ..SourceConfig::reading(vec![TopicName::parse(&topic).expect("topic")])
        },
    )
    .await
    .expect("open");
    let mut read = 0;
    while read < 30 {
        let chunk = source
            .next_chunk(30 - read)
            .await
            .expect("chunk")
            .expect("an unbounded read does not end");
        read += chunk.messages.len();
    }
    assert_eq!(read, 30);
    assert_eq!(source.backlog().await.expect("backlog"), Some(70));
    source.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn show_jobs_reports_rate_backlog_watermark_lag_state_and_checkpoint() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let input = unique_topic("jobs-in");
    let output = unique_topic("jobs-out");
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::new(EngineConfig {
        service_url: Some(url.clone()),
        data_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    });
    engine
        .execute(&format!(
            "CREATE TABLE clicks (user_id STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
               WITH ('connector' = 'pulsar', 'topics' = '{input}', 'source.subscription-name' = 'jobs');
             CREATE TABLE counts (window_start TIMESTAMP(3), n BIGINT)
               WITH ('connector' = 'pulsar', 'topics' = '{output}');
             SET 'execution.checkpointing.interval' = '500 ms';
             SET 'pipeline.name' = 'counter';
             INSERT INTO counts SELECT window_start, count(*) FROM
               TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND))
               GROUP BY window_start, window_end;"
        ))
        .await
        .expect("job starts");
    let started = SystemTime::now();
    let job = || {
        engine
            .jobs()
            .into_iter()
            .find(|j| j.name.as_deref() == Some("counter"))
            .expect("the job")
    };

    // Half the input; then a rate, which needs a sample older than the second half.
    python_produce_file(
        &url,
        &input,
        &write_messages_file(dir.path(), &events(0..500)),
        false,
    );
    eventually("500 messages read", Duration::from_secs(60), || {
        job().messages_read == 500
    })
    .await;
    eventually("a first rate", Duration::from_secs(10), || {
        job().input_rate.is_some()
    })
    .await;
    python_produce_file(
        &url,
        &input,
        &write_messages_file(dir.path(), &events(500..1000)),
        false,
    );
    eventually("1000 messages read", Duration::from_secs(60), || {
        job().messages_read == 1000
    })
    .await;
    let info = job();
    let rate = info.input_rate.expect("a rate once the job ran a while");
    assert!(
        rate > 0.0,
        "the second half arrived in the last ten seconds: {rate}"
    );

    // The last event is at T0 + 99.9 s: the watermark, years behind the wall clock.
    let last_event = (T0_MS + 999 * 100) as i64;
    eventually(
        "the watermark at the last event",
        Duration::from_secs(30),
        || job().watermark.is_some_and(|w| w.0.0 == last_event),
    )
    .await;
    // The broker says the subscription has read everything (asked every 2 s).
    eventually("a zero backlog", Duration::from_secs(30), || {
        job().backlog == Some(0)
    })
    .await;
    eventually("a checkpoint", Duration::from_secs(30), || {
        job().last_checkpoint.is_some()
    })
    .await;
    let info = job();
    // The window [T0 + 90 s, T0 + 100 s) is still open: its state is held.
    assert!(info.state_bytes > 0, "{info:?}");
    assert!(
        info.last_checkpoint_at.is_some_and(|t| t >= started),
        "{info:?}"
    );

    // SHOW JOBS prints them.
    let outputs = engine.execute("SHOW JOBS").await.expect("SHOW JOBS");
    let Some(StatementOutput::Table(batches)) = outputs.into_iter().next() else {
        panic!("SHOW JOBS prints a table");
    };
    let text = magnetar::arrow::util::pretty::pretty_format_batches(&batches)
        .expect("format")
        .to_string();
    let header = text.lines().nth(1).expect("header line");
    for column in [
        "input_rate",
        "backlog",
        "watermark_lag_s",
        "late",
        "state_bytes",
        "last_checkpoint",
        "last_checkpoint_at",
    ] {
        assert!(header.contains(column), "{column} missing from {header}");
    }
    let lag = engine
        .query("SELECT watermark_lag_s FROM system.jobs WHERE name = 'counter'")
        .await
        .expect("query");
    let batches: Vec<_> = futures::StreamExt::collect::<Vec<_>>(lag).await;
    let batch = batches.into_iter().next().expect("a batch").expect("rows");
    let lag_s = batch
        .column(0)
        .as_any()
        .downcast_ref::<magnetar::arrow::array::Float64Array>()
        .expect("float")
        .value(0);
    let expected_lag = (SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
        - last_event) as f64
        / 1000.0;
    assert!(
        (lag_s - expected_lag).abs() < 60.0,
        "lag {lag_s} vs {expected_lag}"
    );
    engine.stop_job("counter").await.expect("stop");
}
