//! The window join: each side's rows wait, in Arrow batches per window, until the watermark
//! closes their window (passes `window_end - 1`); then the window's rows of both sides are
//! joined by key at once and freed. A row whose window has closed is late: dropped and
//! counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, filter_record_batch, take_record_batch};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use magnetar_sql::plan::{WindowJoinKind, WindowJoinNode};

use crate::checkpoint::OperatorState;
use crate::error::{EngineError, Result};
use crate::operators::Operator;
use crate::operators::join_keys::{JoinKeys, evaluate};
use crate::operators::join_output::{side_by_side, without_nulls};
use crate::operators::window::WindowMetrics;
use crate::runtime::{KeyHasher, Watermark};

/// A window: the last instant in it (`window_end - 1`), then its start.
pub(super) type WindowId = (i64, i64);

/// A running window join.
pub struct WindowJoinOperator {
    pub(super) node: WindowJoinNode,
    /// Each open window's rows, per side.
    pub(super) windows: BTreeMap<WindowId, [Vec<RecordBatch>; 2]>,
    encoder: JoinKeys,
    pub(super) watermark: Option<Watermark>,
    metrics: Arc<WindowMetrics>,
    pub(super) key_groups: Option<KeyHasher>,
}

fn millis<'a>(
    column: &'a ArrayRef,
    what: &str,
) -> Result<&'a datafusion::arrow::array::PrimitiveArray<TimestampMillisecondType>> {
    match column.data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            Ok(column.as_primitive::<TimestampMillisecondType>())
        }
        other => Err(EngineError::Internal(format!(
            "the window join's {what} is {other}"
        ))),
    }
}

