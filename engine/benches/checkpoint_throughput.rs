//! What checkpoints cost a running job: the same continuous TUMBLE job (count and sum per
//! user and minute, 100,000 users) over the same in-memory input, once without checkpoints
//! and once checkpointing every second into a local directory. Prints events per second of
//! each (median of the runs), the loss, and the checkpoints the job took.
//!
//! `cargo bench -p magnetar --bench checkpoint_throughput` (`-- --events N`, `--runs N`).

mod common;

use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use common::arg;
use magnetar::{Engine, EngineConfig};

const USERS: u64 = 100_000;
/// Event time covered per second of input: 20,000 clicks per second.
const EVENTS_PER_SECOND: u64 = 20_000;
/// 2025-11-24 10:00:00 UTC.
const START_MS: u64 = 1_763_978_400_000;

/// `user,dwell,ts` lines: users drawn from a fixed sequence, event time in order.
fn generate(path: &std::path::Path, events: u64) -> std::io::Result<()> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    for i in 0..events {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let ms = START_MS + i * 1000 / EVENTS_PER_SECOND;
        let ts = datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(ms as i64)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
            .unwrap_or_default();
        writeln!(out, "u{},{},{ts}", state % USERS, state % 5000)?;
    }
    out.flush()
}

/// Runs the job over the loaded input and returns (seconds until every event was read,
/// checkpoints taken).
async fn run_job(
    engine: &Engine,
    name: &str,
    events: u64,
    checkpoints: bool,
) -> Result<(f64, u64), Box<dyn std::error::Error>> {
    let setting = if checkpoints {
        "SET 'execution.checkpointing.interval' = '1 s'"
    } else {
        "RESET 'execution.checkpointing.interval'"
    };
    engine.execute(setting).await?;
    engine
        .execute(&format!("SET 'pipeline.name' = '{name}'"))
        .await?;
    let started = Instant::now();
    engine
        .execute(
            "INSERT INTO per_user
             SELECT window_start, user_id, count(*), sum(dwell)
             FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
             GROUP BY window_start, window_end, user_id",
        )
        .await?;
    // Polling is fine here: it measures, it does not synchronise a test.
    loop {
        let job = engine
            .jobs()
            .into_iter()
            .rev()
            .find(|j| j.name.as_deref() == Some(name))
            .ok_or("the job is gone")?;
        if let magnetar::JobState::Failed(e) = &job.state {
            return Err(e.clone().into());
        }
        if job.messages_read >= events {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let info = engine.stop_job(name).await?;
    Ok((seconds, info.last_checkpoint.unwrap_or(0)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let events: u64 = arg(&args, "--events")?.unwrap_or(20_000_000);
    let runs: u64 = arg(&args, "--runs")?.unwrap_or(3).max(1);
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("clicks.csv");
    generate(&csv, events)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let engine = Engine::new(EngineConfig {
            data_dir: Some(dir.path().join("data")),
            ..EngineConfig::default()
        });
        engine
            .execute(&format!(
                "CREATE TABLE clicks_file (user_id STRING, dwell BIGINT, ts TIMESTAMP(3))
                 WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
                 CREATE TABLE clicks (
                   user_id STRING, dwell BIGINT, ts TIMESTAMP(3),
                   WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
                 ) WITH ('connector' = 'memory');
                 CREATE TABLE per_user (window_start TIMESTAMP(3), user_id STRING, clicks BIGINT, dwell BIGINT)
                 WITH ('connector' = 'memory');
                 SET 'table.dml-sync' = 'true';
                 INSERT INTO clicks SELECT * FROM clicks_file;
                 SET 'table.dml-sync' = 'false';",
                csv.display()
            ))
            .await?;
        let mut plain = Vec::new();
        let mut checkpointed = Vec::new();
        let mut taken = Vec::new();
        for run in 0..runs {
            plain.push(run_job(&engine, &format!("plain-{run}"), events, false).await?.0);
            let (seconds, checkpoints) =
                run_job(&engine, &format!("checkpointed-{run}"), events, true).await?;
            checkpointed.push(seconds);
            taken.push(checkpoints);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        let (plain, checkpointed) = (median(&mut plain), median(&mut checkpointed));
        let rate = |s: f64| events as f64 / s;
        println!(
            "Continuous TUMBLE 1 min, count + sum per user, {USERS} users, {events} events from memory, median of {runs} run(s):"
        );
        println!("| mode | events/s | seconds |");
        println!("|---|---:|---:|");
        println!("| no checkpoints | {:.0} | {plain:.2} |", rate(plain));
        println!(
            "| checkpoint every 1 s (local directory) | {:.0} | {checkpointed:.2} |",
            rate(checkpointed)
        );
        println!(
            "(throughput loss with checkpoints: {:.1}%; checkpoints per run: {taken:?})",
            (1.0 - plain / checkpointed) * 100.0
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
