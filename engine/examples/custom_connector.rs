//! Connectors written in Rust: a `sensor` source making one reading per second of event
//! time (unbounded, ending after `'readings'`), a TUMBLE job averaging them per 10 seconds,
//! and a `stdout` sink printing what the job writes. No broker needed.
//!
//! Run with `cargo run -p magnetar --example custom_connector`.

use std::sync::Arc;

use magnetar::arrow::array::{Float64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use magnetar::arrow::util::pretty::pretty_format_batches;
use magnetar::custom::{
    BoxError, CustomConnector, CustomSink, CustomSource, OptionKind, OptionScope, OptionSpec,
    TableContext, async_trait,
};
use magnetar::{Engine, EngineConfig};

/// 2024-01-01 00:00:00 UTC.
const START_MS: i64 = 1_704_067_200_000;

/// `'connector' = 'sensor'`.
struct Sensor;

#[async_trait]
impl CustomConnector for Sensor {
    fn name(&self) -> &str {
        "sensor"
    }

    fn options(&self) -> Vec<OptionSpec> {
        vec![OptionSpec {
            key: "readings",
            kind: OptionKind::Integer,
            default: Some("60"),
            required: false,
            scope: OptionScope::Source,
            description: "Readings to make before the read ends.",
        }]
    }

    async fn open_source(&self, table: TableContext) -> Result<Box<dyn CustomSource>, BoxError> {
        let readings = table.options["readings"].parse()?;
        // A restored job continues after the last reading its checkpoint covers.
        let second = match &table.resume {
            Some(position) => position.parse()?,
            None => 0,
        };
        Ok(Box::new(SensorSource {
            table,
            second,
            readings,
        }))
    }
}

struct SensorSource {
    table: TableContext,
    second: i64,
    readings: i64,
}

#[async_trait]
impl CustomSource for SensorSource {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>, BoxError> {
        if self.second >= self.readings {
            return Ok(None);
        }
        let seconds: Vec<i64> = (self.second..self.readings.min(self.second + 5)).collect();
        self.second += seconds.len() as i64;
        let names = StringArray::from(vec!["s1"; seconds.len()]);
        let celsius: Float64Array = seconds.iter().map(|s| 20.0 + (s % 7) as f64).collect();
        let times = TimestampMillisecondArray::from_iter_values(
            seconds.iter().map(|s| START_MS + s * 1000),
        );
        Ok(Some(RecordBatch::try_new(
            self.table.schema.clone(),
            vec![Arc::new(names), Arc::new(celsius), Arc::new(times)],
        )?))
    }

    fn position(&self) -> Option<String> {
        Some(self.second.to_string())
    }
}

/// `'connector' = 'stdout'`: prints every batch a job writes.
struct Stdout;

#[async_trait]
impl CustomConnector for Stdout {
    fn name(&self) -> &str {
        "stdout"
    }

    async fn open_sink(&self, table: TableContext) -> Result<Box<dyn CustomSink>, BoxError> {
        println!("writing table '{}'", table.table);
        Ok(Box::new(StdoutSink))
    }
}

struct StdoutSink;

#[async_trait]
impl CustomSink for StdoutSink {
    async fn write(&mut self, batch: &RecordBatch) -> Result<(), BoxError> {
        println!("{}", pretty_format_batches(std::slice::from_ref(batch))?);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::new(EngineConfig::default());
    engine.register_connector(Arc::new(Sensor))?;
    engine.register_connector(Arc::new(Stdout))?;
    engine
        .execute(
            "CREATE TABLE readings (sensor STRING, celsius DOUBLE, ts TIMESTAMP(3),
               WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
             WITH ('connector' = 'sensor', 'readings' = '30');
             CREATE TABLE averages (sensor STRING, window_end TIMESTAMP(3), celsius DOUBLE)
             WITH ('connector' = 'stdout');
             INSERT INTO averages
             SELECT sensor, window_end, AVG(celsius)
             FROM TABLE(TUMBLE(TABLE readings, DESCRIPTOR(ts), INTERVAL '10' SECOND))
             GROUP BY sensor, window_start, window_end",
        )
        .await?;
    // The source ends after its readings: every window fires and the job finishes.
    for job in engine.wait_for_jobs().await {
        println!(
            "job {} {:?}: {} rows written",
            job.id, job.state, job.messages_written
        );
    }
    Ok(())
}
