//! What the window operators' snapshot tests share: a `count(x), sum(x) GROUP BY user`
//! aggregate, its output schema, and a run-and-collect driver.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
};
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::physical_expr::aggregate::AggregateExprBuilder;
use datafusion::physical_expr::expressions::col;
use magnetar_sql::plan::{AggregateItem, GroupItem, PhysicalExprRef};

use super::AggregateSpec;
use crate::checkpoint::OperatorState;
use crate::operators::Operator;
use crate::runtime::Watermark;

/// `count(x) AS cnt, sum(x) AS total` grouped by `user` over `input`, and the group items
/// `window_start, window_end, user`.
pub fn count_and_sum_by_user(input: &SchemaRef) -> (AggregateSpec, Vec<GroupItem>) {
    let aggregate = |f, alias: &str| AggregateItem {
        function: Arc::new(
            AggregateExprBuilder::new(f, vec![col("x", input).expect("x")])
                .schema(input.clone())
                .alias(alias)
                .build()
                .expect("aggregate"),
        ),
        filter: None,
    };
    let user: PhysicalExprRef = col("user", input).expect("user");
    let spec = AggregateSpec::new(
        vec![user.clone()],
        vec![
            aggregate(count_udaf(), "cnt"),
            aggregate(sum_udaf(), "total"),
        ],
        input,
    )
    .expect("spec");
    (
        spec,
        vec![
            GroupItem::WindowStart,
            GroupItem::WindowEnd,
            GroupItem::Key(user, "user".into()),
        ],
    )
}

/// `window_start, window_end, user, cnt, total`.
pub fn output_schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    Arc::new(Schema::new(vec![
        Field::new("window_start", ts.clone(), false),
        Field::new("window_end", ts, false),
        Field::new("user", DataType::Utf8, false),
        Field::new("cnt", DataType::Int64, false),
        Field::new("total", DataType::Int64, true),
    ]))
}

