//! A window TVF: adds `window_start`, `window_end` and `window_time` to each row — one row
//! per window it belongs to (on its own), or per row with its slice (under an aggregate).
//! Rows without event time belong to no window and are counted as late.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, TimestampMillisecondArray, UInt32Array,
};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use magnetar_sql::plan::AssignMode;
use magnetar_sql::window::{WindowKind, WindowSpec};

use super::{Slicer, WindowMetrics};
use crate::error::{EngineError, Result};
use crate::operators::Operator;
use crate::runtime::EventTime;

/// Assigns windows (or slices) to rows.
#[derive(Debug)]
pub struct WindowAssignOperator {
    slicer: Option<Slicer>,
    session_gap: Option<i64>,
    time_index: usize,
    mode: AssignMode,
    schema: SchemaRef,
    metrics: Arc<WindowMetrics>,
}

impl WindowAssignOperator {
    /// An operator for `spec` over rows whose event time is column `time_index`.
    pub fn new(
        spec: &WindowSpec,
        time_index: usize,
        mode: AssignMode,
        schema: SchemaRef,
        metrics: Arc<WindowMetrics>,
    ) -> Self {
        let session_gap = match &spec.kind {
            WindowKind::Session { gap, .. } => Some(*gap),
            _ => None,
        };
        Self {
            slicer: Slicer::new(spec),
            session_gap,
            time_index,
            mode,
            schema,
            metrics,
        }
    }

    fn windows_of(&self, ts: i64) -> Vec<(i64, i64)> {
        match (&self.slicer, self.session_gap) {
            (Some(s), _) => s.windows_of_slice(s.slice_end(ts)),
            (None, Some(gap)) => vec![(ts, ts + gap)],
            (None, None) => Vec::new(),
        }
    }

    fn slice_of(&self, ts: i64) -> (i64, i64) {
        match (&self.slicer, self.session_gap) {
            (Some(s), _) => {
                let end = s.slice_end(ts);
                (end - s.slice_size(), end)
            }
            (_, Some(gap)) => (ts, ts + gap),
            (None, None) => (ts, ts),
        }
    }
}

impl Operator for WindowAssignOperator {
    fn name(&self) -> &'static str {
        "WindowAssign"
    }

    fn process(&mut self, _input: usize, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        let time = cast(
            batch.column(self.time_index),
            &DataType::Timestamp(TimeUnit::Millisecond, None),
        )?;
        let time = time.as_primitive::<TimestampMillisecondType>();
        let mut rows: Vec<u32> = Vec::with_capacity(batch.num_rows());
        let mut starts = Vec::with_capacity(batch.num_rows());
        let mut ends = Vec::with_capacity(batch.num_rows());
        let mut late = 0;
        for row in 0..batch.num_rows() {
            // A row without event time belongs to no window.
            if time.is_null(row) {
                late += 1;
                continue;
            }
            let ts = time.value(row);
            // Sources turn such rows into bad messages by the table's policy; rows of other
            // inputs (a bounded file, a computed time) end the query here, never in overflow.
            if let Some(reason) = EventTime::check_row_time(ts) {
                return Err(EngineError::BadMessage(format!(
                    "a row cannot be placed in a window: {reason}"
                )));
            }
            match self.mode {
                AssignMode::Slices => {
                    let (start, end) = self.slice_of(ts);
                    rows.push(row as u32);
                    starts.push(start);
                    ends.push(end);
                }
                AssignMode::Expand => {
                    // On its own the TVF only labels rows: like Flink, it keeps late ones
                    // (lateness matters to the operators that fire windows).
                    for (start, end) in self.windows_of(ts) {
                        rows.push(row as u32);
                        starts.push(start);
                        ends.push(end);
                    }
                }
            }
        }
        self.metrics.late(late);
        if rows.is_empty() {
            return Ok(None);
        }
        let indices = UInt32Array::from(rows);
        let identity = indices.len() == batch.num_rows()
            && indices
                .values()
                .iter()
                .enumerate()
                .all(|(i, r)| *r as usize == i);
        let mut columns: Vec<ArrayRef> = if identity {
            batch.columns().to_vec()
        } else {
            batch
                .columns()
                .iter()
                .map(|c| Ok(take(c.as_ref(), &indices, None)?))
                .collect::<Result<_>>()?
        };
        let time_type = self
            .schema
            .fields()
            .last()
            .map(|f| f.data_type().clone())
            .ok_or_else(|| EngineError::Internal("window schema without columns".into()))?;
        let window_time: ArrayRef = Arc::new(TimestampMillisecondArray::from(
            ends.iter().map(|e| e - 1).collect::<Vec<_>>(),
        ));
        columns.push(Arc::new(TimestampMillisecondArray::from(starts)));
        columns.push(Arc::new(TimestampMillisecondArray::from(ends)));
        columns.push(cast(&window_time, &time_type)?);
        Ok(Some(RecordBatch::try_new(self.schema.clone(), columns)?))
    }
}
