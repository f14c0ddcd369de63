//! Interval join end to end: the official Python client produces keyed clicks and orders,
//! interleaved and out of order, into two 4-partition topics of a real pulsar-lite broker;
//! `magnetar -f` runs "orders without a click of the same user in the five minutes before
//! them" (a LEFT interval join and `IS NULL`) into an alerts topic; the test finds those
//! orders itself from the events the producer wrote down. The output must be exactly them,
//! also after kill -9s.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use magnetar_tests::crash::{Moments, kill_repeatedly, seed};
use magnetar_tests::job_output::{assert_exactly, wait_then_stop};
use magnetar_tests::{
    TestBroker, python, python_read_all, repo_root, run_python, spawn_magnetar, unique_topic,
};
use serde_json::Value;

const PARTITIONS: u32 = 4;
/// How far back a click keeps an order from being suspicious, in ms.
const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// An alert: order id → (user, order time in ms).
type Alerts = BTreeMap<i64, Vec<(String, i64)>>;

struct Rig {
    _broker: TestBroker,
    dir: tempfile::TempDir,
    url: String,
    clicks: String,
    orders: String,
    output: String,
    events: PathBuf,
}

impl Rig {
    async fn new(prefix: &str) -> Rig {
        let clicks = unique_topic(&format!("{prefix}-clicks"));
        let orders = unique_topic(&format!("{prefix}-orders"));
        let output = unique_topic(&format!("{prefix}-alerts"));
        let broker = TestBroker::start_partitioned(&[
            (clicks.as_str(), PARTITIONS),
            (orders.as_str(), PARTITIONS),
        ])
        .await;
        let url = broker.service_url();
        let dir = tempfile::tempdir().expect("tempdir");
        let events = dir.path().join("events.jsonl");
        Rig {
            _broker: broker,
            dir,
            url,
            clicks,
            orders,
            output,
            events,
        }
    }

    fn script(&self) -> PathBuf {
        let (clicks, orders, output) = (&self.clicks, &self.orders, &self.output);
        let path = self.dir.path().join("orders.sql");
        std::fs::write(
            &path,
            format!(
                "CREATE TABLE clicks (
                    user_id STRING, url STRING, ts TIMESTAMP(3),
                    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
                 ) WITH ('connector' = 'pulsar', 'topics' = '{clicks}');
                 CREATE TABLE orders (
                    order_id BIGINT, user_id STRING, ots TIMESTAMP(3),
                    WATERMARK FOR ots AS ots - INTERVAL '1' SECOND
                 ) WITH ('connector' = 'pulsar', 'topics' = '{orders}');
                 CREATE TABLE alerts (order_id BIGINT, user_id STRING, ots BIGINT)
                 WITH ('connector' = 'pulsar', 'topics' = '{output}', 'key.fields' = 'user_id');
                 SET 'execution.checkpointing.interval' = '250 ms';
                 SET 'pipeline.name' = 'orders-without-clicks';
                 SET 'parallelism.default' = '2';
                 INSERT INTO alerts
                 SELECT o.order_id, o.user_id, CAST(o.ots AS BIGINT)
                 FROM orders o LEFT JOIN clicks c
                   ON o.user_id = c.user_id AND c.ts BETWEEN o.ots - INTERVAL '5' MINUTE AND o.ots
                 WHERE c.user_id IS NULL;"
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
            .arg(repo_root().join("tests/python/order_stream.py"))
            .args([
                "produce",
                &self.url,
                &self.clicks,
                &self.orders,
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
            "order_stream.py",
            &[
                "sentinel",
                &self.url,
                &self.clicks,
                &self.orders,
                &count.to_string(),
                &PARTITIONS.to_string(),
            ],
        );
    }

    /// The orders with no click of their user at or up to five minutes before them.
    fn expected(&self) -> Alerts {
        let text = std::fs::read_to_string(&self.events).expect("events");
        let mut clicks: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        let mut orders = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).expect("event line");
            let user = v["user_id"].as_str().expect("user").to_string();
            let ts = v["ts_ms"].as_i64().expect("ts");
            match v["kind"].as_str() {
                Some("click") => {
                    clicks.entry(user).or_default().insert(ts);
                }
                Some("order") => orders.push((v["order_id"].as_i64().expect("id"), user, ts)),
                other => panic!("unknown event kind {other:?}"),
            }
        }
        let mut alerts = Alerts::new();
        for (id, user, ts) in orders {
            let clicked = clicks
                .get(&user)
                .is_some_and(|c| c.range(ts - LOOKBACK_MS..=ts).next().is_some());
            if !clicked {
                alerts.entry(id).or_default().push((user, ts));
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
            alerts
                .entry(n("order_id"))
                .or_default()
                .push((user, n("ots")));
        }
        alerts
    }
}

/// Waits for as many alerts as expected, stops the job (SIGTERM) and compares.
async fn finish_and_compare(rig: &Rig, job: tokio::process::Child) {
    let expected = rig.expected();
    let want: usize = expected.values().map(Vec::len).sum();
    assert!(want > 100, "the stream holds orders without clicks: {want}");
    let stderr = wait_then_stop(job, want, "alerts", Duration::from_secs(300), || {
        rig.output().values().map(Vec::len).sum::<usize>()
    })
    .await;
    assert_exactly(&expected, &rig.output(), "alerts", &stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_without_a_click_are_exactly_the_reference_ones() {
    let rig = Rig::new("ij").await;
    let job = rig.spawn_job();
    let count = 20_000;
    let status = rig
        .spawn_producer(count, 11, 0)
        .wait()
        .await
        .expect("producer");
    assert!(status.success(), "the producer failed");
    rig.sentinel(count);
    finish_and_compare(&rig, job).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_three_times_the_join_writes_every_alert_exactly_once() {
    let rig = Rig::new("ij-crash").await;
    let seed = seed();
    let mut moments = Moments(seed);
    let count = 40_000;
    let mut producer = rig.spawn_producer(count, seed, 8_000);
    kill_repeatedly(3, &mut moments, || rig.spawn_job()).await;
    let status = producer.wait().await.expect("producer");
    assert!(status.success(), "the producer failed");
    rig.sentinel(count);
    finish_and_compare(&rig, rig.spawn_job()).await;
}
