//! The interval join, per key: a row meets the other side's kept rows of its key whose time
//! is within the bounds, is kept while a partner can still come, and leaves (padded with
//! NULLs in an outer join, if it met none) once the watermark shows none can. A row at or
//! behind the watermark is late: dropped and counted.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{concat_batches, filter_record_batch, take_record_batch};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use magnetar_sql::plan::IntervalJoinNode;

use super::side::{Key, Side, Slot, TimeKey};
use crate::checkpoint::OperatorState;
use crate::error::{EngineError, Result};
use crate::operators::Operator;
use crate::operators::join_keys::{JoinKeys, evaluate};
use crate::operators::join_output::{side_by_side, without_nulls};
use crate::operators::window::WindowMetrics;
use crate::runtime::{KeyHasher, Watermark};

/// A running interval join.
pub struct IntervalJoinOperator {
    pub(super) node: IntervalJoinNode,
    pub(super) sides: [Side; 2],
    encoder: JoinKeys,
    pub(super) watermark: Option<Watermark>,
    metrics: Arc<WindowMetrics>,
    pub(super) key_groups: Option<KeyHasher>,
}

/// One input row's key (`None`: a NULL in it, so it meets no row).
type RowKey = Option<Key>;

impl IntervalJoinOperator {
    /// An operator running `node`.
    pub fn new(node: IntervalJoinNode, metrics: Arc<WindowMetrics>) -> Result<Self> {
        Ok(IntervalJoinOperator {
            sides: [
                Side::new(node.inputs[0].clone()),
                Side::new(node.inputs[1].clone()),
            ],
            encoder: JoinKeys::new(&node.keys[0], &node.inputs[0])?,
            node,
            watermark: None,
            metrics,
            key_groups: None,
        })
    }

    /// Tags snapshot rows with key groups (a keyed instance).
    pub fn with_key_groups(mut self, hasher: KeyHasher) -> Self {
        self.key_groups = Some(hasher);
        self
    }

    /// The key arrays of `batch`, a batch of `side`.
    pub(super) fn key_arrays(&self, side: usize, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        self.node.keys[side]
            .iter()
            .map(|k| evaluate(k, batch))
            .collect()
    }

    /// Each row's key of `batch`, a batch of `side`.
    pub(super) fn keys(&self, side: usize, batch: &RecordBatch) -> Result<Vec<RowKey>> {
        self.encoder.encode(&self.node.keys[side], batch)
    }

