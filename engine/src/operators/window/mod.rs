//! Event-time window operators: assigning windows, aggregating per window, and Top-N per
//! window. Windows fire when the watermark passes their end (Flink's rule: `end - 1 <=
//! watermark`), are emitted once, and their state is dropped at once.

mod accumulators;
mod assign;
mod session;
mod sliced;
mod slicer;
#[cfg(test)]
mod test_support;
mod top_n;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use datafusion::arrow::array::{
    ArrayRef, RecordBatch, RecordBatchOptions, TimestampMillisecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use magnetar_sql::plan::GroupItem;

pub use accumulators::{AggregateSpec, AggregateState, EvaluatedRows, StateChunk};
pub use assign::WindowAssignOperator;
pub use session::SessionWindowAggregate;
pub use sliced::SlicedWindowAggregate;
pub use slicer::{Slicer, window_start};
pub use top_n::WindowTopNOperator;

use crate::error::Result;
use crate::runtime::{EventTime, Watermark};

/// Counters of an event-time operator, shared with `SHOW JOBS`.
#[derive(Debug)]
pub struct WindowMetrics {
    /// Rows dropped because every window they belong to had fired.
    pub late_rows: AtomicU64,
    /// The operator's watermark in ms since the epoch (`i64::MIN`: none yet).
    pub watermark_ms: AtomicI64,
    /// Approximate bytes of window state held.
    pub state_bytes: AtomicU64,
}

impl Default for WindowMetrics {
    fn default() -> Self {
        WindowMetrics {
            late_rows: AtomicU64::new(0),
            watermark_ms: AtomicI64::new(i64::MIN),
            state_bytes: AtomicU64::new(0),
        }
    }
}

impl WindowMetrics {
    /// The watermark, once one arrived.
    pub fn watermark(&self) -> Option<Watermark> {
        let ms = self.watermark_ms.load(Ordering::Relaxed);
        (ms != i64::MIN).then_some(Watermark(EventTime(ms)))
    }

    /// Records the operator's watermark and state size after it handled a watermark.
    pub(crate) fn observe(&self, watermark: Watermark, state_bytes: usize) {
        self.watermark_ms.store(watermark.0.0, Ordering::Relaxed);
        self.state_bytes
            .store(state_bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn late(&self, n: usize) {
        if n > 0 {
            self.late_rows.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// The watermark as an operator snapshot records it (`"watermark"` in its meta).
fn watermark_from_meta(meta: &serde_json::Value) -> Option<Watermark> {
    meta["watermark"].as_i64().map(|w| Watermark(EventTime(w)))
}

/// Whether the window ending at `end` has fired under `watermark`.
fn fired(watermark: Option<Watermark>, end: i64) -> bool {
    watermark.is_some_and(|w| w.has_passed_end(EventTime(end)))
}

/// One output batch of a window aggregate: per row its window, key values and aggregate
/// values, laid out as the GROUP BY items and aggregates say.
fn assemble(
    schema: &SchemaRef,
    group: &[GroupItem],
    windows: &[(i64, i64)],
    keys: &[ArrayRef],
    values: Vec<ArrayRef>,
) -> Result<RecordBatch> {
    let rows = windows.len();
    let timestamps = |f: &dyn Fn(&(i64, i64)) -> i64| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from(
            windows.iter().map(f).collect::<Vec<_>>(),
        ))
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    let mut key = 0;
    for item in group {
        columns.push(match item {
            GroupItem::WindowStart => timestamps(&|w| w.0),
            GroupItem::WindowEnd => timestamps(&|w| w.1),
            GroupItem::WindowTime => timestamps(&|w| w.1 - 1),
            GroupItem::Key(..) => {
                key += 1;
                keys[key - 1].clone()
            }
        });
    }
    columns.extend(values);
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        cast_to_schema(schema, columns)?,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// `columns` cast where needed to the types of `schema`'s fields (aggregates may produce,
/// say, Int64 where the plan's schema says UInt64).
fn cast_to_schema(schema: &SchemaRef, columns: Vec<ArrayRef>) -> Result<Vec<ArrayRef>> {
    columns
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c)
            } else {
                Ok(cast(&c, f.data_type())?)
            }
        })
        .collect()
}
