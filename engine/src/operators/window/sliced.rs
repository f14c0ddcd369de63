//! TUMBLE, HOP and CUMULATE aggregation over slices (Flink's slicing window aggregation).
//!
//! Rows update the live state of their slice. When a window fires, the state of each of
//! its slices is sealed into partial aggregates and merged into the window's result, so a
//! HOP window combines `size / pane` slice states instead of seeing each row `size / slide`
//! times. A slice is dropped once the last window holding it has fired. A row whose slice
//! has fired but whose later windows have not goes into its slice for those windows (as
//! Flink does); a row whose every window has fired is late: dropped and counted.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::common::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use magnetar_sql::plan::GroupItem;

use super::{AggregateSpec, AggregateState, Slicer, StateChunk, WindowMetrics, assemble, fired};
use crate::error::Result;
use crate::operators::Operator;
use crate::runtime::Watermark;

#[derive(Debug, Default)]
struct Slice {
    /// Rows since the slice was last sealed.
    live: Option<AggregateState>,
    /// Partial aggregates sealed when earlier windows fired.
    sealed: Vec<StateChunk>,
}

/// Window aggregation for sliced windows.
#[derive(Debug)]
pub struct SlicedWindowAggregate {
    slicer: Slicer,
    spec: AggregateSpec,
    group: Vec<GroupItem>,
    schema: SchemaRef,
    slice_end: usize,
    slices: BTreeMap<i64, Slice>,
    /// Windows holding data that have not fired, as (end, start).
    pending: BTreeSet<(i64, i64)>,
    watermark: Option<Watermark>,
    metrics: Arc<WindowMetrics>,
}

impl SlicedWindowAggregate {
    /// An aggregate whose input carries each row's slice end in column `slice_end`.
    pub fn new(
        slicer: Slicer,
        spec: AggregateSpec,
        group: Vec<GroupItem>,
        schema: SchemaRef,
        slice_end: usize,
        metrics: Arc<WindowMetrics>,
    ) -> Self {
        Self {
            slicer,
            spec,
            group,
            schema,
            slice_end,
            slices: BTreeMap::new(),
            pending: BTreeSet::new(),
            watermark: None,
            metrics,
        }
    }

    /// Approximate memory held by window state.
    pub fn state_size(&self) -> usize {
        self.slices
            .values()
            .map(|s| {
                s.live.as_ref().map_or(0, AggregateState::size)
                    + s.sealed.iter().map(StateChunk::size).sum::<usize>()
            })
            .sum()
    }

    fn fire(&mut self, start: i64, end: i64) -> Result<Option<RecordBatch>> {
        let slice_ends: Vec<i64> = self
            .slicer
            .slices_of_window(start, end)
            .filter(|e| self.slices.contains_key(e))
            .collect();
        // A slice whose only window this is, never sealed: evaluate it directly.
        let (keys, values) = match slice_ends.as_slice() {
            [only]
                if self.slicer.last_window_end(*only) == end
                    && self.slices.get(only).is_some_and(|s| s.sealed.is_empty()) =>
            {
                match self.slices.get_mut(only).and_then(|s| s.live.as_mut()) {
                    Some(live) => live.finish()?,
                    None => return Ok(None),
                }
            }
            _ => {
                let mut window = AggregateState::new(&self.spec)?;
                for e in &slice_ends {
                    let Some(slice) = self.slices.get_mut(e) else {
                        continue;
                    };
                    if let Some(mut live) = slice.live.take() {
                        slice.sealed.push(live.seal()?);
                    }
                    for chunk in &slice.sealed {
                        window.merge(chunk)?;
                    }
                }
                window.finish()?
            }
        };
        let rows = keys.first().map_or(0, |k| k.len());
        if rows == 0 {
            return Ok(None);
        }
        let windows = vec![(start, end); rows];
        Ok(Some(assemble(
            &self.schema,
            &self.group,
            &windows,
            &keys,
            values,
        )?))
    }
}

impl Operator for SlicedWindowAggregate {
    fn name(&self) -> &'static str {
        "WindowAggregate"
    }

    fn process(&mut self, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        let ends = cast(
            batch.column(self.slice_end),
            &DataType::Timestamp(TimeUnit::Millisecond, None),
        )?;
        let ends = ends.as_primitive::<TimestampMillisecondType>();
        // Rows by the slice they go to; late rows are dropped.
        let mut by_slice: HashMap<i64, Vec<u32>> = HashMap::default();
        let mut late = 0;
        for row in 0..batch.num_rows() {
            if ends.is_null(row) {
                late += 1;
                continue;
            }
            let end = ends.value(row);
            if fired(self.watermark, end) && fired(self.watermark, self.slicer.last_window_end(end))
            {
                late += 1;
                continue;
            }
            by_slice.entry(end).or_default().push(row as u32);
        }
        self.metrics.late(late);
        if by_slice.is_empty() {
            return Ok(None);
        }
        let rows = self.spec.evaluate(&batch)?;
        let whole = by_slice.len() == 1 && late == 0;
        for (end, indices) in by_slice {
            let slice = self.slices.entry(end).or_default();
            if slice.live.is_none() && slice.sealed.is_empty() {
                for (ws, we) in self.slicer.windows_of_slice(end) {
                    if !fired(self.watermark, we) {
                        self.pending.insert((we, ws));
                    }
                }
            }
            let live = match &mut slice.live {
                Some(live) => live,
                none => none.insert(AggregateState::new(&self.spec)?),
            };
            if whole {
                live.update(&rows)?;
            } else {
                live.update(&rows.take(&UInt32Array::from(indices))?)?;
            }
        }
        Ok(None)
    }

    fn on_watermark(&mut self, watermark: Watermark) -> Result<Vec<RecordBatch>> {
        if self.watermark.is_some_and(|w| w >= watermark) {
            return Ok(Vec::new());
        }
        self.watermark = Some(watermark);
        let mut out = Vec::new();
        while let Some(&(end, start)) = self.pending.first() {
            if !fired(self.watermark, end) {
                break;
            }
            self.pending.pop_first();
            if let Some(batch) = self.fire(start, end)? {
                out.push(batch);
            }
        }
        // Free every slice whose last window has fired.
        let slicer = self.slicer;
        self.slices
            .retain(|end, _| !fired(Some(watermark), slicer.last_window_end(*end)));
        Ok(out)
    }
}
