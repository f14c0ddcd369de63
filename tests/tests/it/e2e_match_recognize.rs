//! MATCH_RECOGNIZE end to end: the official Python client produces keyed login, click and
//! purchase events into a 4-partition topic of a real pulsar-lite broker, `magnetar -f`
//! runs the fraud pattern into an alerts topic, and the test computes the matches itself
//! with a small reference matcher (below, independent of the engine) from the events the
//! producer wrote down. The output must be exactly those matches, also after kill -9s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use magnetar_tests::crash::{Moments, kill_repeatedly, seed};
use magnetar_tests::job_output::{assert_exactly, wait_then_stop};
use magnetar_tests::{
    TestBroker, python, python_read_all, repo_root, run_python, spawn_magnetar, unique_topic,
};
use serde_json::Value;

const PARTITIONS: u32 = 4;
/// WITHIN, in ms.
const WITHIN_MS: i64 = 10 * 60 * 1000;

/// One alert: (user, first failure's time) → (last failure's time, failures, amount, match
/// time).
type Alerts = BTreeMap<(String, i64), Vec<(i64, i64, i64, i64)>>;

/// One produced event.
#[derive(Debug, Clone)]
struct Event {
    user: String,
    action: String,
    amount: i64,
    ts: i64,
}

/// The fraud pattern over one user's events in event-time order (equal times in the order
/// produced), as Flink's rules give it: `F{3,} S? B`, F greedy (it takes every failure in
/// a row, so S or B can only come after the last), S optional, B a purchase over 500 and
/// over twice the failures' average (integer AVG, truncated), the last row less than WITHIN
/// after the first, skipping past the last row. Of the starts inside one run of failures,
/// the earliest that completes wins (it is emitted first and the others are pruned).
fn reference_matches(events: &[Event]) -> Vec<(i64, i64, i64, i64, i64)> {
    let failed = |e: &Event| e.action == "login_failed";
    let mut out = Vec::new();
    let mut at = 0;
    while at < events.len() {
        if !failed(&events[at]) {
            at += 1;
            continue;
        }
        let run_start = at;
        let mut run_end = at;
        while run_end < events.len() && failed(&events[run_end]) {
            run_end += 1;
        }
        let mut matched = None;
        for start in run_start..run_end.saturating_sub(2) {
            let fails = &events[start..run_end];
            let avg = fails.iter().map(|e| e.amount).sum::<i64>() / fails.len() as i64;
            let buys = |e: &Event| e.action == "purchase" && e.amount > 500 && e.amount > 2 * avg;
            let end = match events.get(run_end) {
                Some(e) if buys(e) => Some(run_end),
                Some(e) if e.action == "login_ok" => events
                    .get(run_end + 1)
                    .filter(|e| buys(e))
                    .map(|_| run_end + 1),
                _ => None,
            };
            if let Some(end) = end
                && events[end].ts - events[start].ts < WITHIN_MS
            {
                matched = Some((start, end));
                break;
            }
        }
        match matched {
            Some((start, end)) => {
                let last_fail = events[run_end - 1].ts;
                out.push((
                    events[start].ts,
                    last_fail,
                    (run_end - start) as i64,
                    events[end].amount,
                    events[end].ts,
                ));
                at = end + 1;
            }
            None => at = run_end,
        }
    }
    out
}

struct Rig {
    _broker: TestBroker,
    dir: tempfile::TempDir,
    url: String,
    input: String,
    output: String,
    events: PathBuf,
}

impl Rig {
    async fn new(prefix: &str) -> Rig {
        let input = unique_topic(&format!("{prefix}-logins"));
        let output = unique_topic(&format!("{prefix}-alerts"));
        let broker = TestBroker::start_partitioned(&[(input.as_str(), PARTITIONS)]).await;
        let url = broker.service_url();
        let dir = tempfile::tempdir().expect("tempdir");
        let events = dir.path().join("events.jsonl");
        Rig {
            _broker: broker,
            dir,
            url,
            input,
            output,
            events,
        }
    }