    /// The event times of `batch`, a batch of `side` (`None` for a NULL time).
    pub(super) fn times(&self, side: usize, batch: &RecordBatch) -> Result<Vec<Option<i64>>> {
        let column = batch.column(self.node.time[side]);
        let times = match column.data_type() {
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                column.as_primitive::<TimestampMillisecondType>()
            }
            other => {
                return Err(EngineError::Internal(format!(
                    "the interval join's time column is {other}"
                )));
            }
        };
        Ok((0..times.len())
            .map(|i| times.is_valid(i).then(|| times.value(i)))
            .collect())
    }

    /// The times of the other side's rows that `side`'s row at `t` meets.
    fn partner_range(&self, side: usize, t: i64) -> (i64, i64) {
        let b = self.node.bounds;
        if side == 0 {
            (t.saturating_add(b.lower), t.saturating_add(b.upper))
        } else {
            (t.saturating_sub(b.upper), t.saturating_sub(b.lower))
        }
    }

    /// Whether a row of `side` at `t` can still meet a row of the other side that is not
    /// late under watermark `w`.
    fn can_meet_later(&self, side: usize, t: i64, w: Option<i64>) -> bool {
        let (_, to) = self.partner_range(side, t);
        w.is_none_or(|w| to > w)
    }

    /// Output rows: `left` and `right` side by side (either may be absent: NULLs).
    fn output(
        &self,
        rows: usize,
        left: Option<&RecordBatch>,
        right: Option<&RecordBatch>,
    ) -> Result<RecordBatch> {
        side_by_side(&self.node.schema, &self.node.inputs, rows, left, right)
    }

    /// `batch` of `side` padded with NULLs for the other side.
    fn padded(&self, side: usize, batch: &RecordBatch) -> Result<RecordBatch> {
        if side == 0 {
            self.output(batch.num_rows(), Some(batch), None)
        } else {
            self.output(batch.num_rows(), None, Some(batch))
        }
    }

    fn join_batch(&mut self, side: usize, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        let other = 1 - side;
        let keys = self.keys(side, &batch)?;
        let times = self.times(side, &batch)?;
        let w = self.watermark.map(|w| w.0.0);
        let pads = self.node.kind.pads(side);
        let mut late = 0;
        // Candidate pairs: this batch's row, the other side's slot.
        let mut pairs: Vec<(usize, TimeKey, Slot)> = Vec::new();
        let mut on_time: Vec<usize> = Vec::new();
        let mut never: Vec<u32> = Vec::new();
        for (i, (key, t)) in keys.iter().zip(&times).enumerate() {
            let Some(t) = *t else {
                late += 1;
                continue;
            };
            if w.is_some_and(|w| t <= w) {
                late += 1;
                continue;
            }
            let Some(key) = key else {
                if pads {
                    never.push(i as u32);
                }
                continue;
            };
            on_time.push(i);
            let (from, to) = self.partner_range(side, t);
            pairs.extend(
                self.sides[other]
                    .range(key, from, to)
                    .map(|(at, slot)| (i, at, slot)),
            );
        }
        self.metrics.late(late);
        let mut matched = vec![false; batch.num_rows()];
        let mut out = Vec::new();
        if !pairs.is_empty() {
            let these = take_record_batch(
                &batch,
                &datafusion::arrow::array::UInt32Array::from(
                    pairs.iter().map(|(i, ..)| *i as u32).collect::<Vec<_>>(),
                ),
            )?;
            let slots: Vec<Slot> = pairs.iter().map(|(.., s)| *s).collect();
            let those = self.sides[other].rows(&slots)?;
            let joined = if side == 0 {
                self.output(pairs.len(), Some(&these), Some(&those))?
            } else {
                self.output(pairs.len(), Some(&those), Some(&these))?
            };
            let keep = match &self.node.residual {
                Some((predicate, _)) => Some(
                    evaluate(predicate, &joined)?
                        .as_boolean_opt()
                        .cloned()
                        .ok_or_else(|| {
                            EngineError::Internal("the join condition is not boolean".into())
                        })?,
                ),
                None => None,
            };
            let holds = |n: usize| keep.as_ref().is_none_or(|k| k.is_valid(n) && k.value(n));
            for (n, (i, at, _)) in pairs.iter().enumerate() {
                if holds(n)
                    && let Some(key) = &keys[*i]
                {
                    matched[*i] = true;
                    self.sides[other].mark(key, *at);
                }
            }
            out.push(match keep {
                Some(k) => filter_record_batch(&joined, &without_nulls(&k))?,
                None => joined,
            });
        }
        // Keep what a later row of the other side may still meet; pad what none will.
        let mut kept = Vec::new();
        let mut done: Vec<u32> = never;
        for &i in &on_time {
            let (Some(key), Some(t)) = (&keys[i], times[i]) else {
                continue;
            };
            if self.can_meet_later(side, t, w) {
                kept.push((i, key.clone(), t, matched[i]));
            } else if pads && !matched[i] {
                done.push(i as u32);
            }
        }
        self.sides[side].insert(&batch, &kept)?;
        if !done.is_empty() {
            done.sort_unstable();
            let rows =
                take_record_batch(&batch, &datafusion::arrow::array::UInt32Array::from(done))?;
            out.push(self.padded(side, &rows)?);
        }
        self.concat(out)
    }

    fn concat(&self, out: Vec<RecordBatch>) -> Result<Option<RecordBatch>> {
        match out.len() {
            0 => Ok(None),
            1 => Ok(out.into_iter().next()),
            _ => Ok(Some(concat_batches(&out[0].schema(), &out)?)),
        }
    }

    /// Approximate bytes of state.
    pub(super) fn state_size(&self) -> usize {
        self.sides[0].bytes() + self.sides[1].bytes()
    }
}

impl Operator for IntervalJoinOperator {
    fn name(&self) -> &'static str {
        "interval-join"
    }

    fn process(&mut self, input: usize, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        if input > 1 {
            return Err(EngineError::Internal(format!(
                "an interval join has two inputs, not input {input}"
            )));
        }
        self.join_batch(input, batch)
    }

    fn on_watermark(&mut self, watermark: Watermark) -> Result<Vec<RecordBatch>> {
        if self.watermark.is_some_and(|w| w >= watermark) {
            return Ok(Vec::new());
        }
        self.watermark = Some(watermark);
        let w = watermark.0.0;
        let b = self.node.bounds;
        let mut out = Vec::new();
        // A left row meets right rows up to its time + upper; a right row, left rows up to
        // its time - lower. Later rows are past the watermark.
        for (side, up_to) in [
            (0, w.saturating_sub(b.upper)),
            (1, w.saturating_add(b.lower)),
        ] {
            let pads = self.node.kind.pads(side);
            if let Some(rows) = self.sides[side].expire(up_to, pads)? {
                out.push(self.padded(side, &rows)?);
            }
        }
        self.metrics.observe(watermark, self.state_size());
        Ok(out)
    }

    fn output_watermark(&self, watermark: Watermark) -> Watermark {
        if watermark.0.0 == i64::MAX {
            return watermark;
        }
        let delay = self.node.bounds.output_delay();
        Watermark(crate::runtime::EventTime(
            watermark.0.0.saturating_sub(delay),
        ))
    }

    fn snapshot(&mut self) -> Result<OperatorState> {
        super::snapshot::take(self)
    }

    fn restore(&mut self, state: OperatorState) -> Result<()> {
        super::snapshot::restore(self, state)
    }

    fn state_bytes(&self) -> usize {
        self.state_size()
    }
}
