//! Checkpoints and exactly-once output, proven by killing processes: the official Python
//! client produces keyed click events into a real pulsar-lite broker, a `magnetar -f job.sql`
//! process aggregates them per user in 10-second tumbling windows into an output topic with
//! checkpoints, and the test kills the job (`kill -9`) or the broker at random moments. At
//! the end the output topic must hold exactly the results the Python script computed from
//! its own events: none missing, none twice, none different.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use magnetar_tests::crash::{Moments, kill_after, kill_repeatedly, resumed_from, seed};
use magnetar_tests::job_output::{assert_exactly, wait_then_stop};
use magnetar_tests::{
    TestBroker, python, python_read_all, repo_root, run_python, spawn_magnetar, unique_topic,
};
use serde_json::Value;

/// Events in the crash tests.
const EVENTS: usize = 200_000;
/// Events per second the producer paces itself to, so the job is killed while input arrives.
const RATE: u32 = 25_000;

/// One result row: (window start in seconds, user) → (clicks, total dwell).
type Results = BTreeMap<(i64, String), Vec<(i64, i64)>>;

struct Rig {
    broker: TestBroker,
    dir: tempfile::TempDir,
    url: String,
    input: String,
    /// Partitions of the input topic (0: not partitioned).
    input_partitions: u32,
    output: String,
    expected: PathBuf,
}

impl Rig {
    async fn new(prefix: &str) -> Rig {
        Self::with_partitions(prefix, 0, 0).await
    }

    /// A rig whose input and output topics have these partitions (0: not partitioned).
    async fn with_partitions(prefix: &str, input_partitions: u32, output_partitions: u32) -> Rig {
        let input = unique_topic(&format!("{prefix}-clicks"));
        let output = unique_topic(&format!("{prefix}-per-user"));
        let partitioned: Vec<(&str, u32)> = [
            (input.as_str(), input_partitions),
            (output.as_str(), output_partitions),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
        let broker = TestBroker::start_partitioned(&partitioned).await;
        let url = broker.service_url();
        let dir = tempfile::tempdir().expect("tempdir");
        let expected = dir.path().join("expected.jsonl");
        Rig {
            broker,
            dir,
            url,
            input,
            input_partitions,
            output,
            expected,
        }
    }

    /// The job's script, at `parallelism` (`None`: the default). The statements are the same
    /// at every parallelism, so any run restores the checkpoints of any other.
    fn script(&self, parallelism: Option<usize>) -> PathBuf {
        let (input, output) = (&self.input, &self.output);
        let path = self.dir.path().join(match parallelism {
            Some(p) => format!("job-p{p}.sql"),
            None => "job.sql".to_string(),
        });
        let set = parallelism
            .map(|p| format!("SET 'parallelism.default' = '{p}';"))
            .unwrap_or_default();
        std::fs::write(
            &path,
            format!(
                "CREATE TABLE clicks (
                    user_id STRING, url STRING, dwell_ms BIGINT, ts TIMESTAMP(3),
                    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
                 ) WITH ('connector' = 'pulsar', 'topics' = '{input}');
                 CREATE TABLE per_user (window_start BIGINT, user_id STRING, clicks BIGINT, dwell BIGINT)
                 WITH ('connector' = 'pulsar', 'topics' = '{output}', 'key.fields' = 'user_id');
                 SET 'execution.checkpointing.interval' = '250 ms';
                 SET 'pipeline.name' = 'clicks-per-user';
                 {set}
                 INSERT INTO per_user
                 SELECT to_unixtime(window_start), user_id, count(*), sum(dwell_ms)
                 FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND))
                 GROUP BY window_start, window_end, user_id;"
            ),
        )
        .expect("write the job's script");
        path
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The job's command line: the same script and data directory every time.
    fn job_args(&self) -> Vec<String> {
        self.job_args_at(None)
    }

    /// The job's command line at `parallelism`.
    fn job_args_at(&self, parallelism: Option<usize>) -> Vec<String> {
        let path = |p: &Path| p.to_str().expect("utf-8 path").to_string();
        vec![
            "--service-url".into(),
            self.url.clone(),
            "--data-dir".into(),
            path(&self.data_dir()),
            "-f".into(),
            path(&self.script(parallelism)),
        ]
    }

    /// Starts the job's process.
    fn spawn_job(&self) -> tokio::process::Child {
        self.spawn_job_at(None)
    }

    /// Starts the job's process at `parallelism`.
    fn spawn_job_at(&self, parallelism: Option<usize>) -> tokio::process::Child {
        let args = self.job_args_at(parallelism);
        spawn_magnetar(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Starts the Python producer of the events (in the background).
    fn spawn_producer(&self, seed: u64) -> tokio::process::Child {
        tokio::process::Command::new(python())
            .arg(repo_root().join("tests/python/click_stream.py"))
            .args([
                "produce",
                &self.url,
                &self.input,
                &EVENTS.to_string(),
                &(seed % 1_000_000).to_string(),
                &RATE.to_string(),
                self.expected.to_str().expect("utf-8 path"),
            ])
            .kill_on_drop(true)
            .spawn()
            .expect("start the Python producer")
    }

    /// After the producer ended: one more event, whose watermark closes every window.
    fn close_windows(&self) {
        run_python(
            "click_stream.py",
            &[
                "sentinel",
                &self.url,
                &self.input,
                &EVENTS.to_string(),
                &self.input_partitions.to_string(),
            ],
        );
    }

    fn expected(&self) -> Results {
        let text = std::fs::read_to_string(&self.expected).expect("expected results");
        let mut results = Results::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).expect("expected line");
            results
                .entry((
                    v["window_start"].as_i64().expect("window"),
                    v["user_id"].as_str().expect("user").to_string(),
                ))
                .or_default()
                .push((
                    v["clicks"].as_i64().expect("clicks"),
                    v["dwell"].as_i64().expect("dwell"),
                ));
        }
        results
    }

    /// The output topic, as the official client reads it.
    fn output(&self) -> Results {
        let mut results = Results::new();
        for m in python_read_all(&self.url, &self.output) {
            let v: Value = serde_json::from_str(&m.value).expect("output is JSON");
            let user = v["user_id"].as_str().expect("user").to_string();
            assert_eq!(m.key.as_deref(), Some(user.as_str()), "key of {}", m.value);
            results
                .entry((v["window_start"].as_i64().expect("window"), user))
                .or_default()
                .push((
                    v["clicks"].as_i64().expect("clicks"),
                    v["dwell"].as_i64().expect("dwell"),
                ));
        }
        results
    }
}

