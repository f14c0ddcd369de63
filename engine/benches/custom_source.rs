//! Rows from Rust into SQL: a registered custom source read by a batch `count(*)` and by a
//! continuous TUMBLE job (into a custom sink), next to the source drained alone and to the
//! same rows appended to a `memory` table with `Engine::append`. Prints rows per second
//! (median of the runs).
//!
//! `cargo bench -p magnetar --bench custom_source` (`-- --rows N`, `--runs N`).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use common::arg;
use futures::StreamExt;
use magnetar::arrow::array::{Int64Array, RecordBatch, TimestampMillisecondArray};
use magnetar::arrow::datatypes::SchemaRef;
use magnetar::custom::{
    BoxError, CustomConnector, CustomSink, CustomSource, TableContext, async_trait,
};
use magnetar::{Engine, EngineConfig};

const BATCH: u64 = 8192;
const USERS: u64 = 10_000;
/// Event time covered per second of input: 20,000 clicks per second.
const EVENTS_PER_SECOND: u64 = 20_000;
/// 2025-11-24 10:00:00 UTC.
const START_MS: u64 = 1_763_978_400_000;

/// Rows `first..first + n` of the generated clicks: (user_id, ts).
fn clicks(schema: &SchemaRef, first: u64, n: u64) -> Result<RecordBatch, BoxError> {
    let users = Int64Array::from_iter_values((first..first + n).map(|i| (i * 7919 % USERS) as i64));
    let times = TimestampMillisecondArray::from_iter_values(
        (first..first + n).map(|i| (START_MS + i * 1000 / EVENTS_PER_SECOND) as i64),
    );
    Ok(RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(users), Arc::new(times)],
    )?)
}

struct Clicks {
    rows: u64,
    bounded: bool,
}

#[async_trait]
impl CustomConnector for Clicks {
    fn name(&self) -> &str {
        if self.bounded {
            "clicks"
        } else {
            "click-stream"
        }
    }

    fn is_bounded(&self) -> bool {
        self.bounded
    }

    async fn open_source(&self, table: TableContext) -> Result<Box<dyn CustomSource>, BoxError> {
        Ok(Box::new(ClickSource {
            schema: table.schema,
            next: 0,
            rows: self.rows,
        }))
    }
}

struct ClickSource {
    schema: SchemaRef,
    next: u64,
    rows: u64,
}

#[async_trait]
impl CustomSource for ClickSource {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>, BoxError> {
        if self.next >= self.rows {
            return Ok(None);
        }
        let n = BATCH.min(self.rows - self.next);
        let batch = clicks(&self.schema, self.next, n)?;
        self.next += n;
        Ok(Some(batch))
    }

    fn position(&self) -> Option<String> {
        Some(self.next.to_string())
    }
}

/// Counts the rows a job writes.
struct Count(Arc<AtomicU64>);

#[async_trait]
impl CustomConnector for Count {
    fn name(&self) -> &str {
        "count"
    }

    async fn open_sink(&self, _table: TableContext) -> Result<Box<dyn CustomSink>, BoxError> {
        Ok(Box::new(CountSink(self.0.clone())))
    }
}

struct CountSink(Arc<AtomicU64>);

#[async_trait]
impl CustomSink for CountSink {
    async fn write(&mut self, batch: &RecordBatch) -> Result<(), BoxError> {
        self.0.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        Ok(())
    }
}

async fn count_star(engine: &Engine, table: &str) -> Result<i64, BoxError> {
    let mut stream = engine
        .query(&format!("SELECT count(*) FROM {table}"))
        .await?;
    let batch = stream.next().await.ok_or("no result")??;
    let counts = batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or("count(*) is not BIGINT")?;
    Ok(counts.value(0))
}

async fn run(rows: u64) -> Result<[f64; 4], BoxError> {
    let engine = Engine::new(EngineConfig::default());
    let written = Arc::new(AtomicU64::new(0));
    engine.register_connector(Arc::new(Clicks {
        rows,
        bounded: true,
    }))?;
    engine.register_connector(Arc::new(Clicks {
        rows,
        bounded: false,
    }))?;
    engine.register_connector(Arc::new(Count(written.clone())))?;
    engine
        .execute(
            "CREATE TABLE clicks (user_id BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'clicks');
             CREATE TABLE click_stream (user_id BIGINT, ts TIMESTAMP(3),
               WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('connector' = 'click-stream');
             CREATE TABLE per_user (window_start TIMESTAMP(3), user_id BIGINT, clicks BIGINT)
               WITH ('connector' = 'count');
             CREATE TABLE appended (user_id BIGINT, ts TIMESTAMP(3))
               WITH ('connector' = 'memory', 'scan.bounded' = 'true');",
        )
        .await?;

    // The source alone: what generating the batches costs.
    let schema = engine.table("clicks")?.schema.clone();
    let started = Instant::now();
    let mut source = ClickSource {
        schema: schema.clone(),
        next: 0,
        rows,
    };
    let mut drained = 0;
    while let Some(batch) = source.next_batch().await? {
        drained += batch.num_rows() as u64;
    }
    let alone = started.elapsed().as_secs_f64();
    assert_eq!(drained, rows);

    let started = Instant::now();
    let counted = count_star(&engine, "clicks").await?;
    let batch_query = started.elapsed().as_secs_f64();
    assert_eq!(counted as u64, rows);

    let started = Instant::now();
    engine
        .execute(
            "SET 'pipeline.name' = 'tumble';
             INSERT INTO per_user
             SELECT window_start, user_id, count(*)
             FROM TABLE(TUMBLE(TABLE click_stream, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
             GROUP BY window_start, window_end, user_id",
        )
        .await?;
    let job = engine.wait_for_job("tumble").await?;
    let tumble = started.elapsed().as_secs_f64();
    if job.messages_read != rows || written.load(Ordering::Relaxed) == 0 {
        return Err(format!("the job read {} of {rows} rows", job.messages_read).into());
    }

    let started = Instant::now();
    let mut first = 0;
    while first < rows {
        let n = BATCH.min(rows - first);
        engine.append("appended", &clicks(&schema, first, n)?)?;
        first += n;
    }
    let counted = count_star(&engine, "appended").await?;
    let appended = started.elapsed().as_secs_f64();
    assert_eq!(counted as u64, rows);
    engine.shutdown().await;
    Ok([alone, batch_query, tumble, appended])
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let rows: u64 = arg(&args, "--rows")?.unwrap_or(10_000_000);
    let runs: usize = arg(&args, "--runs")?.unwrap_or(3).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut seconds: Vec<[f64; 4]> = Vec::new();
    for _ in 0..runs {
        seconds.push(runtime.block_on(run(rows))?);
    }
    let labels = [
        "custom source drained alone (no engine)",
        "custom source, batch SELECT count(*)",
        "custom source, TUMBLE 1 min count per user job into a custom sink",
        "Engine::append into a memory table, then SELECT count(*)",
    ];
    println!(
        "{rows} rows (user_id BIGINT, ts TIMESTAMP(3)) in batches of {BATCH}, {USERS} users, median of {runs} run(s):"
    );
    println!("| path | rows/s | seconds |");
    println!("|---|---:|---:|");
    for (i, label) in labels.iter().enumerate() {
        let mut column: Vec<f64> = seconds.iter().map(|s| s[i]).collect();
        column.sort_by(|a, b| a.total_cmp(b));
        let median = column[column.len() / 2];
        println!("| {label} | {:.0} | {median:.2} |", rows as f64 / median);
    }
    Ok(())
}