impl WindowJoinOperator {
    /// An operator running `node`.
    pub fn new(node: WindowJoinNode, metrics: Arc<WindowMetrics>) -> Result<Self> {
        Ok(WindowJoinOperator {
            encoder: JoinKeys::new(&node.keys[0], &node.inputs[0])?,
            node,
            windows: BTreeMap::new(),
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

    /// Puts each row of `batch` (of `side`) with its window; rows of closed windows are
    /// dropped when `check_late`. Returns how many were late.
    pub(super) fn insert(
        &mut self,
        side: usize,
        batch: &RecordBatch,
        check_late: bool,
    ) -> Result<usize> {
        let (start, end) = self.node.window[side];
        let starts = millis(batch.column(start), "window_start")?;
        let ends = millis(batch.column(end), "window_end")?;
        let w = self.watermark.map(|w| w.0.0);
        let mut late = 0;
        let mut by_window: HashMap<WindowId, Vec<u32>> = HashMap::new();
        for i in 0..batch.num_rows() {
            if ends.is_null(i) || starts.is_null(i) {
                late += 1;
                continue;
            }
            let last = ends.value(i).saturating_sub(1);
            if check_late && w.is_some_and(|w| last <= w) {
                late += 1;
                continue;
            }
            by_window
                .entry((last, starts.value(i)))
                .or_default()
                .push(i as u32);
        }
        for (window, rows) in by_window {
            let rows = if rows.len() == batch.num_rows() {
                batch.clone()
            } else {
                take_record_batch(batch, &UInt32Array::from(rows))?
            };
            self.windows.entry(window).or_default()[side].push(rows);
        }
        Ok(late)
    }

    /// Each row's join key (`None`: a NULL in it).
    fn keys(&self, side: usize, batch: &RecordBatch) -> Result<Vec<Option<Box<[u8]>>>> {
        self.encoder.encode(&self.node.keys[side], batch)
    }

    fn concat(&self, side: usize, batches: &[RecordBatch]) -> Result<RecordBatch> {
        Ok(concat_batches(&self.node.inputs[side], batches)?)
    }

    /// What a closed window's rows give.
    fn join_window(&self, rows: &[Vec<RecordBatch>; 2]) -> Result<Vec<RecordBatch>> {
        let left = self.concat(0, &rows[0])?;
        let right = self.concat(1, &rows[1])?;
        let left_keys = self.keys(0, &left)?;
        let right_keys = self.keys(1, &right)?;
        let mut by_key: HashMap<&[u8], Vec<u32>> = HashMap::new();
        for (r, key) in right_keys.iter().enumerate() {
            if let Some(key) = key {
                by_key.entry(key.as_ref()).or_default().push(r as u32);
            }
        }
        let mut pairs: (Vec<u32>, Vec<u32>) = (Vec::new(), Vec::new());
        for (l, key) in left_keys.iter().enumerate() {
            if let Some(partners) = key.as_ref().and_then(|k| by_key.get(k.as_ref())) {
                for &r in partners {
                    pairs.0.push(l as u32);
                    pairs.1.push(r);
                }
            }
        }
        let mut matched = [vec![false; left.num_rows()], vec![false; right.num_rows()]];
        let mut out = Vec::new();
        if !pairs.0.is_empty() {
            let l = take_record_batch(&left, &UInt32Array::from(pairs.0.clone()))?;
            let r = take_record_batch(&right, &UInt32Array::from(pairs.1.clone()))?;
            let joined = side_by_side(
                &self.pair_schema(),
                &self.node.inputs,
                pairs.0.len(),
                Some(&l),
                Some(&r),
            )?;
            let keep = match &self.node.residual {
                Some((predicate, _)) => Some(without_nulls(
                    evaluate(predicate, &joined)?
                        .as_boolean_opt()
                        .ok_or_else(|| {
                            EngineError::Internal("the join condition is not boolean".into())
                        })?,
                )),
                None => None,
            };
            for n in 0..pairs.0.len() {
                if keep.as_ref().is_none_or(|k| k.value(n)) {
                    matched[0][pairs.0[n] as usize] = true;
                    matched[1][pairs.1[n] as usize] = true;
                }
            }
            if !self.node.kind.left_only() {
                out.push(match &keep {
                    Some(k) => filter_record_batch(&joined, k)?,
                    None => joined,
                });
            }
        }
        let select =
            |batch: &RecordBatch, wanted: &dyn Fn(usize) -> bool| -> Result<Option<RecordBatch>> {
                let rows: Vec<u32> = (0..batch.num_rows())
                    .filter(|&i| wanted(i))
                    .map(|i| i as u32)
                    .collect();
                if rows.is_empty() {
                    return Ok(None);
                }
                Ok(Some(take_record_batch(batch, &UInt32Array::from(rows))?))
            };
        let kind = self.node.kind;
        match kind {
            WindowJoinKind::Semi => out.extend(select(&left, &|i| matched[0][i])?),
            WindowJoinKind::Anti => out.extend(select(&left, &|i| !matched[0][i])?),
            WindowJoinKind::NullAwareAnti => {
                // x NOT IN (set): true for an empty set; unknown (not emitted) when the set
                // holds a NULL or x is NULL.
                if right.num_rows() == 0 {
                    out.push(left.clone());
                } else if right_keys.iter().all(Option::is_some) {
                    out.extend(select(&left, &|i| {
                        left_keys[i].is_some() && !matched[0][i]
                    })?);
                }
            }
            _ => {
                for side in [0, 1] {
                    if !kind.pads(side) {
                        continue;
                    }
                    let batch = if side == 0 { &left } else { &right };
                    if let Some(rows) = select(batch, &|i| !matched[side][i])? {
                        let n = rows.num_rows();
                        out.push(if side == 0 {
                            side_by_side(
                                &self.node.schema,
                                &self.node.inputs,
                                n,
                                Some(&rows),
                                None,
                            )?
                        } else {
                            side_by_side(
                                &self.node.schema,
                                &self.node.inputs,
                                n,
                                None,
                                Some(&rows),
                            )?
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// The schema of a pair (left columns then right ones), over which the residual runs.
    fn pair_schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        if !self.node.kind.left_only() {
            return self.node.schema.clone();
        }
        let fields: Vec<_> = self.node.inputs[0]
            .fields()
            .iter()
            .chain(self.node.inputs[1].fields().iter())
            .cloned()
            .collect();
        Arc::new(datafusion::arrow::datatypes::Schema::new(fields))
    }

    /// Approximate bytes of state.
    pub(super) fn state_size(&self) -> usize {
        self.windows
            .values()
            .flat_map(|sides| sides.iter().flatten())
            .map(RecordBatch::get_array_memory_size)
            .sum()
    }
}

impl Operator for WindowJoinOperator {
    fn name(&self) -> &'static str {
        "window-join"
    }

    fn process(&mut self, input: usize, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        if input > 1 {
            return Err(EngineError::Internal(format!(
                "a window join has two inputs, not input {input}"
            )));
        }
        let late = self.insert(input, &batch, true)?;
        self.metrics.late(late);
        Ok(None)
    }

    fn on_watermark(&mut self, watermark: Watermark) -> Result<Vec<RecordBatch>> {
        if self.watermark.is_some_and(|w| w >= watermark) {
            return Ok(Vec::new());
        }
        self.watermark = Some(watermark);
        let w = watermark.0.0;
        let open = match w.checked_add(1) {
            Some(next) => self.windows.split_off(&(next, i64::MIN)),
            None => BTreeMap::new(),
        };
        let closed = std::mem::replace(&mut self.windows, open);
        let mut out = Vec::new();
        for rows in closed.values() {
            out.extend(self.join_window(rows)?);
        }
        self.metrics.observe(watermark, self.state_size());
        Ok(out)
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
