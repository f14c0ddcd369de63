//! Hostile input does not take Magnetar down: a batch that lies about its size, event times at
//! the ends of `i64`, numbers that do not fit their columns. Each is a bad message for the
//! table's policy (fail naming topic and message id, or skip and count), and the job goes on.

use std::time::Duration;

use magnetar::{Engine, EngineConfig, JobState};
use magnetar_tests::*;

/// Clicks with event times at both ends of `i64` between two ordinary ones.
fn produce_extreme_times(url: &str, topic: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let lines: Vec<(Option<String>, String)> = [
        r#"{"who": "a", "ts": 1000}"#,
        r#"{"who": "b", "ts": 9223372036854775807}"#,
        r#"{"who": "c", "ts": -9223372036854775808}"#,
        r#"{"who": "d", "ts": 61000}"#,
    ]
    .iter()
    .map(|l| (None, l.to_string()))
    .collect();
    python_produce_file(url, topic, &write_messages_file(dir.path(), &lines), false);
}

const WINDOWED_JOB: &str = "INSERT INTO counts
    SELECT window_start, count(*) FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
    GROUP BY window_start, window_end";

async fn windowed_job(url: &str, topic: &str, policy: &str) -> Engine {
    let engine = Engine::new(EngineConfig::with_service_url(url));
    engine
        .execute(&format!(
            "CREATE TABLE clicks (who STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH (
               'connector' = 'pulsar', 'topics' = '{topic}', 'format' = 'json',
               'source.stop.at-message-id' = 'latest'{policy});
             CREATE TABLE counts (w TIMESTAMP(3), n BIGINT) WITH ('connector' = 'memory', 'scan.bounded' = 'true');
             {WINDOWED_JOB}"
        ))
        .await
        .expect("the job starts");
    engine
}

#[tokio::test(flavor = "multi_thread")]
async fn event_times_at_the_ends_of_i64_are_skipped_and_counted() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let topic = unique_topic("extreme-ts");
    produce_extreme_times(&url, &topic);
    let engine = windowed_job(&url, &topic, ", 'json.ignore-parse-errors' = 'true'").await;
    let jobs = tokio::time::timeout(Duration::from_secs(60), engine.wait_for_jobs())
        .await
        .expect("the bounded job ends");
    assert_eq!(jobs[0].state, JobState::Finished, "{:?}", jobs[0].state);
    assert_eq!(jobs[0].messages_skipped, 2);
    assert_eq!(
        query_count(&engine, "SELECT count(*) FROM counts").await,
        Ok(2),
        "one window for each ordinary click"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_time_at_the_end_of_i64_fails_the_job_naming_the_message() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let topic = unique_topic("extreme-ts-strict");
    produce_extreme_times(&url, &topic);
    let engine = windowed_job(&url, &topic, "").await;
    let jobs = tokio::time::timeout(Duration::from_secs(60), engine.wait_for_jobs())
        .await
        .expect("the bounded job ends");
    let JobState::Failed(error) = &jobs[0].state else {
        panic!("the job failed: {:?}", jobs[0].state);
    };
    assert!(
        error.contains("outside the range of TIMESTAMP(3)")
            && error.contains("9223372036854775807")
            && error.contains(&topic)
            && error.contains("column 'ts'"),
        "{error}"
    );
    assert!(!error.contains("end-of-stream"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fraction_read_into_a_bigint_is_refused_not_truncated() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let topic = unique_topic("fraction");
    let dir = tempfile::tempdir().expect("dir");
    let lines: Vec<(Option<String>, String)> = [r#"{"n": 1}"#, r#"{"n": 1.5}"#, r#"{"n": 2.0}"#]
        .iter()
        .map(|l| (None, l.to_string()))
        .collect();
    python_produce_file(
        &url,
        &topic,
        &write_messages_file(dir.path(), &lines),
        false,
    );
    let engine = Engine::new(EngineConfig::with_service_url(&url));
    engine
        .execute(&format!(
            "CREATE TABLE strict (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{topic}',
               'format' = 'json', 'source.stop.at-message-id' = 'latest');
             CREATE TABLE lenient (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{topic}',
               'format' = 'json', 'source.stop.at-message-id' = 'latest',
               'json.ignore-parse-errors' = 'true')"
        ))
        .await
        .expect("tables");
    let err = query_count(&engine, "SELECT sum(n) FROM strict")
        .await
        .expect_err("refused");
    assert!(
        err.contains("field 'n': 1.5 is not an integer its column can hold exactly")
            && err.contains(&topic),
        "{err}"
    );
    assert_eq!(
        query_count(&engine, "SELECT sum(n) FROM lenient").await,
        Ok(3),
        "1 + 2, the 1.5 skipped"
    );
}
