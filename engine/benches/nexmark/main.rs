//! Nexmark: the queries of Flink's nexmark repository (q0–q9, q11, q12) over generated
//! person, auction and bid events (see `generator.rs`) read from 4 CSV files with the
//! filesystem connector, at parallelism 1 and 2, with peak RSS, in one run. As in Flink's
//! setup, one table holds the whole event stream and `person`, `auction` and `bid` are
//! views of it, so every query reads every event; events/s counts all of them. The queries
//! run on the streaming runtime (`execution.runtime-mode` = `streaming`), as over a topic.
//! Queries
//! Magnetar's SQL does not reach yet are listed with the reason it gives.
//!
//! `cargo bench -p magnetar --bench nexmark` (release build; `-- --events N` for another
//! size, 10 million by default; `--runs N` runs per row, 1 by default; `--query qN` for one
//! query). Each run is its own process.

#[path = "../common/mod.rs"]
mod common;
mod generator;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{arg, run_child, usage};
use futures::StreamExt;
use magnetar::{Engine, EngineConfig};

const PARALLELISMS: &[usize] = &[1, 2];

/// Flink's published per-core throughput on its own cluster, where it gives one.
fn flink_per_core(query: &str) -> Option<&'static str> {
    match query {
        "q0" => Some("155 K/s"),
        "q5" => Some("22 K/s"),
        "q7" => Some("12 K/s"),
        _ => None,
    }
}

/// The queries, as Flink's nexmark repository writes them (its sinks are blackholes; here
/// the rows are counted).
const QUERIES: &[(&str, &str)] = &[
    ("q0", "SELECT auction, bidder, price, dateTime, extra FROM bid"),
    (
        "q1",
        "SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid",
    ),
    (
        "q2",
        "SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0",
    ),
    (
        "q3",
        "SELECT P.name, P.city, P.state, A.id
         FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
         WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')",
    ),
    (
        "q4",
        "SELECT Q.category, AVG(Q.final) FROM (
           SELECT MAX(B.price) AS final, A.category
           FROM auction A, bid B
           WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
           GROUP BY A.id, A.category
         ) Q GROUP BY Q.category",
    ),
    (
        "q5",
        "SELECT AuctionBids.auction, AuctionBids.num
         FROM (
           SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime
           FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
           GROUP BY auction, window_start, window_end
         ) AS AuctionBids
         JOIN (
           SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime
           FROM (
             SELECT count(*) AS num, window_start AS starttime, window_end AS endtime
             FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
             GROUP BY auction, window_start, window_end
           ) AS CountBids
           GROUP BY CountBids.starttime, CountBids.endtime
         ) AS MaxBids
         ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime
            AND AuctionBids.num >= MaxBids.maxn",
    ),
    (
        "q6",
        "SELECT Q.seller, AVG(Q.final) OVER (PARTITION BY Q.seller ORDER BY Q.dateTime ROWS BETWEEN 10 PRECEDING AND CURRENT ROW)
         FROM (
           SELECT MAX(B.price) AS final, A.seller, B.dateTime
           FROM auction AS A, bid AS B
           WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
           GROUP BY A.id, A.seller
         ) AS Q",
    ),
    (
        "q7",
        "SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra
         FROM bid B
         JOIN (
           SELECT MAX(price) AS maxprice, window_end AS dateTime
           FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
           GROUP BY window_start, window_end
         ) B1
         ON B.price = B1.maxprice
         WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND AND B1.dateTime",
    ),
    (
        "q8",
        "SELECT P.id, P.name, P.starttime
         FROM (
           SELECT id, name, window_start AS starttime, window_end AS endtime
           FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
           GROUP BY id, name, window_start, window_end
         ) P
         JOIN (
           SELECT seller, window_start AS starttime, window_end AS endtime
           FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
           GROUP BY seller, window_start, window_end
         ) A
         ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime",
    ),
    (
        "q9",
        "SELECT id, itemName, description, initialBid, reserve, dateTime, expires, seller, category, extra,
                auction, bidder, price, bid_dateTime, bid_extra
         FROM (
           SELECT A.*, B.auction, B.bidder, B.price, B.dateTime AS bid_dateTime, B.extra AS bid_extra,
             ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.dateTime ASC) AS rownum
           FROM auction A, bid B
           WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
         ) WHERE rownum <= 1",
    ),
    (
        "q11",
        "SELECT B.bidder, count(*) AS bid_count, B.window_start AS starttime, B.window_end AS endtime
         FROM TABLE(SESSION(TABLE bid PARTITION BY bidder, DESCRIPTOR(dateTime), INTERVAL '10' SECOND)) B
         GROUP BY B.bidder, B.window_start, B.window_end",
    ),
    (
        "q12",
        "SELECT B.bidder, count(*) AS bid_count, window_start, window_end
         FROM TABLE(TUMBLE(TABLE (SELECT *, PROCTIME() AS p_time FROM bid), DESCRIPTOR(p_time), INTERVAL '10' SECOND)) B
         GROUP BY B.bidder, window_start, window_end",
    ),
];

/// The one stream and its three views.
fn ddl(dir: &Path) -> String {
    format!(
        "SET 'execution.runtime-mode' = 'streaming';
         CREATE TABLE nexmark ({}, WATERMARK FOR date_time AS date_time - INTERVAL '4' SECOND)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE VIEW person AS
           SELECT p_id AS id, p_name AS name, p_email AS emailAddress, p_credit_card AS creditCard,
                  p_city AS city, p_state AS state, date_time AS dateTime, p_extra AS extra
           FROM nexmark WHERE event_type = 0;
         CREATE VIEW auction AS
           SELECT a_id AS id, a_item_name AS itemName, a_description AS description,
                  a_initial_bid AS initialBid, a_reserve AS reserve, date_time AS dateTime,
                  a_expires AS expires, a_seller AS seller, a_category AS category, a_extra AS extra
           FROM nexmark WHERE event_type = 1;
         CREATE VIEW bid AS
           SELECT b_auction AS auction, b_bidder AS bidder, b_price AS price, b_channel AS channel,
                  b_url AS url, date_time AS dateTime, b_extra AS extra
           FROM nexmark WHERE event_type = 2;",
        generator::COLUMNS,
        dir.display()
    )
}