/// Waits until the output has as many results as expected, stops the job cleanly (a final
/// checkpoint) and compares the output with the expected results.
async fn finish_and_compare(rig: &Rig, job: tokio::process::Child) -> String {
    let expected = rig.expected();
    let want: usize = expected.values().map(Vec::len).sum();
    let stderr = wait_then_stop(job, want, "results", Duration::from_secs(300), || {
        rig.output().values().map(Vec::len).sum::<usize>()
    })
    .await;
    assert_exactly(&expected, &rig.output(), "results", &stderr);
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_five_times_the_job_writes_every_window_result_exactly_once() {
    let rig = Rig::new("crash").await;
    let seed = seed();
    let mut moments = Moments(seed);
    let mut producer = rig.spawn_producer(seed);
    let mut resumes = Vec::new();
    for kill in 1..=5 {
        let after = moments.next_in(800, 2_500);
        let stderr = kill_after(rig.spawn_job(), after).await;
        eprintln!(
            "kill {kill} after {after:?}; the run {}",
            match resumed_from(&stderr) {
                Some(id) => format!("had resumed from checkpoint {id}"),
                None => "started without a checkpoint".into(),
            }
        );
        resumes.push(resumed_from(&stderr));
    }
    let job = rig.spawn_job();
    let produced = producer.wait().await.expect("producer");
    assert!(produced.success(), "the Python producer failed");
    rig.close_windows();
    let stderr = finish_and_compare(&rig, job).await;
    // The final run continued from a checkpoint an earlier run wrote.
    let last =
        resumed_from(&stderr).unwrap_or_else(|| panic!("the final run did not resume:\n{stderr}"));
    assert!(last > 0);
    assert!(
        resumes.iter().flatten().all(|id| *id <= last),
        "checkpoint ids only grow: {resumes:?} then {last}"
    );
    assert!(
        checkpoint_dirs(&rig.data_dir().join("checkpoints/clicks-per-user")).len() <= 3,
        "old checkpoints are deleted (3 retained)"
    );
}

/// The same over an output topic of three partitions: the sink routes by key itself, records
/// the last entry it wrote on each partition, and reads each partition's tail on recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_three_times_with_a_partitioned_output_topic_every_result_is_written_once() {
    let rig = Rig::with_partitions("crash-partitioned", 0, 3).await;
    let seed = seed();
    let mut moments = Moments(seed);
    let mut producer = rig.spawn_producer(seed);
    kill_repeatedly(3, &mut moments, || rig.spawn_job()).await;
    let job = rig.spawn_job();
    let produced = producer.wait().await.expect("producer");
    assert!(produced.success(), "the Python producer failed");
    rig.close_windows();
    let stderr = finish_and_compare(&rig, job).await;
    assert!(resumed_from(&stderr).is_some_and(|id| id > 0), "{stderr}");
}

/// Over an input topic of four partitions at parallelism 2: two source instances share the
/// partitions, two window instances share the users' key groups, two sink instances write
/// through their own producers; killed four times, every result is still written once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_four_times_over_four_input_partitions_at_parallelism_2_every_result_is_written_once()
 {
    let rig = Rig::with_partitions("crash-parallel", 4, 0).await;
    let seed = seed();
    let mut moments = Moments(seed);
    let mut producer = rig.spawn_producer(seed);
    kill_repeatedly(4, &mut moments, || rig.spawn_job_at(Some(2))).await;
    let job = rig.spawn_job_at(Some(2));
    let produced = producer.wait().await.expect("producer");
    assert!(produced.success(), "the Python producer failed");
    rig.close_windows();
    let stderr = finish_and_compare(&rig, job).await;
    assert!(resumed_from(&stderr).is_some_and(|id| id > 0), "{stderr}");
    let manifests = checkpoint_dirs(&rig.data_dir().join("checkpoints/clicks-per-user"));
    assert!(!manifests.is_empty());
}

