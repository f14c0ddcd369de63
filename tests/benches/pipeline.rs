//! A whole job on a real broker: click events on a Pulsar topic of 4 partitions → TUMBLE 1 min
//! count per user → a Pulsar topic, at parallelism 1 and 2, next to a bare consumer reading
//! the same topic in the same run.
//!
//! `cargo bench -p magnetar-tests --bench pipeline` (`-- --messages N`, default 400,000;
//! `--runs N`, default 3). Needs `./scripts/setup.sh` (pulsar-lite, the Python client).
//!
//! The job reads the topic to its end as of its start (`'source.stop.at-message-id' =
//! 'latest'`) and runs as a statement set, which runs on the streaming runtime whatever its
//! input: sources, window operators and sinks in parallel instances, hash exchanges, barriers
//! (flushes every 200 ms). It is timed from its start until it has written every window and
//! ended. pulsar-lite stalls on backlogs of much more than a few hundred thousand messages
//! per partition (see `../shared/reference/pulsar-lite-notes.md`), hence the default size;
//! and now and then it stops dispatching to a consumer at all until that consumer subscribes
//! again, which a bounded read does after 10 s of silence. Such a run measures the broker's
//! stall, not Magnetar, so the table gives the fastest run of each row and counts the runs
//! that took longer than the stall timeout.

use std::time::{Duration, Instant};

use magnetar::{Engine, EngineConfig, JobState};
use magnetar_connectors::pulsar::TopicName;
use magnetar_tests::{
    TestBroker, bare_read, python_produce_file, unique_topic, write_messages_file,
};

const USERS: u64 = 1_000;
/// 2025-11-24 10:00:00 UTC.
const START_MS: u64 = 1_763_978_400_000;

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// A run that took this long waited out a broker stall (the sources' stall timeout).
const STALLED: Duration = Duration::from_secs(10);

/// The fastest run, and how many runs waited out a broker stall.
fn fastest(v: &[Duration]) -> (Duration, usize) {
    let best = v.iter().min().copied().unwrap_or_default();
    (best, v.iter().filter(|t| **t >= STALLED).count())
}

/// `n` click events, 10,000 per second of event time, keyed by user.
fn events(n: u64) -> Vec<(Option<String>, String)> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|i| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let user = format!("user-{:04}", (state >> 33) % USERS);
            let ts = START_MS + i / 10 + (state >> 20) % 2000;
            let when = datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(ts as i64)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
                .unwrap_or_default();
            (
                Some(user.clone()),
                format!(
                    "{{\"user_id\":\"{user}\",\"url\":\"/page/{}\",\"ts\":\"{when}\"}}",
                    i % 97
                ),
            )
        })
        .collect()
}

/// Runs the job at `parallelism` into a fresh output topic: messages read, results written,
/// time.
async fn job(url: &str, input: &str, parallelism: usize) -> (u64, u64, Duration) {
    let output = unique_topic("bench-per-user");
    let engine = Engine::new(EngineConfig {
        parallelism: Some(parallelism),
        ..EngineConfig::with_service_url(url)
    });
    engine
        .execute(&format!(
            "CREATE TABLE clicks (
               user_id STRING, url STRING, ts TIMESTAMP(3),
               WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
             ) WITH ('connector' = 'pulsar', 'topics' = '{input}',
                     'source.stop.at-message-id' = 'latest');
             CREATE TABLE per_user (user_id STRING, window_end TIMESTAMP(3), clicks BIGINT)
             WITH ('connector' = 'pulsar', 'topics' = '{output}', 'key.fields' = 'user_id');"
        ))
        .await
        .expect("tables");
    let clock = Instant::now();
    engine
        .execute(
            "SET 'pipeline.name' = 'bench';
             EXECUTE STATEMENT SET BEGIN
               INSERT INTO per_user
               SELECT user_id, window_end, count(*)
               FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
               GROUP BY window_start, window_end, user_id;
             END;",
        )
        .await
        .expect("start the job");
    let info = engine.wait_for_job("bench").await.expect("job");
    let elapsed = clock.elapsed();
    assert_eq!(info.state, JobState::Finished, "{info:?}");
    engine.shutdown().await;
    (info.messages_read, info.messages_written, elapsed)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let messages: u64 = arg(&args, "--messages").unwrap_or(400_000);
    let runs: usize = arg(&args, "--runs").unwrap_or(3).max(1);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let input = unique_topic("bench-clicks");
        let broker = TestBroker::start_partitioned(&[(&input, 4)]).await;
        let url = broker.service_url();
        let dir = tempfile::tempdir().expect("tempdir");
        eprintln!("producing {messages} click events to 4 partitions (official Python client)");
        python_produce_file(&url, &input, &write_messages_file(dir.path(), &events(messages)), true);

        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!("\n{messages} click events on a topic of 4 partitions (pulsar-lite), {USERS} users, {cores} cores; fastest of {runs} runs\n");
        println!(
            "| {:<48} | {:>9} | {:>9} | {:>7} | {:>11} | {:>8} | {:>7} |",
            "read", "messages", "results", "s", "events/s", "vs p=1", "stalled"
        );
        println!("|{:-<50}|{:->11}|{:->11}|{:->9}|{:->13}|{:->10}|{:->9}|", "", "", "", "", "", "", "");
        let mut times = Vec::new();
        let mut read = 0;
        for _ in 0..runs {
            let (n, t) = bare_read(&url, &TopicName::parse(&input).expect("topic")).await;
            read = n;
            times.push(t);
        }
        assert_eq!(read, messages, "the bare consumer reads every message");
        let (t, stalled) = fastest(&times);
        println!(
            "| {:<48} | {:>9} | {:>9} | {:>7.2} | {:>11.0} | {:>8} | {:>7} |",
            "bare consumer (no decoding), one instance",
            read,
            "—",
            t.as_secs_f64(),
            read as f64 / t.as_secs_f64(),
            "—",
            stalled
        );
        let mut rate_at_1 = None;
        for parallelism in [1, 2] {
            let mut times = Vec::new();
            let mut outcome = (0, 0);
            for _ in 0..runs {
                let (read, written, t) = job(&url, &input, parallelism).await;
                outcome = (read, written);
                times.push(t);
            }
            assert_eq!(outcome.0, messages, "the job reads every message once");
            let (t, stalled) = fastest(&times);
            let rate = messages as f64 / t.as_secs_f64();
            let vs = match rate_at_1 {
                None => {
                    rate_at_1 = Some(rate);
                    "1.00x".to_string()
                }
                Some(r) => format!("{:.2}x", rate / r),
            };
            println!(
                "| {:<48} | {:>9} | {:>9} | {:>7.2} | {:>11.0} | {:>8} | {:>7} |",
                format!("Magnetar: TUMBLE 1 min → Pulsar, parallelism {parallelism}"),
                outcome.0,
                outcome.1,
                t.as_secs_f64(),
                rate,
                vs,
                stalled
            );
        }
    });
}
