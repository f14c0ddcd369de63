//! TUMBLE, HOP and CUMULATE aggregation over slices (Flink's slicing window aggregation).
//!
//! Rows update the live state of their slice. When a window fires, the state of each of
//! its slices is sealed into partial aggregates and merged into the window's result, so a
//! HOP window combines `size / pane` slice states instead of seeing each row `size / slide`
//! times. A slice is dropped once the last window holding it has fired. A row whose slice
//! has fired but whose later windows have not goes into its slice for those windows (as
//! Flink does); a row whose every window has fired is late: dropped and counted.
//!
//! A HOP window of n slices would merge n slice states each time one fires, so every slice
//! is merged n times. Instead, runs of about √n consecutive slices ("blocks") are merged
//! once into a cached partial, and a window merges the partials of the blocks it covers
//! whole plus its loose slices one by one: about 2√n merges per window instead of n.
//! A row added to a slice drops its block's partial, to be merged again when next needed.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::common::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use magnetar_sql::plan::GroupItem;

use datafusion::arrow::array::{ArrayRef, Int64Array};
use datafusion::arrow::datatypes::{Field, Schema};

use super::{
    AggregateSpec, AggregateState, Slicer, StateChunk, WindowMetrics, assemble, fired,
    watermark_from_meta,
};
use crate::checkpoint::OperatorState;
use crate::error::{EngineError, Result};
use crate::operators::Operator;
use crate::runtime::{KeyHasher, Watermark};

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
    /// Tags snapshot rows with their key group (a keyed instance of a parallel job).
    key_groups: Option<KeyHasher>,
    /// Slices per block; below 2, no blocks are kept.
    block_len: i64,
    /// Merged partials of whole blocks, by block index; derived, so never snapshotted.
    blocks: BTreeMap<i64, StateChunk>,
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
            key_groups: None,
            block_len: (slicer.slices_per_window() as f64).sqrt() as i64,
            blocks: BTreeMap::new(),
        }
    }

    /// The block of the slice ending at `slice_end`.
    fn block_of(&self, slice_end: i64) -> i64 {
        slice_end
            .div_euclid(self.slicer.slice_size())
            .div_euclid(self.block_len)
    }

    /// Slice ends `lo..hi` of block `block`.
    fn block_span(&self, block: i64) -> std::ops::Range<i64> {
        let len = self.block_len * self.slicer.slice_size();
        block * len..(block + 1) * len
    }

    /// Merges the slices ending in `ends` into `window`, one by one.
    fn merge_slices(
        slices: &mut BTreeMap<i64, Slice>,
        ends: impl Iterator<Item = i64>,
        window: &mut AggregateState,
    ) -> Result<()> {
        for e in ends {
            let Some(slice) = slices.get_mut(&e) else {
                continue;
            };
            if let Some(mut live) = slice.live.take() {
                slice.sealed.push(live.seal()?);
            }
            for chunk in &slice.sealed {
                window.merge(chunk)?;
            }
        }
        Ok(())
    }

    /// The merged partial of `block`, merged now if it is not cached; `None` when empty.
    fn block_partial(&mut self, block: i64) -> Result<Option<&StateChunk>> {
        if !self.blocks.contains_key(&block) {
            let span = self.block_span(block);
            let ends: Vec<i64> = self.slices.range(span).map(|(e, _)| *e).collect();
            if ends.is_empty() {
                return Ok(None);
            }
            let mut merged = AggregateState::new(&self.spec)?;
            Self::merge_slices(&mut self.slices, ends.into_iter(), &mut merged)?;
            self.blocks.insert(block, merged.seal()?);
        }
        Ok(self.blocks.get(&block))
    }

    /// Snapshots tag each row with its key's key group, hashed by `hasher`.
    pub fn with_key_groups(mut self, hasher: KeyHasher) -> Self {
        self.key_groups = Some(hasher);
        self
    }

    /// Approximate memory held by window state, cached block partials included.
    pub fn state_size(&self) -> usize {
        self.slices
            .values()
            .map(|s| {
                s.live.as_ref().map_or(0, AggregateState::size)
                    + s.sealed.iter().map(StateChunk::size).sum::<usize>()
            })
            .sum::<usize>()
            + self.blocks.values().map(StateChunk::size).sum::<usize>()
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
                let mut loose = Vec::new();
                let mut at = 0;
                while at < slice_ends.len() {
                    let block = if self.block_len >= 2 {
                        Some(self.block_of(slice_ends[at]))
                    } else {
                        None
                    };
                    // A block inside the window: its partial stands for its slices.
                    if let Some(block) = block
                        && self.block_span(block).start >= start + self.slicer.slice_size()
                        && self.block_span(block).end <= end + self.slicer.slice_size()
                    {
                        if let Some(partial) = self.block_partial(block)? {
                            window.merge(partial)?;
                        }
                        while at < slice_ends.len() && self.block_of(slice_ends[at]) == block {
                            at += 1;
                        }
                        continue;
                    }
                    loose.push(slice_ends[at]);
                    at += 1;
                }
                Self::merge_slices(&mut self.slices, loose.into_iter(), &mut window)?;
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

    fn process(&mut self, _input: usize, batch: RecordBatch) -> Result<Option<RecordBatch>> {
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
            if self.block_len >= 2 {
                let block = self.block_of(end);
                self.blocks.remove(&block);
            }
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

    /// Every slice's partial aggregates (live state sealed first) as batches of
    /// `[slice_end, keys..., states...]`, with the watermark and the pending windows.
    fn snapshot(&mut self) -> Result<OperatorState> {
        let mut batches = Vec::new();
        for (&end, slice) in self.slices.iter_mut() {
            if let Some(mut live) = slice.live.take() {
                slice.sealed.push(live.seal()?);
            }
            for chunk in &slice.sealed {
                let rows = chunk.keys.first().map_or(0, |k| k.len());
                if rows == 0 {
                    continue;
                }
                let mut fields = vec![Field::new("slice_end", DataType::Int64, false)];
                let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![end; rows]))];
                for (i, k) in chunk.keys.iter().enumerate() {
                    fields.push(Field::new(format!("k{i}"), k.data_type().clone(), true));
                    columns.push(k.clone());
                }
                for (a, state) in chunk.states.iter().enumerate() {
                    for (j, s) in state.iter().enumerate() {
                        fields.push(Field::new(format!("s{a}_{j}"), s.data_type().clone(), true));
                        columns.push(s.clone());
                    }
                }
                let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
                batches.push(match &self.key_groups {
                    Some(hasher) => hasher.tag(&batch, &chunk.keys)?,
                    None => batch,
                });
            }
        }
        let pending: Vec<[i64; 2]> = self.pending.iter().map(|&(e, s)| [e, s]).collect();
        Ok(OperatorState {
            meta: serde_json::json!({
                "watermark": self.watermark.map(|w| w.0.0),
                "pending": pending,
            }),
            batches,
        })
    }

    fn restore(&mut self, state: OperatorState) -> Result<()> {
        let bad = |reason: String| EngineError::Checkpoint {
            object: "window aggregate state".into(),
            reason,
        };
        // Several snapshots (after a rescale) add up; they share the watermark.
        self.watermark = self.watermark.max(watermark_from_meta(&state.meta));
        let pending = state.meta["pending"]
            .as_array()
            .ok_or_else(|| bad("no pending windows".into()))?
            .iter()
            .map(|w| match (w[0].as_i64(), w[1].as_i64()) {
                (Some(e), Some(s)) => Ok((e, s)),
                _ => Err(bad(format!("bad pending window {w}"))),
            })
            .collect::<Result<Vec<_>>>()?;
        self.pending.extend(pending);
        self.blocks.clear();
        let key_count = self.spec.key_schema.fields().len();
        let state_counts: Vec<usize> = self.spec.state_types()?.iter().map(Vec::len).collect();
        for batch in state.batches {
            if batch.num_rows() == 0 {
                continue;
            }
            self.spec
                .check_state_columns(batch.columns(), &[DataType::Int64], true)
                .map_err(bad)?;
            let end = batch
                .column(0)
                .as_primitive_opt::<datafusion::arrow::datatypes::Int64Type>()
                .map(|ends| ends.value(0))
                .ok_or_else(|| bad("slice ends are not BIGINT".into()))?;
            let keys = batch.columns()[1..1 + key_count].to_vec();
            let mut at = 1 + key_count;
            let mut states = Vec::with_capacity(state_counts.len());
            for n in &state_counts {
                states.push(batch.columns()[at..at + n].to_vec());
                at += n;
            }
            self.slices
                .entry(end)
                .or_default()
                .sealed
                .push(StateChunk { keys, states });
        }
        Ok(())
    }

    fn state_bytes(&self) -> usize {
        self.state_size()
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
        // And the partials of blocks before the first slice left.
        if self.block_len >= 2 {
            match self.slices.keys().next().map(|e| self.block_of(*e)) {
                Some(first) => self.blocks = self.blocks.split_off(&first),
                None => self.blocks.clear(),
            }
        }
        self.metrics.observe(watermark, self.state_size());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::Field;
    use magnetar_sql::window::{WindowKind, WindowSpec};

    use super::*;
    use crate::operators::window::test_support::{
        assert_rescaling_changes_nothing, assert_snapshots_change_nothing, count_and_sum_by_user,
        feed, output_schema, rows_of,
    };
    use crate::runtime::EventTime;

    const SIZE: i64 = 10;
    const SLIDE: i64 = 5;

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

    /// HOP(size 10 ms, slide 5 ms): count(x) and sum(x) per user.
    fn operator() -> SlicedWindowAggregate {
        let (spec, group) = count_and_sum_by_user(&input_schema());
        let slicer = Slicer::new(&WindowSpec {
            kind: WindowKind::Hop {
                slide: SLIDE,
                size: SIZE,
            },
            offset: 0,
        })
        .expect("a sliced window");
        SlicedWindowAggregate::new(slicer, spec, group, output_schema(), 2, Arc::default())
    }

    /// Batches of 10 rows, a little out of order, and the watermark after each.
    fn input() -> Vec<(RecordBatch, Watermark)> {
        let users = ["a", "b", "c", "d"];
        (0..8)
            .map(|b| {
                let rows: Vec<i64> = (b * 10..b * 10 + 10).collect();
                let ts: Vec<i64> = rows
                    .iter()
                    .map(|i| i + if i % 4 == 0 { -3 } else { 0 })
                    .collect();
                let batch = RecordBatch::try_new(
                    input_schema(),
                    vec![
                        Arc::new(StringArray::from_iter_values(
                            rows.iter().map(|i| users[(*i % 4) as usize]),
                        )),
                        Arc::new(Int64Array::from(rows.clone())),
                        Arc::new(TimestampMillisecondArray::from_iter_values(
                            ts.iter().map(|t| t.div_euclid(SLIDE) * SLIDE + SLIDE),
                        )),
                    ],
                )
                .expect("batch");
                let max = ts.iter().max().copied().unwrap_or(0);
                (batch, Watermark(EventTime(max - 4)))
            })
            .collect()
    }

    #[test]
    fn a_restored_snapshot_gives_the_output_of_an_uninterrupted_run() {
        let expected = assert_snapshots_change_nothing(operator, &input());
        assert_eq!(
            expected.len(),
            4 * (80 / SLIDE as usize + 1),
            "every user in every window"
        );
    }

    #[test]
    fn snapshots_split_by_key_group_restore_at_another_parallelism() {
        assert_rescaling_changes_nothing(
            operator,
            SlicedWindowAggregate::with_key_groups,
            DataType::Utf8,
            0,
            &input(),
        );
    }

    /// HOP(size 40 ms, slide 2 ms): 20 slices a window, so blocks of 4.
    fn wide_operator() -> SlicedWindowAggregate {
        let (spec, group) = count_and_sum_by_user(&input_schema());
        let slicer = Slicer::new(&WindowSpec {
            kind: WindowKind::Hop { slide: 2, size: 40 },
            offset: 0,
        })
        .expect("a sliced window");
        SlicedWindowAggregate::new(slicer, spec, group, output_schema(), 2, Arc::default())
    }

    /// Rows over 0..400 ms in batches of 16, every fifth row up to 30 ms behind the
    /// watermark (into slices that have fired but whose later windows have not).
    fn wide_input() -> Vec<(RecordBatch, Watermark)> {
        let users = ["a", "b", "c"];
        let mut max = 0;
        (0..25)
            .map(|b| {
                let rows: Vec<i64> = (b * 16..b * 16 + 16).collect();
                let ts: Vec<i64> = rows
                    .iter()
                    .map(|i| if i % 5 == 0 { (i - 30).max(0) } else { *i })
                    .collect();
                max = max.max(ts.iter().copied().max().unwrap_or(0));
                let batch = RecordBatch::try_new(
                    input_schema(),
                    vec![
                        Arc::new(StringArray::from_iter_values(
                            rows.iter().map(|i| users[(*i % 3) as usize]),
                        )),
                        Arc::new(Int64Array::from(rows.clone())),
                        Arc::new(TimestampMillisecondArray::from_iter_values(
                            ts.iter().map(|t| t.div_euclid(2) * 2 + 2),
                        )),
                    ],
                )
                .expect("batch");
                (batch, Watermark(EventTime(max - 4)))
            })
            .collect()
    }

    #[test]
    fn merged_blocks_give_what_merging_every_slice_gives() {
        let mut blocked = wide_operator();
        assert_eq!(blocked.block_len, 4);
        let mut each = wide_operator();
        each.block_len = 0;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        feed(&mut blocked, &wide_input(), &mut a);
        feed(&mut each, &wide_input(), &mut b);
        let rows = rows_of(&a);
        assert!(rows.len() > 150, "{} rows", rows.len());
        assert_eq!(rows, rows_of(&b));
        assert!(
            blocked.blocks.len() <= 20 / 4 + 2,
            "{} blocks",
            blocked.blocks.len()
        );
        assert_snapshots_change_nothing(wide_operator, &wide_input());
    }

    #[test]
    fn a_state_of_another_query_is_refused() {
        let mut op = operator();
        let state = OperatorState {
            meta: serde_json::json!({"watermark": null, "pending": []}),
            batches: vec![
                RecordBatch::try_new(
                    Arc::new(Schema::new(vec![Field::new(
                        "slice_end",
                        DataType::Int64,
                        false,
                    )])),
                    vec![Arc::new(Int64Array::from(vec![5]))],
                )
                .expect("batch"),
            ],
        };
        let err = op.restore(state).expect_err("wrong shape").to_string();
        assert!(err.contains("this query's state has"), "{err}");
    }
}