/// Each restart runs at another parallelism (2, 1, 3, 2, then 4): window state moves between
/// instances by key group, source partitions and output producers change hands, and every
/// result is still written once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_at_other_parallelisms_after_kills_every_result_is_written_once() {
    let rig = Rig::with_partitions("crash-rescaled", 4, 2).await;
    let seed = seed();
    let mut moments = Moments(seed);
    let mut producer = rig.spawn_producer(seed);
    let mut resumed = Vec::new();
    for (kill, parallelism) in [2, 1, 3, 2].into_iter().enumerate() {
        let after = moments.next_in(900, 2_500);
        let stderr = kill_after(rig.spawn_job_at(Some(parallelism)), after).await;
        let from = resumed_from(&stderr);
        eprintln!(
            "kill {} at parallelism {parallelism} after {after:?}; resumed from {from:?}",
            kill + 1
        );
        resumed.push(from);
    }
    let job = rig.spawn_job_at(Some(4));
    let produced = producer.wait().await.expect("producer");
    assert!(produced.success(), "the Python producer failed");
    rig.close_windows();
    let stderr = finish_and_compare(&rig, job).await;
    assert!(resumed_from(&stderr).is_some_and(|id| id > 0), "{stderr}");
    assert!(
        resumed.iter().flatten().count() >= 1,
        "runs at other parallelisms restored checkpoints: {resumed:?}"
    );
}

fn checkpoint_dirs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("chk-"))
                .collect()
        })
        .unwrap_or_default()
}

/// The broker is killed (SIGKILL) while the job runs and started again on the same port and
/// data after a random outage; the job's process keeps running: its consumers subscribe
/// again with backoff (or, if the pipeline fails, it restarts from its latest checkpoint),
/// and the output is still exact.
///
/// pulsar-lite defects this meets: it may lose subscription cursors when killed (the job
/// seeks to its checkpoint's positions, so it does not depend on them) and keeps a killed
/// client's consumer on an Exclusive subscription (the job then reads through a new
/// subscription; see `take_over_subscriptions`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_killed_and_restarted_mid_run_loses_and_duplicates_nothing() {
    let mut rig = Rig::new("broker-crash").await;
    let seed = seed();
    let mut moments = Moments(seed);
    // All input first: the Python client would resend what it had in flight when the broker
    // died, which a broker without deduplication may store twice (the input must be exact).
    let producer = rig.spawn_producer(seed).wait().await.expect("producer");
    assert!(producer.success(), "the Python producer failed");
    let job = rig.spawn_job();
    let before_kill = moments.next_in(1_000, 3_000);
    let outage = moments.next_in(300, 3_000);
    tokio::time::sleep(before_kill).await;
    rig.broker.process().kill();
    eprintln!("broker killed {before_kill:?} after the job started; down for {outage:?}");
    tokio::time::sleep(outage).await;
    rig.broker
        .process()
        .restart()
        .await
        .expect("restart pulsar-lite on the same port and data");
    rig.close_windows();
    let stderr = finish_and_compare(&rig, job).await;
    assert!(
        stderr.contains("retrying") || stderr.contains("restarted"),
        "the job noticed the outage and reconnected:\n{stderr}"
    );
}

/// A process killed while it writes a checkpoint (here: a test hook aborts it after the
/// checkpoint's state and before its manifest) leaves a torn checkpoint; the restarted job
/// ignores it, resumes from the last complete one, and the output is still exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_checkpoint_is_ignored_in_favour_of_the_last_complete_one() {
    let rig = Rig::new("torn").await;
    let seed = seed();
    let mut producer = rig.spawn_producer(seed);
    let data = rig.data_dir();
    let mut first = tokio::process::Command::new(magnetar_tests::magnetar_binary())
        .args(rig.job_args())
        .env("MAGNETAR_TEST_ABORT_BEFORE_MANIFEST", "3")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start magnetar");
    let status = tokio::time::timeout(Duration::from_secs(120), first.wait())
        .await
        .expect("the job aborts at checkpoint 3")
        .expect("wait");
    assert!(!status.success(), "the hook aborts the process: {status}");
    let job_dir = data.join("checkpoints/clicks-per-user");
    let torn = job_dir.join("chk-00000000000000000003");
    let blobs: Vec<String> = std::fs::read_dir(&torn)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        blobs.iter().any(|b| b.starts_with("window-aggregate-"))
            && !torn.join("_MANIFEST").exists(),
        "checkpoint 3 has its window state and no manifest: {blobs:?}"
    );
    assert!(job_dir.join("chk-00000000000000000002/_MANIFEST").is_file());

    let job = rig.spawn_job();
    let produced = producer.wait().await.expect("producer");
    assert!(produced.success(), "the Python producer failed");
    rig.close_windows();
    let stderr = finish_and_compare(&rig, job).await;
    assert_eq!(
        resumed_from(&stderr),
        Some(2),
        "the restarted job resumes from checkpoint 2, not the torn 3:\n{stderr}"
    );
}
