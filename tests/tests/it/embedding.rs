//! The embedding API without a broker: a registered aggregate function in a HOP window job
//! (partial states merged across slices), fed by rows appended from Rust.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, AsArray, Float64Array, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Accumulator, Volatility, create_udaf};
use futures::StreamExt;
use magnetar::{Engine, EngineConfig};

/// `spread(x)`: max(x) - min(x), with a (min, max) state that merges.
#[derive(Debug, Default)]
struct Spread {
    min: Option<f64>,
    max: Option<f64>,
}

impl Spread {
    fn add(&mut self, min: f64, max: f64) {
        self.min = Some(self.min.map_or(min, |m| m.min(min)));
        self.max = Some(self.max.map_or(max, |m| m.max(max)));
    }
}

impl Accumulator for Spread {
    fn update_batch(&mut self, values: &[ArrayRef]) -> datafusion::error::Result<()> {
        for v in values[0].as_primitive::<Float64Type>().iter().flatten() {
            self.add(v, v);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> datafusion::error::Result<ScalarValue> {
        Ok(ScalarValue::Float64(
            self.min.zip(self.max).map(|(lo, hi)| hi - lo),
        ))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> datafusion::error::Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Float64(self.min),
            ScalarValue::Float64(self.max),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> datafusion::error::Result<()> {
        let mins = states[0].as_primitive::<Float64Type>();
        let maxs = states[1].as_primitive::<Float64Type>();
        for (lo, hi) in mins.iter().zip(maxs.iter()) {
            if let (Some(lo), Some(hi)) = (lo, hi) {
                self.add(lo, hi);
            }
        }
        Ok(())
    }
}

/// 2024-01-01 00:00:00 UTC.
const T0_MS: i64 = 1_704_067_200_000;

#[tokio::test(flavor = "multi_thread")]
async fn a_registered_aggregate_runs_in_a_hop_window_job_fed_from_rust() {
    let engine = Engine::new(EngineConfig::default());
    engine.register_udaf(create_udaf(
        "spread",
        vec![DataType::Float64],
        Arc::new(DataType::Float64),
        Volatility::Immutable,
        Arc::new(|_| Ok(Box::new(Spread::default()))),
        Arc::new(vec![DataType::Float64, DataType::Float64]),
    ));
    engine
        .execute(
            "CREATE TABLE readings (sensor STRING, celsius DOUBLE, ts TIMESTAMP(3),
               WATERMARK FOR ts AS ts) WITH ('connector' = 'memory');
             CREATE TABLE spreads (sensor STRING, window_start TIMESTAMP(3), spread DOUBLE)
               WITH ('connector' = 'memory', 'scan.bounded' = 'true');
             INSERT INTO spreads SELECT sensor, window_start, spread(celsius)
               FROM TABLE(HOP(TABLE readings, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
               GROUP BY sensor, window_start, window_end",
        )
        .await
        .expect("job starts");
    let schema = engine.table("readings").expect("table").schema.clone();
    let rows = [(1, 10.0), (3, 14.0), (7, 11.0), (21, 0.0)];
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["a"; rows.len()])),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )),
            Arc::new(TimestampMillisecondArray::from(
                rows.iter().map(|r| T0_MS + r.0 * 1000).collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("batch");
    engine.append("readings", &batch).expect("append");
    engine.settle().await.expect("settle");

    let batches: Vec<RecordBatch> = engine
        .query("SELECT sensor, window_start, spread FROM spreads ORDER BY window_start")
        .await
        .expect("query")
        .map(|b| b.expect("rows"))
        .collect()
        .await;
    let text = magnetar::arrow::util::pretty::pretty_format_batches(&batches)
        .expect("format")
        .to_string();
    // Watermark 00:00:21: the windows ending at 00:00:05, :10 and :15 fired ([10, 20) has
    // no rows). [0, 10) merges the slices [0, 5) and [5, 10).
    let expected = "\
+--------+---------------------+--------+
| sensor | window_start        | spread |
+--------+---------------------+--------+
| a      | 2023-12-31T23:59:55 | 4.0    |
| a      | 2024-01-01T00:00:00 | 4.0    |
| a      | 2024-01-01T00:00:05 | 0.0    |
+--------+---------------------+--------+";
    assert_eq!(text, expected);
}
