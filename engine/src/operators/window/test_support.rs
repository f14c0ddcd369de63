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
            GroupItem::Key(user),
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
        assert!(op.process(batch.clone()).expect("process").is_none());
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
