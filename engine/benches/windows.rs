//! Window aggregation throughput: TUMBLE, HOP and SESSION counts over generated click events
//! read from one CSV file and from the same events in 4 files, at parallelism 1 and 2, next to
//! DataFusion's own batch GROUP BY of the same file.
//!
//! `cargo bench -p magnetar --bench windows` (release build; add `-- --events N` for another
//! size, `--runs N` for another number of runs per query, 3 by default). Each run is its own
//! process, so its peak RSS is its own; the table gives the median run's events per second of
//! wall time and per CPU-second (per core), the peak RSS, the rows each query produced, and
//! the speed-up of parallelism 2 over 1 (same query, same input, same run of the bench).

mod common;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{arg, run_child, usage};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::{CsvReadOptions, SessionContext};
use futures::StreamExt;
use magnetar::{Engine, EngineConfig};

/// Event time covered per second of generated input: 10,000 clicks per second.
const EVENTS_PER_SECOND: u64 = 10_000;
const USERS: u64 = 1_000;
/// 2025-11-24 10:00:00 UTC.
const START_MS: u64 = 1_763_978_400_000;

/// The cases, in the order of the table.
const CASES: &[(&str, &str)] = &[
    ("DataFusion batch GROUP BY user, minute", "batch"),
    ("Magnetar scan only (count(*))", "scan"),
    ("TUMBLE 1 min", "tumble"),
    ("HOP 1 min, slide 1 s (60 panes)", "hop"),
    ("SESSION gap 10 s", "session"),
];

/// The inputs the window cases read: the events in one file, and the same events dealt
/// round-robin into 4 files (like the partitions of a topic: each covers the whole time).
const FILES: &[(&str, usize)] = &[("1 file", 1), ("4 files", 4)];

/// The parallelisms of the window cases.
const PARALLELISMS: &[usize] = &[1, 2];

fn window_sql(case: &str) -> Option<&'static str> {
    Some(match case {
        "tumble" => {
            "SELECT user_id, window_start, window_end, count(*) AS clicks
             FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
             GROUP BY window_start, window_end, user_id"
        }
        "hop" => {
            "SELECT user_id, window_start, window_end, count(*) AS clicks
             FROM TABLE(HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '1' MINUTE))
             GROUP BY window_start, window_end, user_id"
        }
        "session" => {
            "SELECT user_id, window_start, window_end, count(*) AS clicks
             FROM TABLE(SESSION(TABLE clicks PARTITION BY user_id, DESCRIPTOR(ts), INTERVAL '10' SECOND))
             GROUP BY window_start, window_end, user_id"
        }
        "scan" => "SELECT count(*) FROM clicks",
        _ => return None,
    })
}

const BATCH_SQL: &str =
    "SELECT user_id, date_bin(INTERVAL '1 minute', ts) AS minute, count(*) AS clicks
     FROM clicks GROUP BY user_id, date_bin(INTERVAL '1 minute', ts)";

