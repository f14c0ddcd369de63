//! Checkpoint cost of window state: 1 million keys in an open TUMBLE window with
//! `count(*)`-style and `sum` aggregates (DataFusion accumulators), snapshotted into an
//! operator state, encoded as a checkpoint stores it, written to and read back from a local
//! checkpoint store, and restored into a fresh operator. Prints a table.
//!
//! `cargo bench -p magnetar --bench checkpoint` (`-- --keys N` to change the key count).

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::col;
use magnetar::checkpoint::{CheckpointId, CheckpointStore, OperatorState};
use magnetar::operators::Operator;
use magnetar::operators::window::{AggregateSpec, SlicedWindowAggregate, Slicer};
use magnetar::runtime::{EventTime, Watermark};
use magnetar::sql::plan::{AggregateItem, GroupItem};
use magnetar::sql::window::{WindowKind, WindowSpec};

fn input_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("user", DataType::Utf8, false),
        Field::new("x", DataType::Int64, false),
        Field::new(
            "slice_end",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
    ]))
}

/// TUMBLE(1 min): count(x), sum(x) per user.
fn operator() -> SlicedWindowAggregate {
    let input = input_schema();
    let aggregate = |f, alias: &str| AggregateItem {
        function: Arc::new(
            AggregateExprBuilder::new(f, vec![col("x", &input).expect("x")])
                .schema(input.clone())
                .alias(alias)
                .build()
                .expect("aggregate"),
        ),
        filter: None,
    };
    let user = col("user", &input).expect("user");
    let spec = AggregateSpec::new(
        vec![user.clone()],
        vec![
            aggregate(count_udaf(), "cnt"),
            aggregate(sum_udaf(), "total"),
        ],
        &input,
    )
    .expect("spec");
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    let output = Arc::new(Schema::new(vec![
        Field::new("window_start", ts.clone(), false),
        Field::new("window_end", ts, false),
        Field::new("user", DataType::Utf8, false),
        Field::new("cnt", DataType::Int64, false),
        Field::new("total", DataType::Int64, true),
    ]));
    let slicer = Slicer::new(&WindowSpec {
        kind: WindowKind::Tumble { size: 60_000 },
        offset: 0,
    })
    .expect("sliced");
    SlicedWindowAggregate::new(
        slicer,
        spec,
        vec![
            GroupItem::WindowStart,
            GroupItem::WindowEnd,
            GroupItem::Key(user, "user_id".into()),
        ],
        output,
        2,
        Arc::default(),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let keys: usize = args
        .iter()
        .position(|a| a == "--keys")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut op = operator();
    // Two rows per key, in batches of 8,192, all in the window [0, 60 s).
    let batch_rows = 8192;
    for start in (0..keys * 2).step_by(batch_rows) {
        let rows: Vec<usize> = (start..(start + batch_rows).min(keys * 2)).collect();
        let batch = RecordBatch::try_new(
            input_schema(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|i| format!("user-{:08}", i % keys)),
                )),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|i| *i as i64))),
                Arc::new(TimestampMillisecondArray::from_iter_values(
                    rows.iter().map(|_| 60_000),
                )),
            ],
        )?;
        op.process(0, batch)?;
    }
    op.on_watermark(Watermark(EventTime(1_000)))?;
    let live = op.state_size();

    let t = Instant::now();
    let state = op.snapshot()?;
    let snapshot = t.elapsed();
    let t = Instant::now();
    let bytes = state.encode()?;
    let encode = t.elapsed();

    let dir = tempfile::tempdir()?;
    let store = CheckpointStore::open(dir.path().to_str().unwrap_or("."), "bench", 2)?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let t = Instant::now();
    runtime.block_on(async {
        let mut writer = store.begin(CheckpointId(1));
        writer.put("window-0", bytes.clone()).await?;
        writer.commit(serde_json::json!({})).await.map(|_| ())
    })?;
    let write = t.elapsed();
    let t = Instant::now();
    let read = runtime.block_on(async {
        let latest = store.latest().await?.ok_or("no checkpoint")?;
        Ok::<_, Box<dyn std::error::Error>>(store.read(&latest, "window-0").await?)
    })?;
    let read_time = t.elapsed();
    let t = Instant::now();
    let mut restored = operator();
    restored.restore(OperatorState::decode(&read)?)?;
    let restore = t.elapsed();
    let fired = restored.on_watermark(Watermark::END)?;
    let rows: usize = fired.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, keys, "every key's window fires after the restore");

    println!(
        "Window state checkpoint, TUMBLE 1 min, count + sum per key, {keys} keys (one open window):"
    );
    println!("| step | time ms | size MiB |\n|---|---:|---:|");
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!("| live state (accumulators) | | {:.1} |", mib(live));
    println!(
        "| snapshot (seal into partial aggregates) | {:.0} | |",
        snapshot.as_secs_f64() * 1e3
    );
    println!(
        "| encode (Arrow IPC) | {:.0} | {:.1} |",
        encode.as_secs_f64() * 1e3,
        mib(bytes.len())
    );
    println!(
        "| write to a local checkpoint store (+ manifest) | {:.0} | |",
        write.as_secs_f64() * 1e3
    );
    println!(
        "| read back, CRC32C checked | {:.0} | |",
        read_time.as_secs_f64() * 1e3
    );
    println!(
        "| decode + restore into a fresh operator | {:.0} | |",
        restore.as_secs_f64() * 1e3
    );
    println!(
        "({:.1} bytes per key in the checkpoint)",
        bytes.len() as f64 / keys as f64
    );
    Ok(())
}