    fn script(&self) -> PathBuf {
        let (input, output) = (&self.input, &self.output);
        let path = self.dir.path().join("fraud.sql");
        std::fs::write(
            &path,
            format!(
                "CREATE TABLE logins (
                    user_id STRING, action STRING, amount INT, ts TIMESTAMP(3),
                    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
                 ) WITH ('connector' = 'pulsar', 'topics' = '{input}');
                 CREATE TABLE alerts (user_id STRING, first_fail BIGINT, last_fail BIGINT,
                    fails BIGINT, amount INT, match_time BIGINT)
                 WITH ('connector' = 'pulsar', 'topics' = '{output}', 'key.fields' = 'user_id');
                 SET 'execution.checkpointing.interval' = '250 ms';
                 SET 'pipeline.name' = 'fraud-patterns';
                 SET 'parallelism.default' = '2';
                 INSERT INTO alerts
                 SELECT user_id, CAST(first_fail AS BIGINT), CAST(last_fail AS BIGINT), fails,
                        amount, CAST(match_time AS BIGINT)
                 FROM logins
                 MATCH_RECOGNIZE (
                   PARTITION BY user_id
                   ORDER BY ts
                   MEASURES
                     FIRST(F.ts) AS first_fail, LAST(F.ts) AS last_fail, COUNT(F.*) AS fails,
                     B.amount AS amount, MATCH_ROWTIME() AS match_time
                   ONE ROW PER MATCH
                   AFTER MATCH SKIP PAST LAST ROW
                   PATTERN (F{{3,}} S? B) WITHIN INTERVAL '10' MINUTE
                   DEFINE
                     F AS F.action = 'login_failed',
                     S AS S.action = 'login_ok',
                     B AS B.action = 'purchase' AND B.amount > 500 AND B.amount > 2 * AVG(F.amount)
                 );"
            ),
        )
        .expect("write the job's script");
        path
    }

    fn spawn_job(&self) -> tokio::process::Child {
        let path = |p: &Path| p.to_str().expect("utf-8 path").to_string();
        let args = [
            "--service-url".to_string(),
            self.url.clone(),
            "--data-dir".into(),
            path(&self.dir.path().join("data")),
            "-f".into(),
            path(&self.script()),
        ];
        spawn_magnetar(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn spawn_producer(&self, count: usize, seed: u64, rate: u32) -> tokio::process::Child {
        tokio::process::Command::new(python())
            .arg(repo_root().join("tests/python/login_stream.py"))
            .args([
                "produce",
                &self.url,
                &self.input,
                &count.to_string(),
                &(seed % 1_000_000).to_string(),
                &rate.to_string(),
                self.events.to_str().expect("utf-8 path"),
            ])
            .kill_on_drop(true)
            .spawn()
            .expect("start the Python producer")
    }

    fn sentinel(&self, count: usize) {
        run_python(
            "login_stream.py",
            &[
                "sentinel",
                &self.url,
                &self.input,
                &count.to_string(),
                &PARTITIONS.to_string(),
            ],
        );
    }

    /// The reference matcher's alerts over the produced events.
    fn expected(&self) -> Alerts {
        let text = std::fs::read_to_string(&self.events).expect("events");
        let mut per_user: BTreeMap<String, Vec<(i64, usize, Event)>> = BTreeMap::new();
        for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let v: Value = serde_json::from_str(line).expect("event line");
            let e = Event {
                user: v["user_id"].as_str().expect("user").to_string(),
                action: v["action"].as_str().expect("action").to_string(),
                amount: v["amount"].as_i64().expect("amount"),
                ts: v["ts_ms"].as_i64().expect("ts"),
            };
            per_user
                .entry(e.user.clone())
                .or_default()
                .push((e.ts, i, e));
        }
        let mut alerts = Alerts::new();
        for (user, mut events) in per_user {
            events.sort_by_key(|(ts, i, _)| (*ts, *i));
            let events: Vec<Event> = events.into_iter().map(|(.., e)| e).collect();
            for (first, last, fails, amount, time) in reference_matches(&events) {
                alerts
                    .entry((user.clone(), first))
                    .or_default()
                    .push((last, fails, amount, time));
            }
        }
        alerts
    }

    fn output(&self) -> Alerts {
        let mut alerts = Alerts::new();
        for m in python_read_all(&self.url, &self.output) {
            let v: Value = serde_json::from_str(&m.value).expect("output is JSON");
            let user = v["user_id"].as_str().expect("user").to_string();
            assert_eq!(m.key.as_deref(), Some(user.as_str()), "key of {}", m.value);
            let n = |k: &str| {
                v[k].as_i64()
                    .unwrap_or_else(|| panic!("{k} in {}", m.value))
            };
            alerts.entry((user, n("first_fail"))).or_default().push((
                n("last_fail"),
                n("fails"),
                n("amount"),
                n("match_time"),
            ));
        }
        alerts
    }
}

/// Waits for as many alerts as expected, stops the job (SIGTERM) and compares.
async fn finish_and_compare(rig: &Rig, job: tokio::process::Child) {
    let expected = rig.expected();
    let want: usize = expected.values().map(Vec::len).sum();
    assert!(want > 10, "the stream holds fraud patterns to find: {want}");
    let stderr = wait_then_stop(job, want, "alerts", Duration::from_secs(300), || {
        rig.output().values().map(Vec::len).sum::<usize>()
    })
    .await;
    assert_exactly(&expected, &rig.output(), "alerts", &stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fraud_pattern_finds_exactly_the_reference_matches() {
    let rig = Rig::new("mr").await;
    let job = rig.spawn_job();
    let count = 20_000;
    let status = rig
        .spawn_producer(count, 7, 0)
        .wait()
        .await
        .expect("producer");
    assert!(status.success(), "the producer failed");
    rig.sentinel(count);
    finish_and_compare(&rig, job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_three_times_the_fraud_pattern_writes_every_alert_exactly_once() {
    let rig = Rig::new("mr-crash").await;
    let seed = seed();
    let mut moments = Moments(seed);
    let count = 60_000;
    let mut producer = rig.spawn_producer(count, seed, 10_000);
    kill_repeatedly(3, &mut moments, || rig.spawn_job()).await;
    let status = producer.wait().await.expect("producer");
    assert!(status.success(), "the producer failed");
    rig.sentinel(count);
    finish_and_compare(&rig, rig.spawn_job()).await;
}
