//! Jobs whose graph has several inputs or several outputs, end to end: a UNION ALL of two
//! partitioned topics into one, and a statement set of two INSERTs over one topic, which reads
//! it once. The official Python client produces the input and reads the outputs; the expected
//! outputs are computed from the input.

use std::collections::BTreeMap;
use std::time::Duration;

use magnetar::{Engine, EngineConfig, JobState, StatementOutput};
use magnetar_tests::*;
use serde_json::{Value, json};

/// `n` events `{"user_id", "amount"}` with keys, deterministic.
fn events(n: usize, salt: u64) -> Vec<(Option<String>, String)> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ salt;
    (0..n)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let user = format!("u{}", (state >> 33) % 40);
            let amount = (state >> 17) % 100;
            (
                Some(user.clone()),
                json!({"user_id": user, "amount": amount, "seq": i}).to_string(),
            )
        })
        .collect()
}

/// Multiset of the JSON values in `topic`, as the official client reads it.
fn read(url: &str, topic: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in python_read_all(url, topic) {
        let v: Value = serde_json::from_str(&m.value).expect("JSON output");
        *out.entry(v.to_string()).or_default() += 1;
    }
    out
}

fn count(rows: &BTreeMap<String, usize>) -> usize {
    rows.values().sum()
}

/// The expected output rows (as `json!` values' text) of `events` through `f`.
fn expect(
    events: &[(Option<String>, String)],
    mut f: impl FnMut(&Value) -> Option<Value>,
) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (_, value) in events {
        let v: Value = serde_json::from_str(value).expect("input");
        if let Some(row) = f(&v) {
            *out.entry(row.to_string()).or_default() += 1;
        }
    }
    out
}

async fn stop(engine: &Engine, name: &str) {
    let info = tokio::time::timeout(Duration::from_secs(60), engine.stop_job(name))
        .await
        .expect("the job stops")
        .expect("stop");
    assert_eq!(info.state, JobState::Stopped, "{info:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_union_all_of_two_partitioned_topics_writes_every_row_of_both() {
    let web = unique_topic("union-web");
    let app = unique_topic("union-app");
    let output = unique_topic("union-out");
    let broker = TestBroker::start_partitioned(&[(&web, 3), (&app, 2)]).await;
    let url = broker.service_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let web_events = events(3_000, 1);
    let app_events = events(2_000, 2);
    python_produce_file(
        &url,
        &web,
        &write_messages_file(dir.path(), &web_events),
        true,
    );
    python_produce_file(
        &url,
        &app,
        &write_messages_file(dir.path(), &app_events),
        true,
    );

    let engine = Engine::new(EngineConfig::with_service_url(&url));
    engine
        .execute(&format!(
            "CREATE TABLE web (user_id STRING, amount BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{web}');
             CREATE TABLE app (user_id STRING, amount BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{app}');
             CREATE TABLE spends (src STRING, user_id STRING, amount BIGINT)
             WITH ('connector' = 'pulsar', 'topics' = '{output}', 'key.fields' = 'user_id');
             SET 'parallelism.default' = '2';
             SET 'pipeline.name' = 'union';
             INSERT INTO spends
             SELECT 'web', user_id, amount FROM web WHERE amount >= 50
             UNION ALL
             SELECT 'app', user_id, amount * 10 FROM app WHERE amount >= 50;"
        ))
        .await
        .expect("start the job");
    let mut want = expect(&web_events, |v| {
        (v["amount"].as_u64()? >= 50)
            .then(|| json!({"src": "web", "user_id": v["user_id"], "amount": v["amount"]}))
    });
    for (row, n) in expect(&app_events, |v| {
        let amount = v["amount"].as_u64()?;
        (amount >= 50)
            .then(|| json!({"src": "app", "user_id": v["user_id"], "amount": amount * 10}))
    }) {
        *want.entry(row).or_default() += n;
    }
    let total = count(&want);
    eventually(
        "every row of both topics is written",
        Duration::from_secs(60),
        || count(&read(&url, &output)) >= total,
    )
    .await;
    stop(&engine, "union").await;
    assert_eq!(read(&url, &output), want);
    let info = engine
        .jobs()
        .into_iter()
        .find(|j| j.name.as_deref() == Some("union"))
        .expect("the job");
    assert_eq!(info.messages_read, 5_000, "each input message read once");
    assert_eq!(info.parallelism, 2);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_set_writes_two_outputs_and_reads_their_shared_topic_once() {
    let clicks = unique_topic("set-clicks");
    let big = unique_topic("set-big");
    let small = unique_topic("set-small");
    let broker = TestBroker::start_partitioned(&[(&clicks, 4)]).await;
    let url = broker.service_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let input = events(4_000, 3);
    python_produce_file(
        &url,
        &clicks,
        &write_messages_file(dir.path(), &input),
        true,
    );

    let engine = Engine::new(EngineConfig::with_service_url(&url));
    let outputs = engine
        .execute(&format!(
            "CREATE TABLE clicks (user_id STRING, amount BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{clicks}');
             CREATE TABLE big (user_id STRING, amount BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{big}');
             CREATE TABLE small (user_id STRING) WITH ('connector' = 'pulsar', 'topics' = '{small}');
             SET 'parallelism.default' = '2';
             SET 'pipeline.name' = 'split';
             EXECUTE STATEMENT SET BEGIN
               INSERT INTO big SELECT user_id, amount FROM clicks WHERE amount >= 90;
               INSERT INTO small SELECT user_id FROM clicks WHERE amount < 5;
             END;"
        ))
        .await
        .expect("start the statement set");
    let Some(StatementOutput::JobStarted(job)) = outputs.last() else {
        panic!("a statement set starts one job: {outputs:?}");
    };
    assert_eq!(job.sink_table, "big, small");
    let want_big = expect(&input, |v| {
        (v["amount"].as_u64()? >= 90)
            .then(|| json!({"user_id": v["user_id"], "amount": v["amount"]}))
    });
    let want_small = expect(&input, |v| {
        (v["amount"].as_u64()? < 5).then(|| json!({"user_id": v["user_id"]}))
    });
    eventually("both outputs are complete", Duration::from_secs(60), || {
        count(&read(&url, &big)) >= count(&want_big)
            && count(&read(&url, &small)) >= count(&want_small)
    })
    .await;

    // One source node reads the topic (two instances share its four partitions), once.
    let tasks = engine
        .query(
            "SELECT node, kind, count(*) AS instances, sum(rows_in) AS rows_in
             FROM system.job_tasks WHERE name = 'split' AND kind = 'PulsarSource'
             GROUP BY node, kind",
        )
        .await
        .expect("system.job_tasks");
    let batches: Vec<_> = futures::StreamExt::collect::<Vec<_>>(tasks)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("rows");
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .expect("format")
        .to_string();
    assert!(
        text.contains("| source-clicks | PulsarSource | 2         | 4000    |"),
        "one source node, two instances, every message once:\n{text}"
    );
    stop(&engine, "split").await;
    assert_eq!(read(&url, &big), want_big);
    assert_eq!(read(&url, &small), want_small);
    let info = engine
        .jobs()
        .into_iter()
        .find(|j| j.name.as_deref() == Some("split"))
        .expect("the job");
    assert_eq!(info.messages_read, 4_000, "the shared topic is read once");
    engine.shutdown().await;
}