fn engine(parallelism: usize) -> Engine {
    Engine::new(EngineConfig {
        parallelism: Some(parallelism),
        ..EngineConfig::default()
    })
}

/// Runs one query over the files in `dir` at `parallelism` and prints
/// `rows wall_s cpu_s rss_kb`.
async fn run_case(
    query: &str,
    dir: &Path,
    parallelism: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let sql = QUERIES
        .iter()
        .find(|(q, _)| *q == query)
        .map(|(_, sql)| *sql)
        .ok_or_else(|| format!("no query {query}"))?;
    let started = Instant::now();
    let engine = engine(parallelism);
    engine.execute(&ddl(dir)).await?;
    let mut rows = 0usize;
    let mut stream = engine.query(sql).await?;
    while let Some(batch) = stream.next().await {
        rows += batch?.num_rows();
    }
    let wall = started.elapsed().as_secs_f64();
    let (cpu, rss_kb) = usage();
    println!("{rows} {wall} {cpu} {rss_kb}");
    Ok(())
}

/// Why Magnetar does not run `sql` (planning only, over an empty stream), if it does not.
async fn refusal(sql: &str, dir: &Path) -> Option<String> {
    let engine = engine(1);
    if let Err(e) = engine.execute(&ddl(dir)).await {
        return Some(e.to_string());
    }
    match engine.execute(&format!("EXPLAIN {sql}")).await {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let (Some(case), Some(file)) = (
        arg::<String>(&args, "--case")?,
        arg::<String>(&args, "--file")?,
    ) {
        let parallelism = arg::<usize>(&args, "--parallelism")?.unwrap_or(1);
        return runtime.block_on(run_case(&case, Path::new(&file), parallelism));
    }
    let events: u64 = arg(&args, "--events")?.unwrap_or(10_000_000);
    let runs_per_case: usize = arg(&args, "--runs")?.unwrap_or(1).max(1);
    let only: Option<String> = arg(&args, "--query")?;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-nexmark-{events}-4"));
    if !dir.exists() {
        eprintln!(
            "generating {events} Nexmark events into 4 files in {}",
            dir.display()
        );
        std::fs::create_dir_all(&dir)?;
        let parts: Vec<PathBuf> = (0..4).map(|i| dir.join(format!("part-{i}.csv"))).collect();
        generator::generate(&parts, events)?;
    }
    let bytes: u64 = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{events} Nexmark events ({} MiB of CSV in 4 files, {} s of event time at {} events/s), {cores} cores\n",
        bytes >> 20,
        events / generator::EVENTS_PER_SECOND,
        generator::EVENTS_PER_SECOND
    );
    println!(
        "| {:<5} | {:>2} | {:>10} | {:>13} | {:>12} | {:>9} | {:>8} | {:>16} |",
        "query",
        "p",
        "events/s",
        "events/s/core",
        "peak RSS MiB",
        "rows out",
        "vs p=1",
        "Flink per core"
    );
    println!(
        "|{:-<7}|{:->4}|{:->12}|{:->15}|{:->14}|{:->11}|{:->10}|{:->18}|",
        "", "", "", "", "", "", "", ""
    );
    let exe = std::env::current_exe()?;
    let mut refused = Vec::new();
    for (query, sql) in QUERIES {
        if only.as_deref().is_some_and(|q| q != *query) {
            continue;
        }
        if let Some(reason) = runtime.block_on(refusal(sql, &dir)) {
            refused.push((*query, reason));
            continue;
        }
        let mut rate_at_1 = None;
        for &p in PARALLELISMS {
            let mut runs = Vec::new();
            for _ in 0..runs_per_case {
                runs.push(run_child(&exe, query, &dir, p)?);
            }
            runs.sort_by(|a, b| a[1].total_cmp(&b[1]));
            let rss_kb = runs.iter().map(|r| r[3]).fold(0.0, f64::max);
            let [rows, wall, cpu, _] = runs[runs.len() / 2];
            let rate = events as f64 / wall;
            let speedup = match rate_at_1 {
                None => {
                    rate_at_1 = Some(rate);
                    "1.00x".to_string()
                }
                Some(r1) => format!("{:.2}x", rate / r1),
            };
            println!(
                "| {:<5} | {:>2} | {:>10.0} | {:>13.0} | {:>12.0} | {:>9.0} | {:>8} | {:>16} |",
                query,
                p,
                rate,
                events as f64 / cpu,
                rss_kb / 1024.0,
                rows,
                speedup,
                flink_per_core(query).unwrap_or("")
            );
        }
    }
    println!(
        "\nMedian of {runs_per_case} run(s) per row (by wall time). events/s counts every event of \
         the stream (each query reads them all, as in Flink's setup). `vs p=1`: events/s relative \
         to parallelism 1. Flink's figures are its published ones, on its own cluster."
    );
    if !refused.is_empty() {
        println!("\nNot run yet (Magnetar's reason):");
        for (query, reason) in refused {
            let reason: String = reason.chars().take(160).collect();
            let flink = if query == "q6" {
                " (Flink's nexmark does not run q6 either)"
            } else {
                ""
            };
            println!("- {query}{flink}: {reason}");
        }
    }
    Ok(())
}
