//! A windowed job end to end: the official Python client produces click events into a topic
//! of 4 partitions (keyed by user, so each partition has its own users and its own
//! watermark); `magnetar -f` runs a 1-minute tumbling count per user with HAVING and writes
//! alerts to a topic; the test computes the alerts from its own input and compares exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use datafusion::arrow::compute::kernels::cast_utils::string_to_timestamp_nanos;
use magnetar_tests::clicks::format_ts;
use magnetar_tests::*;
use serde_json::{Value, json};

const PARTITIONS: u32 = 4;
/// Alerts fire for more than this many clicks in a minute.
const THRESHOLD: usize = 20;
/// The watermark trails the newest event time by this much; input jitter stays below it,
/// so no row is late.
const WATERMARK_DELAY_S: u64 = 5;
/// 2025-11-24 10:00:17 UTC: windows do not start with the input.
const T0_MS: u64 = 1_763_978_417_000;
const MINUTES: u64 = 10;

/// One generated click.
struct Click {
    user: String,
    ts_ms: u64,
}

/// Deterministic traffic: 60 users clicking now and then, three bots clicking every two
/// seconds (one only for three minutes), and an "edge" user with exactly 21 clicks in one
/// minute and exactly 20 in the next (one alert, not two). Event times jitter by up to 3 s.
fn generate() -> Vec<Click> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |m: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % m
    };
    let mut clicks = Vec::new();
    let minute0 = T0_MS / 60_000 * 60_000 + 60_000;
    for second in 0..MINUTES * 60 {
        let base = T0_MS + second * 1000;
        let jittered = |user: String, next: &mut dyn FnMut(u64) -> u64| Click {
            user,
            ts_ms: base + next(3000),
        };
        for _ in 0..4 {
            let user = format!("user-{:02}", next(60));
            clicks.push(jittered(user, &mut next));
        }
        if second % 2 == 0 {
            clicks.push(jittered("bot-a".into(), &mut next));
            clicks.push(jittered("bot-b".into(), &mut next));
            if (120..300).contains(&second) {
                clicks.push(jittered("bot-c".into(), &mut next));
            }
        }
    }
    // Exact counts inside whole minutes, away from the edges so jitter cannot move them.
    for (minute, count) in [(4u64, 21u64), (5, 20)] {
        for i in 0..count {
            clicks.push(Click {
                user: "edge".into(),
                ts_ms: minute0 + minute * 60_000 + 5_000 + i * 2_000,
            });
        }
    }
    // Arrival order: by (jittered) second, then as generated, so rows arrive out of order.
    clicks.sort_by_key(|c| c.ts_ms / 1000 / 4);
    clicks
}

/// An alert: user, window start and end (ms since the epoch), clicks.
type Alert = (String, i64, i64, i64);

/// The alerts the job must write, sorted.
fn expected(clicks: &[Click]) -> Vec<Alert> {
    let mut counts: BTreeMap<(String, u64), i64> = BTreeMap::new();
    for c in clicks {
        *counts
            .entry((c.user.clone(), c.ts_ms / 60_000))
            .or_default() += 1;
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n as usize > THRESHOLD)
        .map(|((user, minute), n)| {
            let start = (minute * 60_000) as i64;
            (user, start, start + 60_000, n)
        })
        .collect()
}

fn script(url: &str, input: &str, output: &str) -> String {
    format!(
        "CREATE TABLE clicks (
  user_id STRING,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '{WATERMARK_DELAY_S}' SECOND
) WITH (
  'connector' = 'pulsar',
  'topics' = '{input}',
  'service-url' = '{url}',
  'source.subscription-name' = 'windows-e2e'
);
CREATE TABLE alerts (
  user_id STRING,
  window_start TIMESTAMP(3),
  window_end TIMESTAMP(3),
  clicks BIGINT
) WITH (
  'connector' = 'pulsar',
  'topics' = '{output}',
  'service-url' = '{url}',
  'key.fields' = 'user_id'
);
INSERT INTO alerts
SELECT user_id, window_start, window_end, count(*)
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, user_id
HAVING count(*) > {THRESHOLD};
"
    )
}