/// `YYYY-MM-DD HH:MM:SS.mmm`.
fn timestamp(ms: u64) -> String {
    datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

/// Writes `events` clicks as CSV (`user_id,url,ts`, no header) into `paths`, dealt in turn:
/// 10,000 per second of event time, users active in alternating 30-second stretches (so
/// sessions end), arrival up to 2 s out of order.
fn generate(paths: &[PathBuf], events: u64) -> std::io::Result<()> {
    let urls = [
        "/",
        "/search",
        "/product/17",
        "/product/42",
        "/cart",
        "/checkout",
    ];
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
    for i in 0..events {
        let out = &mut outs[(i % paths.len() as u64) as usize];
        let base = START_MS + i * 1000 / EVENTS_PER_SECOND;
        let mut user = next(USERS);
        if ((base - START_MS) / 30_000 + user) % 2 == 1 {
            user = (user + 1) % USERS;
        }
        let ts = base + next(2000);
        let url = urls[next(urls.len() as u64) as usize];
        writeln!(out, "user-{user:04},{url},{}", timestamp(ts))?;
    }
    for out in &mut outs {
        out.flush()?;
    }
    Ok(())
}

/// Runs one case over `file` (a file or a directory of files) at `parallelism` in this
/// process and prints `rows wall_s cpu_s rss_kb`.
async fn run_case(
    case: &str,
    file: &Path,
    parallelism: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut rows = 0usize;
    if let Some(sql) = window_sql(case) {
        let engine = Engine::new(EngineConfig {
            parallelism: Some(parallelism),
            ..EngineConfig::default()
        });
        engine
            .execute(&format!(
                "CREATE TABLE clicks (
                   user_id STRING, url STRING, ts TIMESTAMP(3),
                   WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
                 ) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv')",
                file.display()
            ))
            .await?;
        let mut stream = engine.query(sql).await?;
        while let Some(batch) = stream.next().await {
            rows += batch?.num_rows();
        }
    } else {
        let ctx = SessionContext::new();
        let schema = Schema::new(vec![
            Field::new("user_id", DataType::Utf8, true),
            Field::new("url", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]);
        ctx.register_csv(
            "clicks",
            &file.to_string_lossy(),
            CsvReadOptions::new().has_header(false).schema(&schema),
        )
        .await?;
        let mut stream = ctx.sql(BATCH_SQL).await?.execute_stream().await?;
        while let Some(batch) = stream.next().await {
            rows += batch?.num_rows();
        }
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
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join(format!("bench-clicks-{events}.csv"));
    let split = dir.join(format!("bench-clicks-{events}-4"));
    if !file.exists() {
        eprintln!("generating {events} click events into {}", file.display());
        generate(std::slice::from_ref(&file), events)?;
    }
    if !split.exists() {
        eprintln!("generating them again into 4 files in {}", split.display());
        std::fs::create_dir_all(&split)?;
        let parts: Vec<PathBuf> = (0..4)
            .map(|i| split.join(format!("part-{i}.csv")))
            .collect();
        generate(&parts, events)?;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{events} click events ({} MiB of CSV), {USERS} users, {cores} cores\n",
        std::fs::metadata(&file)?.len() >> 20
    );
    println!(
        "| {:<34} | {:<7} | {:>2} | {:>10} | {:>13} | {:>12} | {:>8} | {:>8} | {:>8} |",
        "query",
        "input",
        "p",
        "events/s",
        "events/s/core",
        "peak RSS MiB",
        "rows out",
        "vs batch",
        "vs p=1"
    );
    println!(
        "|{:-<36}|{:-<9}|{:->4}|{:->12}|{:->15}|{:->14}|{:->10}|{:->10}|{:->10}|",
        "", "", "", "", "", "", "", "", ""
    );
    let exe = std::env::current_exe()?;
    let mut batch_rate = None;
    let mut cpu_of = std::collections::HashMap::new();
    for (label, case) in CASES {
        let windowed = window_sql(case).is_some() && *case != "scan";
        let inputs: Vec<(&str, &PathBuf)> = if windowed {
            FILES
                .iter()
                .map(|(name, n)| (*name, if *n == 1 { &file } else { &split }))
                .collect()
        } else {
            vec![("1 file", &file)]
        };
        for (input, path) in inputs {
            let mut rate_at_1 = None;
            let parallelisms: &[usize] = if windowed { PARALLELISMS } else { &[1] };
            for &p in parallelisms {
                let mut runs = Vec::new();
                for _ in 0..runs_per_case {
                    runs.push(run_child(&exe, case, path, p)?);
                }
                // The median run by wall time; the highest peak RSS of all runs.
                runs.sort_by(|a, b| a[1].total_cmp(&b[1]));
                let rss_kb = runs.iter().map(|r| r[3]).fold(0.0, f64::max);
                let [rows, wall, cpu, _] = runs[runs.len() / 2];
                if p == 1 && input == "1 file" {
                    cpu_of.insert(*case, cpu);
                }
                let rate = events as f64 / wall;
                let per_core = events as f64 / cpu;
                let vs = match batch_rate {
                    None => {
                        batch_rate = Some(per_core);
                        "1.00x".to_string()
                    }
                    Some(b) => format!("{:.2}x", b / per_core),
                };
                let speedup = match rate_at_1 {
                    None => {
                        rate_at_1 = Some(rate);
                        if windowed {
                            "1.00x".to_string()
                        } else {
                            String::new()
                        }
                    }
                    Some(r1) => format!("{:.2}x", rate / r1),
                };
                println!(
                    "| {:<34} | {:<7} | {:>2} | {:>10.0} | {:>13.0} | {:>12.0} | {:>8.0} | {:>8} | {:>8} |",
                    label,
                    input,
                    p,
                    rate,
                    per_core,
                    rss_kb / 1024.0,
                    rows,
                    vs,
                    speedup
                );
            }
        }
    }
    println!(
        "\nMedian of {runs_per_case} runs per row (by wall time). `vs batch`: CPU time per event \
         relative to DataFusion's batch GROUP BY (lower is better). `vs p=1`: events/s relative \
         to parallelism 1 on the same input."
    );
    if let (Some(hop), Some(tumble)) = (cpu_of.get("hop"), cpu_of.get("tumble")) {
        println!(
            "HOP (60 panes) costs {:.2}x the CPU of TUMBLE.",
            hop / tumble
        );
    }
    Ok(())
}
