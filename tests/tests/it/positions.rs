//! Start and stop positions, by message id and by publish time, and partitioned topics.

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use futures::StreamExt;
use magnetar::{Engine, EngineConfig};
use magnetar_tests::*;

async fn xs(engine: &Engine, sql: &str) -> Vec<i64> {
    let batches: Vec<_> = engine.query(sql).await.expect("query").collect().await;
    let mut out: Vec<i64> = batches
        .into_iter()
        .flat_map(|b| {
            b.expect("batch")
                .column(0)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    out.sort_unstable();
    out
}

async fn bounded_table(engine: &Engine, name: &str, topic: &str, options: &str) {
    engine
        .execute(&format!(
            "CREATE TABLE {name} (x BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{topic}'{options})"
        ))
        .await
        .expect("create table");
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_between_message_ids_and_publish_times() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let topic = unique_topic("positions");
    let dir = tempfile::tempdir().expect("tempdir");
    const N: usize = 200;
    let msgs: Vec<(Option<String>, String)> =
        (0..N).map(|i| (None, format!("{{\"x\": {i}}}"))).collect();
    // Unbatched: every message has an id of its own.
    python_produce_file(&url, &topic, &write_messages_file(dir.path(), &msgs), false);
    let stored = python_read_all(&url, &topic);
    assert_eq!(stored.len(), N);
    let id = |i: usize| stored[i].magnetar_id();
    let engine = Engine::new(EngineConfig::with_service_url(url.clone()));

    let cases = [
        (
            "a",
            format!(
                ", 'source.start.message-id' = '{}', 'source.stop.at-message-id' = '{}'",
                id(10),
                id(20)
            ),
            (10..20).collect::<Vec<i64>>(),
        ),
        (
            "b",
            format!(
                ", 'source.start.message-id' = '{}', 'source.stop.after-message-id' = '{}'",
                id(10),
                id(20)
            ),
            (10..=20).collect(),
        ),
        (
            "c",
            format!(", 'source.stop.at-message-id' = '{}'", id(5)),
            (0..5).collect(),
        ),
        (
            "d",
            format!(
                ", 'source.start.message-id' = '{}', 'source.stop.at-message-id' = 'latest'",
                id(N - 3)
            ),
            ((N as i64 - 3)..N as i64).collect(),
        ),
    ];
    for (name, options, want) in cases {
        bounded_table(&engine, name, &topic, &options).await;
        assert_eq!(
            xs(&engine, &format!("SELECT x FROM {name}")).await,
            want,
            "table {name}: {options}"
        );
    }

    // Publish times: the expectation comes from the times the broker reported to Python.
    let t = stored[N / 2].publish_time;
    let from_t: Vec<i64> = (0..N)
        .filter(|&i| stored[i].publish_time >= t)
        .map(|i| i as i64)
        .collect();
    let before_t: Vec<i64> = (0..N)
        .filter(|&i| stored[i].publish_time < t)
        .map(|i| i as i64)
        .collect();
    bounded_table(
        &engine,
        "e",
        &topic,
        &format!(", 'source.start.publish-time' = '{t}', 'source.stop.at-message-id' = 'latest'"),
    )
    .await;
    assert_eq!(xs(&engine, "SELECT x FROM e").await, from_t);
    bounded_table(
        &engine,
        "f",
        &topic,
        &format!(", 'source.stop.at-publish-time' = '{t}'"),
    )
    .await;
    assert_eq!(xs(&engine, "SELECT x FROM f").await, before_t);
    // A stop time after the last message, already past: no later message will ever arrive to
    // show the end, so the read ends at the partitions' last message as of the clock passing it.
    let after_all = stored[N - 1].publish_time + 1;
    bounded_table(
        &engine,
        "g",
        &topic,
        &format!(", 'source.stop.at-publish-time' = '{after_all}'"),
    )
    .await;
    let all = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        xs(&engine, "SELECT x FROM g"),
    )
    .await
    .expect("the read ends");
    assert_eq!(all, (0..N as i64).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn partitioned_topics_are_read_and_written_across_partitions() {
    let broker = TestBroker::start_with(3).await;
    let url = broker.service_url();
    let (input, output) = (unique_topic("parts-in"), unique_topic("parts-out"));
    let dir = tempfile::tempdir().expect("tempdir");
    const N: i64 = 3_000;
    let msgs: Vec<(Option<String>, String)> = (0..N)
        .map(|i| (Some(format!("key-{}", i % 40)), format!("{{\"x\": {i}}}")))
        .collect();
    python_produce_file(&url, &input, &write_messages_file(dir.path(), &msgs), true);
    let engine = Engine::new(EngineConfig::with_service_url(url.clone()));
    engine
        .execute(&format!(
            "CREATE TABLE t (x BIGINT, tp STRING METADATA FROM 'topic', mid STRING METADATA FROM 'message_id')
               WITH ('connector' = 'pulsar', 'topics' = '{input}', 'source.stop.at-message-id' = 'latest');
             CREATE TABLE o (x BIGINT, k STRING METADATA FROM 'key')
               WITH ('connector' = 'pulsar', 'topics' = '{output}', 'sink.topic-routing-mode' = 'message-key-hash');"
        ))
        .await
        .expect("tables");
    assert_eq!(
        xs(&engine, "SELECT x FROM t").await,
        (0..N).collect::<Vec<_>>()
    );
    let batches: Vec<_> = engine
        .query("SELECT tp, count(*) FROM t GROUP BY tp ORDER BY tp")
        .await
        .expect("query")
        .collect()
        .await;
    let batch = batches.into_iter().next().expect("rows").expect("batch");
    assert_eq!(batch.num_rows(), 3, "rows came from three partitions");
    for r in 0..3 {
        assert_eq!(
            batch.column(0).as_string::<i32>().value(r),
            format!("{input}-partition-{r}")
        );
    }

    engine
        .execute("INSERT INTO o SELECT x, concat('k', CAST(x % 10 AS STRING)) FROM t")
        .await
        .expect("job");
    let jobs = engine.wait_for_jobs().await;
    assert_eq!(
        jobs[0].state,
        magnetar::JobState::Finished,
        "{:?}",
        jobs[0].state
    );
    let written = python_read_all(&url, &output);
    assert_eq!(written.len(), N as usize);
    // Key-hash routing: all messages of a key sit in one partition.
    let mut partition_of_key = std::collections::HashMap::new();
    for m in &written {
        let partition = m.magnetar_id().rsplit(':').next().map(str::to_string);
        let previous = partition_of_key.insert(m.key.clone(), partition.clone());
        assert!(
            previous.is_none() || previous == Some(partition),
            "key {:?} in two partitions",
            m.key
        );
    }
    assert_eq!(partition_of_key.len(), 10);
}