/// The alerts on the topic, sorted; checks each key is the row's user.
fn actual(url: &str, topic: &str) -> Vec<Alert> {
    let mut rows: Vec<_> = python_read_all(url, topic)
        .into_iter()
        .map(|m| {
            let v: Value = serde_json::from_str(&m.value)
                .unwrap_or_else(|e| panic!("alert is not JSON ({e}): {}", m.value));
            assert_eq!(m.key.as_deref(), v["user_id"].as_str(), "key is the user");
            let millis = |f: &str| {
                let text = v[f].as_str().unwrap_or_default();
                string_to_timestamp_nanos(text)
                    .unwrap_or_else(|e| panic!("{f} '{text}' is not a timestamp: {e}"))
                    / 1_000_000
            };
            (
                v["user_id"].as_str().unwrap_or_default().to_string(),
                millis("window_start"),
                millis("window_end"),
                v["clicks"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn tumbling_counts_per_user_over_four_partitions_alert_exactly() {
    let (input, output) = (unique_topic("clicks"), unique_topic("fraud-alerts"));
    // Only the input is partitioned: the Python client's reader crashes on a partitioned
    // topic with an empty partition (pulsar-lite answers GET_LAST_MESSAGE_ID on an empty
    // topic with an error), and few users alert.
    let broker = TestBroker::start_partitioned(&[(&input, PARTITIONS)]).await;
    let url = broker.service_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let clicks = generate();
    let expected = expected(&clicks);
    let alerted: BTreeSet<&str> = expected.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        alerted,
        BTreeSet::from(["bot-a", "bot-b", "bot-c", "edge"]),
        "the input must make bots and the edge user alert, and nobody else"
    );
    assert_eq!(
        expected.iter().filter(|e| e.0 == "edge").count(),
        1,
        "21 clicks alert, 20 do not"
    );

    let messages: Vec<(Option<String>, String)> = clicks
        .iter()
        .map(|c| {
            let payload = json!({"user_id": c.user, "ts": format_ts(c.ts_ms)});
            (Some(c.user.clone()), payload.to_string())
        })
        .collect();
    python_produce_file(
        &url,
        &input,
        &write_messages_file(dir.path(), &messages),
        true,
    );
    // Every partition must move its watermark past the last window: one late-enough event
    // per partition (unkeyed, unbatched messages go round robin), far from the alerts.
    let flush_ms = T0_MS + (MINUTES + 10) * 60_000;
    let flush: Vec<(Option<String>, String)> = (0..PARTITIONS * 2)
        .map(|_| {
            let payload = json!({"user_id": "~flush", "ts": format_ts(flush_ms)});
            (None, payload.to_string())
        })
        .collect();
    python_produce_file(
        &url,
        &input,
        &write_messages_file(dir.path(), &flush),
        false,
    );
    let partitions: BTreeSet<String> = python_read_all(&url, &input)
        .iter()
        .filter(|m| m.value.contains("~flush"))
        .filter_map(|m| m.magnetar_id().rsplit(':').next().map(str::to_string))
        .collect();
    assert_eq!(
        partitions.len(),
        PARTITIONS as usize,
        "flush events reach every partition: {partitions:?}"
    );
    let input_partitions: BTreeSet<String> = python_read_all(&url, &input)
        .iter()
        .filter_map(|m| m.magnetar_id().rsplit(':').next().map(str::to_string))
        .collect();
    assert_eq!(input_partitions.len(), PARTITIONS as usize);

    let path = dir.path().join("job.sql");
    std::fs::write(&path, script(&url, &input, &output)).expect("script");
    let child = spawn_magnetar(&["--service-url", &url, "-f", &path.to_string_lossy()]);
    let arrived = tokio::time::timeout(Duration::from_secs(120), async {
        let mut pause = Duration::from_millis(100);
        while python_read_all(&url, &output).len() < expected.len() {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    })
    .await;
    terminate(&child);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("magnetar exits after SIGTERM")
        .expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        arrived.is_ok(),
        "within 120 s the job wrote {:?}\nexpected {expected:?}\nmagnetar said:\n{stderr}",
        actual(&url, &output)
    );
    assert!(out.status.success(), "magnetar failed:\n{stderr}");
    assert!(stderr.contains("stopped"), "the job stopped:\n{stderr}");
    assert!(
        !stderr.contains("late row"),
        "no row is late when jitter stays below the watermark delay:\n{stderr}"
    );
    assert_eq!(
        actual(&url, &output),
        expected,
        "exactly the expected alerts, each once"
    );
}
