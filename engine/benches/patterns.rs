//! Pattern detection throughput: the fraud pattern (MATCH_RECOGNIZE: three or more failed
//! logins, an optional good one, then a large purchase, within ten minutes) over generated
//! login, click and purchase events, at parallelism 1 and 2, next to a TUMBLE count of the
//! same events in the same run.
//!
//! `cargo bench -p magnetar --bench patterns` (release build; `-- --events N` for another
//! size, `--runs N` for another number of runs per row, 3 by default). Events are read from
//! 4 CSV files (like 4 partitions of a topic); each run is its own process.

mod common;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{arg, run_child, usage};
use futures::StreamExt;
use magnetar::{Engine, EngineConfig};

/// Event time covered per second of generated input.
const EVENTS_PER_SECOND: u64 = 10_000;
const USERS: u64 = 10_000;
/// 2025-11-24 10:00:00 UTC.
const START_MS: u64 = 1_763_978_400_000;

const CASES: &[(&str, &str)] = &[
    ("TUMBLE 1 min count per user", "tumble"),
    ("MATCH_RECOGNIZE fraud pattern", "pattern"),
];
const PARALLELISMS: &[usize] = &[1, 2];

fn sql(case: &str) -> Option<&'static str> {
    Some(match case {
        "tumble" => {
            "SELECT user_id, window_start, count(*) AS events
             FROM TABLE(TUMBLE(TABLE logins, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
             GROUP BY window_start, window_end, user_id"
        }
        "pattern" => {
            "SELECT * FROM logins
             MATCH_RECOGNIZE (
               PARTITION BY user_id
               ORDER BY ts
               MEASURES FIRST(F.ts) AS first_fail, COUNT(F.action) AS fails,
                        B.amount AS amount, MATCH_ROWTIME() AS match_time
               AFTER MATCH SKIP PAST LAST ROW
               PATTERN (F{3,} S? B) WITHIN INTERVAL '10' MINUTE
               DEFINE
                 F AS F.action = 'login_failed',
                 S AS S.action = 'login_ok',
                 B AS B.action = 'purchase' AND B.amount > 500 AND B.amount > 2 * AVG(F.amount)
             )"
        }
        _ => return None,
    })
}

/// `YYYY-MM-DD HH:MM:SS.mmm`.
fn timestamp(ms: u64) -> String {
    datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

/// Writes `events` logins as CSV (`user_id,action,amount,ts`) dealt in turn into `paths`:
/// mostly clicks, now and then a user's burst of failed logins before a purchase; arrival
/// up to 2 s out of order.
fn generate(paths: &[PathBuf], events: u64) -> std::io::Result<()> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |m: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % m
    };
    let mut outs = paths
        .iter()
        .map(|p| Ok(BufWriter::with_capacity(1 << 20, std::fs::File::create(p)?)))
        .collect::<std::io::Result<Vec<_>>>()?;
    // Per user: failed logins still to come in a burst (then a purchase).
    let mut bursts = vec![0u8; USERS as usize];
    for i in 0..events {
        let out = &mut outs[(i % paths.len() as u64) as usize];
        let user = next(USERS);
        let ts = START_MS + i * 1000 / EVENTS_PER_SECOND + next(2000);
        let burst = &mut bursts[user as usize];
        let (action, amount) = if *burst > 1 {
            *burst -= 1;
            ("login_failed", 10 + next(200))
        } else if *burst == 1 {
            *burst = 0;
            ("purchase", 300 + next(1500))
        } else {
            match next(100) {
                0 => {
                    *burst = 3 + next(4) as u8;
                    ("login_failed", 10 + next(200))
                }
                1..=4 => ("login_failed", 10 + next(200)),
                5..=14 => ("login_ok", 0),
                15..=24 => ("purchase", 1 + next(1000)),
                _ => ("click", 0),
            }
        };
        writeln!(out, "user-{user:05},{action},{amount},{}", timestamp(ts))?;
    }
    for out in &mut outs {
        out.flush()?;
    }
    Ok(())
}