/// Output rows as sorted text: `start..end user cnt total`.
pub fn rows_of(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            let ws = b.column(0).as_primitive::<TimestampMillisecondType>();
            let we = b.column(1).as_primitive::<TimestampMillisecondType>();
            let users = b.column(2).as_string::<i32>();
            let cnt = b.column(3).as_primitive::<Int64Type>();
            let total = b.column(4).as_primitive::<Int64Type>();
            (0..b.num_rows())
                .map(|r| {
                    format!(
                        "{}..{} {} {} {}",
                        ws.value(r),
                        we.value(r),
                        users.value(r),
                        cnt.value(r),
                        total.value(r)
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    rows.sort();
    rows
}

/// Feeds each batch and then its watermark; collects what fires.
pub fn feed(
    op: &mut impl Operator,
    input: &[(RecordBatch, Watermark)],
    out: &mut Vec<RecordBatch>,
) {
    for (batch, watermark) in input {
        assert!(op.process(0, batch.clone()).expect("process").is_none());
        out.extend(op.on_watermark(*watermark).expect("watermark"));
    }
}

/// Runs `input` straight through one operator, then, for every cut, through a snapshot at
/// the cut: the operator that took it goes on, and a fresh one restored from its bytes goes
/// on; both must give the straight run's output. Returns that output.
pub fn assert_snapshots_change_nothing<O: Operator>(
    make: impl Fn() -> O,
    input: &[(RecordBatch, Watermark)],
) -> Vec<String> {
    let mut straight = Vec::new();
    let mut op = make();
    feed(&mut op, input, &mut straight);
    straight.extend(op.on_watermark(Watermark::END).expect("end"));
    let expected = rows_of(&straight);
    for cut in 1..input.len() {
        let mut out = Vec::new();
        let mut first = make();
        feed(&mut first, &input[..cut], &mut out);
        let state = first.snapshot().expect("snapshot");
        assert!(
            !state.batches.is_empty(),
            "open windows hold state at {cut}"
        );
        let mut continued = out.clone();
        feed(&mut first, &input[cut..], &mut continued);
        continued.extend(first.on_watermark(Watermark::END).expect("end"));
        assert_eq!(rows_of(&continued), expected, "after a snapshot at {cut}");

        // Through bytes, as a checkpoint stores it, into a fresh operator.
        let bytes = state.encode().expect("encode");
        let mut second = make();
        second
            .restore(OperatorState::decode(&bytes).expect("decode"))
            .expect("restore");
        feed(&mut second, &input[cut..], &mut out);
        out.extend(second.on_watermark(Watermark::END).expect("end"));
        assert_eq!(rows_of(&out), expected, "restored at {cut}");
    }
    expected
}

/// The rows of `batch` whose key (column `key_column`) is in `range`.
fn rows_of_key_groups(
    batch: &RecordBatch,
    key_column: usize,
    hasher: &crate::runtime::KeyHasher,
    range: crate::runtime::KeyGroupRange,
) -> RecordBatch {
    let groups = hasher
        .groups(&[batch.column(key_column).clone()])
        .expect("key groups");
    let mask: datafusion::arrow::array::BooleanArray =
        groups.iter().map(|g| Some(range.contains(*g))).collect();
    datafusion::arrow::compute::filter_record_batch(batch, &mask).expect("filter")
}

/// For 1 → 3, 2 → 1 and 3 → 2 instances: runs `input` through `from` keyed instances (each
/// gets its key groups' rows, as a hash exchange would deliver them), snapshots all of them at
/// every cut, restores the snapshots into `to` fresh instances (each from every snapshot
/// holding some of its key groups, only those), and feeds them the rest: together they must
/// give the output of one operator that saw everything.
pub fn assert_rescaling_changes_nothing<O: Operator>(
    make: impl Fn() -> O,
    keyed: impl Fn(O, crate::runtime::KeyHasher) -> O,
    key_type: DataType,
    key_column: usize,
    input: &[(RecordBatch, Watermark)],
) {
    for (from, to) in [(1, 3), (2, 1), (3, 2)] {
        rescale_once(&make, &keyed, &key_type, key_column, input, from, to);
    }
}

fn rescale_once<O: Operator>(
    make: &impl Fn() -> O,
    keyed: &impl Fn(O, crate::runtime::KeyHasher) -> O,
    key_type: &DataType,
    key_column: usize,
    input: &[(RecordBatch, Watermark)],
    from: usize,
    to: usize,
) {
    use crate::runtime::{KeyGroupRange, KeyHasher};
    let hasher = || KeyHasher::new(vec![key_type.clone()], 128).expect("hasher");
    let mut straight = Vec::new();
    let mut op = make();
    feed(&mut op, input, &mut straight);
    straight.extend(op.on_watermark(Watermark::END).expect("end"));
    let expected = rows_of(&straight);
    let split = |batches: &[(RecordBatch, Watermark)], range: KeyGroupRange| {
        let h = hasher();
        batches
            .iter()
            .map(|(b, w)| (rows_of_key_groups(b, key_column, &h, range), *w))
            .collect::<Vec<_>>()
    };
    for cut in 1..input.len() {
        let mut out = Vec::new();
        let mut states = Vec::new();
        for i in 0..from {
            let range = KeyGroupRange::of_instance(128, from, i);
            let mut old = keyed(make(), hasher());
            for (batch, watermark) in split(&input[..cut], range) {
                op_process(&mut old, batch);
                out.extend(old.on_watermark(watermark).expect("watermark"));
            }
            let bytes = old.snapshot().expect("snapshot").encode().expect("encode");
            states.push((range, OperatorState::decode(&bytes).expect("decode")));
        }
        for i in 0..to {
            let range = KeyGroupRange::of_instance(128, to, i);
            let mut new = keyed(make(), hasher());
            for (held, state) in &states {
                if held.overlaps(&range) {
                    new.restore(state.clone().for_key_groups(range).expect("split"))
                        .expect("restore");
                }
            }
            for (batch, watermark) in split(&input[cut..], range) {
                op_process(&mut new, batch);
                out.extend(new.on_watermark(watermark).expect("watermark"));
            }
            out.extend(new.on_watermark(Watermark::END).expect("end"));
        }
        assert_eq!(
            rows_of(&out),
            expected,
            "{from} instance(s) restored into {to} at {cut}"
        );
    }
}

fn op_process(op: &mut impl Operator, batch: RecordBatch) {
    if batch.num_rows() > 0 {
        assert!(op.process(0, batch).expect("process").is_none());
    }
}
