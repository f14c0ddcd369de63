//! `magnetar -f` runs an INSERT INTO ... SELECT ... WHERE job; the official Python client
//! produces the input and reads the output; the expectation is computed from the input.

use std::time::Duration;

use magnetar_tests::clicks::{self, Click};
use magnetar_tests::*;
use serde_json::{Value, json};

const EVENTS: usize = 10_000;

/// What the job writes for a click that passes its filter (see `script`).
fn expected(clicks: &[Click]) -> Vec<(String, Value)> {
    let mut rows: Vec<(String, Value)> = clicks
        .iter()
        .filter(|c| c.dwell_ms < 1500 && c.url.starts_with("/checkout"))
        .map(|c| {
            (
                c.user_id.clone(),
                json!({
                    "user_id": c.user_id,
                    "url": c.url,
                    "dwell_ms": c.dwell_ms,
                    "country": c.country.as_ref().map(|x| x.to_uppercase()),
                    // arrow-json writes TIMESTAMP(3) in ISO 8601 form.
                    "ts": c.ts.replace(' ', "T"),
                }),
            )
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, a.1.to_string()).cmp(&(&b.0, b.1.to_string())));
    rows
}

fn script(url: &str, input: &str, output: &str, bounded: bool) -> String {
    let stop = if bounded {
        ",\n  'source.stop.at-message-id' = 'latest'"
    } else {
        ""
    };
    format!(
        "-- written by the e2e test
CREATE TABLE clicks (
  user_id STRING,
  url STRING,
  dwell_ms BIGINT,
  country STRING,
  ts TIMESTAMP(3)
) WITH (
  'connector' = 'pulsar',
  'topics' = '{input}',
  'service-url' = '{url}',
  'source.subscription-name' = 'e2e-job'{stop}
);
CREATE TABLE alerts (
  user_id STRING,
  url STRING,
  dwell_ms BIGINT,
  country STRING,
  ts TIMESTAMP(3)
) WITH (
  'connector' = 'pulsar',
  'topics' = '{output}',
  'service-url' = '{url}',
  'key.fields' = 'user_id'
);
INSERT INTO alerts
SELECT user_id, url, dwell_ms, upper(country), ts
FROM clicks
WHERE dwell_ms < 1500 AND url LIKE '/checkout%';
"
    )
}

/// Output messages as sorted `(key, value)`; also checks each key is the row's user_id.
fn actual(url: &str, topic: &str) -> Vec<(String, Value)> {
    let mut rows: Vec<(String, Value)> = python_read_all(url, topic)
        .into_iter()
        .map(|m| {
            let value: Value = serde_json::from_str(&m.value)
                .unwrap_or_else(|e| panic!("output is not JSON ({e}): {}", m.value));
            let key = m
                .key
                .unwrap_or_else(|| panic!("output message without a key: {}", m.value));
            assert_eq!(
                Some(key.as_str()),
                value["user_id"].as_str(),
                "key must be the row's user_id"
            );
            (key, value)
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, a.1.to_string()).cmp(&(&b.0, b.1.to_string())));
    rows
}

fn produce(url: &str, topic: &str, dir: &std::path::Path) -> Vec<Click> {
    let input = clicks::generate(EVENTS);
    let file = write_messages_file(dir, &clicks::as_messages(&input));
    python_produce_file(url, topic, &file, true);
    input
}

/// A broker, input and output topics, and the job's script in a temporary directory.
struct Setup {
    _broker: TestBroker,
    url: String,
    input_topic: String,
    output_topic: String,
    dir: tempfile::TempDir,
    script: String,
}

async fn setup(bounded: bool) -> Setup {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let (input_topic, output_topic) = (unique_topic("clicks"), unique_topic("alerts"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("job.sql");
    std::fs::write(&path, script(&url, &input_topic, &output_topic, bounded))
        .expect("write script");
    Setup {
        _broker: broker,
        url,
        input_topic,
        output_topic,
        script: path.to_string_lossy().into_owned(),
        dir,
    }
}

/// Checks that magnetar exited 0 and that its job reported `state`.
fn assert_job_ended(out: &std::process::Output, state: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "magnetar exited with {}:\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains(state),
        "the job reports it {state}:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bounded_insert_job_writes_exactly_the_filtered_rows() {
    let s = setup(true).await;
    let input = produce(&s.url, &s.input_topic, s.dir.path());
    let expected = expected(&input);
    assert!(
        expected.len() > 500,
        "the filter must keep a fair share ({})",
        expected.len()
    );
    let out = run_magnetar(
        &["--service-url", &s.url, "-f", &s.script],
        Duration::from_secs(180),
    )
    .await;
    assert_job_ended(&out, "finished");
    // The job has ended, so the output is final; the Python reader was seen (twice, in full
    // parallel runs) to stop after one message of it, so a short read is read again.
    let mut actual = actual(&s.url, &s.output_topic);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while actual.len() < expected.len() && std::time::Instant::now() < deadline {
        eprintln!(
            "read {} of {} rows; reading again",
            actual.len(),
            expected.len()
        );
        actual = self::actual(&s.url, &s.output_topic);
    }
    assert_eq!(
        actual.len(),
        expected.len(),
        "row count; the job said:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(actual, expected, "the exact multiset of output rows");
}

#[tokio::test(flavor = "multi_thread")]
async fn unbounded_insert_job_stops_cleanly_on_sigterm_without_loss_or_duplicates() {
    let s = setup(false).await;
    let child = spawn_magnetar(&["--service-url", &s.url, "-f", &s.script]);
    // The job subscribes from the earliest message, so producing after start-up is fine.
    let input = produce(&s.url, &s.input_topic, s.dir.path());
    let expected = expected(&input);
    eventually(
        "the job's output to reach the expected count",
        Duration::from_secs(120),
        || python_read_all(&s.url, &s.output_topic).len() >= expected.len(),
    )
    .await;
    terminate(&child);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("magnetar exits after SIGTERM")
        .expect("output");
    assert_job_ended(&out, "stopped");
    assert_eq!(
        actual(&s.url, &s.output_topic),
        expected,
        "no row lost, none duplicated"
    );
}