/// Runs one case over the files in `dir` at `parallelism` and prints
/// `rows wall_s cpu_s rss_kb`.
async fn run_case(
    case: &str,
    dir: &Path,
    parallelism: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let query = sql(case).ok_or_else(|| format!("no case {case}"))?;
    let started = Instant::now();
    let engine = Engine::new(EngineConfig {
        parallelism: Some(parallelism),
        ..EngineConfig::default()
    });
    engine
        .execute(&format!(
            "CREATE TABLE logins (
               user_id STRING, action STRING, amount INT, ts TIMESTAMP(3),
               WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
             ) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv')",
            dir.display()
        ))
        .await?;
    let mut rows = 0usize;
    let mut stream = engine.query(query).await?;
    while let Some(batch) = stream.next().await {
        rows += batch?.num_rows();
    }
    let wall = started.elapsed().as_secs_f64();
    let (cpu, rss_kb) = usage();
    println!("{rows} {wall} {cpu} {rss_kb}");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let (Some(case), Some(file)) = (
        arg::<String>(&args, "--case")?,
        arg::<String>(&args, "--file")?,
    ) {
        let parallelism = arg::<usize>(&args, "--parallelism")?.unwrap_or(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return runtime.block_on(run_case(&case, Path::new(&file), parallelism));
    }
    let events: u64 = arg(&args, "--events")?.unwrap_or(10_000_000);
    let runs_per_case: usize = arg(&args, "--runs")?.unwrap_or(3).max(1);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-logins-{events}-4"));
    if !dir.exists() {
        eprintln!(
            "generating {events} login events into 4 files in {}",
            dir.display()
        );
        std::fs::create_dir_all(&dir)?;
        let parts: Vec<PathBuf> = (0..4).map(|i| dir.join(format!("part-{i}.csv"))).collect();
        generate(&parts, events)?;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("{events} login events in 4 CSV files, {USERS} users, {cores} cores\n");
    println!(
        "| {:<30} | {:>2} | {:>10} | {:>13} | {:>12} | {:>8} | {:>8} |",
        "query", "p", "events/s", "events/s/core", "peak RSS MiB", "rows out", "vs p=1"
    );
    println!(
        "|{:-<32}|{:->4}|{:->12}|{:->15}|{:->14}|{:->10}|{:->10}|",
        "", "", "", "", "", "", ""
    );
    let exe = std::env::current_exe()?;
    let mut cpu_at_1 = std::collections::HashMap::new();
    for (label, case) in CASES {
        let mut rate_at_1 = None;
        for &p in PARALLELISMS {
            let mut runs = Vec::new();
            for _ in 0..runs_per_case {
                runs.push(run_child(&exe, case, &dir, p)?);
            }
            runs.sort_by(|a, b| a[1].total_cmp(&b[1]));
            let rss_kb = runs.iter().map(|r| r[3]).fold(0.0, f64::max);
            let [rows, wall, cpu, _] = runs[runs.len() / 2];
            let rate = events as f64 / wall;
            if p == 1 {
                cpu_at_1.insert(*case, cpu);
            }
            let speedup = match rate_at_1 {
                None => {
                    rate_at_1 = Some(rate);
                    "1.00x".to_string()
                }
                Some(r1) => format!("{:.2}x", rate / r1),
            };
            println!(
                "| {:<30} | {:>2} | {:>10.0} | {:>13.0} | {:>12.0} | {:>8.0} | {:>8} |",
                label,
                p,
                rate,
                events as f64 / cpu,
                rss_kb / 1024.0,
                rows,
                speedup
            );
        }
    }
    println!(
        "\nMedian of {runs_per_case} runs per row (by wall time). `vs p=1`: events/s relative to \
         parallelism 1."
    );
    if let (Some(pattern), Some(tumble)) = (cpu_at_1.get("pattern"), cpu_at_1.get("tumble")) {
        println!(
            "The fraud pattern costs {:.2}x the CPU of the TUMBLE count.",
            pattern / tumble
        );
    }
    Ok(())
}
