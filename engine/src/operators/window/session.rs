//! SESSION aggregation: per key, rows closer than the gap form one window, which grows as
//! rows arrive and merges with neighbours it comes to touch (Flink's `TimeWindow`
//! intersection: `[a, b)` and `[c, d)` merge when `a <= d && b >= c`).
//!
//! Every session is a group of one set of accumulators. Merging sessions only links their
//! groups (union-find); when the watermark closes sessions, the state is rebuilt: closed
//! sessions' groups are merged into the output, open ones into fresh state, compacted.
//! A row whose (merged) session has already fired is late: dropped and counted.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{cast, filter};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::GroupsAccumulatorAdapter;
use magnetar_sql::plan::GroupItem;

use datafusion::arrow::array::{BinaryArray, Int64Array};
use datafusion::arrow::datatypes::{Field, Int64Type, Schema};

use super::{AggregateSpec, WindowMetrics, assemble, fired, watermark_from_meta};
use crate::checkpoint::OperatorState;
use crate::error::{EngineError, Result};
use crate::operators::Operator;
use crate::runtime::{KeyHasher, Watermark};

#[derive(Debug, Clone, Copy)]
struct Session {
    start: i64,
    end: i64,
    group: usize,
}

/// Window aggregation for SESSION windows.
pub struct SessionWindowAggregate {
    spec: AggregateSpec,
    group_items: Vec<GroupItem>,
    schema: SchemaRef,
    /// Input columns with each row's own window `[ts, ts + gap)`.
    start_column: usize,
    end_column: usize,
    rows: RowConverter,
    /// Open sessions per key (row-encoded), ordered by start and disjoint.
    sessions: datafusion::common::HashMap<Box<[u8]>, Vec<Session>>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    /// Union-find over groups: merged sessions point to their survivor.
    parent: Vec<usize>,
    watermark: Option<Watermark>,
    metrics: Arc<WindowMetrics>,
    /// Tags snapshot rows with their key group (a keyed instance of a parallel job).
    key_groups: Option<KeyHasher>,
}

impl std::fmt::Debug for SessionWindowAggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionWindowAggregate")
            .field("keys", &self.sessions.len())
            .finish()
    }
}

fn find(parent: &mut [usize], g: usize) -> usize {
    let mut root = g;
    while parent[root] != root {
        root = parent[root];
    }
    let mut g = g;
    while parent[g] != root {
        let next = parent[g];
        parent[g] = root;
        g = next;
    }
    root
}

impl SessionWindowAggregate {
    /// An aggregate whose input carries each row's `[ts, ts + gap)` in the given columns.
    pub fn new(
        spec: AggregateSpec,
        group_items: Vec<GroupItem>,
        schema: SchemaRef,
        start_column: usize,
        end_column: usize,
        metrics: Arc<WindowMetrics>,
    ) -> Result<Self> {
        let rows = RowConverter::new(
            spec.key_schema
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?;
        let accumulators = Self::fresh_accumulators(&spec)?;
        Ok(Self {
            spec,
            group_items,
            schema,
            start_column,
            end_column,
            rows,
            sessions: datafusion::common::HashMap::default(),
            accumulators,
            parent: Vec::new(),
            watermark: None,
            metrics,
            key_groups: None,
        })
    }

    /// Snapshots tag each row with its key's key group, hashed by `hasher` (whose row
    /// encoding is this operator's: both encode the key's types with default options).
    pub fn with_key_groups(mut self, hasher: KeyHasher) -> Self {
        self.key_groups = Some(hasher);
        self
    }

    fn state_size(&self) -> usize {
        let open: usize = self
            .sessions
            .iter()
            .map(|(key, sessions)| key.len() + std::mem::size_of_val(sessions.as_slice()))
            .sum();
        open + self.rows.size()
            + self.parent.len() * std::mem::size_of::<usize>()
            + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
    }

    fn fresh_accumulators(spec: &AggregateSpec) -> Result<Vec<Box<dyn GroupsAccumulator>>> {
        spec.aggregates
            .iter()
            .map(|a| -> Result<Box<dyn GroupsAccumulator>> {
                if a.function.groups_accumulator_supported() {
                    Ok(a.function.create_groups_accumulator()?)
                } else {
                    let f = a.function.clone();
                    Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
                        f.create_accumulator()
                    })))
                }
            })
            .collect()
    }

    /// Emits the sessions the watermark has closed, and compacts the open ones.
    fn close_sessions(&mut self) -> Result<Option<RecordBatch>> {
        let watermark = self.watermark;
        let any_closed = self
            .sessions
            .values()
            .flatten()
            .any(|s| fired(watermark, s.end));
        if !any_closed {
            return Ok(None);
        }
        let total = self.parent.len();
        let states: Vec<Vec<_>> = self
            .accumulators
            .iter_mut()
            .map(|a| a.state(EmitTo::All))
            .collect::<datafusion::error::Result<_>>()?;
        // New indices: closed sessions in output order, open ones compacted.
        let mut closed_index = vec![usize::MAX; total];
        let mut open_index = vec![usize::MAX; total];
        let mut closed_rows = Vec::new();
        let mut closed_windows = Vec::new();
        let mut open_count = 0;
        for (key, sessions) in &mut self.sessions {
            for s in sessions.iter_mut() {
                if fired(watermark, s.end) {
                    closed_index[s.group] = closed_windows.len();
                    closed_windows.push((s.start, s.end));
                    closed_rows.push(key.clone());
                } else {
                    open_index[s.group] = open_count;
                    s.group = open_count;
                    open_count += 1;
                }
            }
            sessions.retain(|s| !fired(watermark, s.end));
        }
        self.sessions.retain(|_, sessions| !sessions.is_empty());
        // Every group goes where its root went.
        let mut to_closed = Vec::with_capacity(total);
        let mut to_open = Vec::with_capacity(total);
        let mut is_closed = Vec::with_capacity(total);
        let mut is_open = Vec::with_capacity(total);
        for g in 0..total {
            let root = find(&mut self.parent, g);
            let (c, o) = (closed_index[root], open_index[root]);
            is_closed.push(c != usize::MAX);
            is_open.push(o != usize::MAX);
            to_closed.push(if c == usize::MAX { 0 } else { c });
            to_open.push(if o == usize::MAX { 0 } else { o });
        }
        let mut output = Self::fresh_accumulators(&self.spec)?;
        let mut open = Self::fresh_accumulators(&self.spec)?;
        let select = |mask: &[bool],
                      state: &Vec<ArrayRef>,
                      to: &[usize]|
         -> Result<(Vec<ArrayRef>, Vec<usize>)> {
            let mask_array = BooleanArray::from(mask.to_vec());
            let picked = state
                .iter()
                .map(|a| Ok(filter(a.as_ref(), &mask_array)?))
                .collect::<Result<Vec<_>>>()?;
            let indices = to
                .iter()
                .zip(mask)
                .filter(|(_, keep)| **keep)
                .map(|(i, _)| *i)
                .collect();
            Ok((picked, indices))
        };
        for (i, state) in states.iter().enumerate() {
            let (values, indices) = select(&is_closed, state, &to_closed)?;
            output[i].merge_batch(&values, &indices, closed_windows.len())?;
            let (values, indices) = select(&is_open, state, &to_open)?;
            open[i].merge_batch(&values, &indices, open_count)?;
        }
        self.accumulators = open;
        self.parent = (0..open_count).collect();
        let values = output
            .iter_mut()
            .map(|a| a.evaluate(EmitTo::All))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        if closed_windows.is_empty() {
            return Ok(None);
        }
        let parser = self.rows.parser();
        let keys = self
            .rows
            .convert_rows(closed_rows.iter().map(|r| parser.parse(r)))?;
        let keys = if self.spec.keys.is_empty() {
            Vec::new()
        } else {
            keys
        };
        Ok(Some(assemble(
            &self.schema,
            &self.group_items,
            &closed_windows,
            &keys,
            values,
        )?))
    }
}

impl Operator for SessionWindowAggregate {
    fn name(&self) -> &'static str {
        "SessionWindowAggregate"
    }

    fn process(&mut self, _input: usize, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        let as_ms = |i: usize| {
            cast(
                batch.column(i),
                &DataType::Timestamp(TimeUnit::Millisecond, None),
            )
        };
        let starts = as_ms(self.start_column)?;
        let ends = as_ms(self.end_column)?;
        let starts = starts.as_primitive::<TimestampMillisecondType>();
        let ends = ends.as_primitive::<TimestampMillisecondType>();
        let rows = self.spec.evaluate(&batch)?;
        let keys = self.rows.convert_columns(&rows.keys)?;
        let mut groups = Vec::with_capacity(batch.num_rows());
        let mut keep = Vec::with_capacity(batch.num_rows());
        let mut late = 0;
        let mut touching: Vec<usize> = Vec::new();
        for row in 0..batch.num_rows() {
            if starts.is_null(row) || ends.is_null(row) {
                late += 1;
                keep.push(false);
                groups.push(0);
                continue;
            }
            let (row_start, row_end) = (starts.value(row), ends.value(row));
            let (mut start, mut end) = (row_start, row_end);
            let key = keys.row(row);
            let mut list = self.sessions.get_mut(key.as_ref());
            // The sessions this row's window touches, and the window they would make.
            touching.clear();
            for (i, s) in list.iter().flat_map(|l| l.iter()).enumerate() {
                if s.start <= row_end && s.end >= row_start {
                    touching.push(i);
                    start = start.min(s.start);
                    end = end.max(s.end);
                }
            }
            if fired(self.watermark, end) {
                late += 1;
                keep.push(false);
                groups.push(0);
                continue;
            }
            // Touching sessions come from `list`, so a row without a list opens a new session.
            let group = match (list.take(), touching.first()) {
                (Some(list), Some(&first)) => {
                    let survivor = find(&mut self.parent, list[first].group);
                    for &i in touching.iter().skip(1) {
                        let other = find(&mut self.parent, list[i].group);
                        self.parent[other] = survivor;
                    }
                    for &i in touching.iter().skip(1).rev() {
                        list.remove(i);
                    }
                    list[first] = Session {
                        start,
                        end,
                        group: survivor,
                    };
                    survivor
                }
                (list, _) => {
                    let g = self.parent.len();
                    self.parent.push(g);
                    let list = match list {
                        Some(list) => list,
                        None => self
                            .sessions
                            .entry(key.as_ref().to_vec().into_boxed_slice())
                            .or_default(),
                    };
                    let at = list.partition_point(|s| s.start < start);
                    list.insert(
                        at,
                        Session {
                            start,
                            end,
                            group: g,
                        },
                    );
                    g
                }
            };
            keep.push(true);
            groups.push(group);
        }
        self.metrics.late(late);
        let total = self.parent.len();
        let keep = BooleanArray::from(keep);
        for ((acc, args), filter) in self
            .accumulators
            .iter_mut()
            .zip(&rows.args)
            .zip(&rows.filters)
        {
            let mask = match filter {
                Some(f) => datafusion::arrow::compute::and(f, &keep)?,
                None => keep.clone(),
            };
            acc.update_batch(args, &groups, Some(&mask), total)?;
        }
        Ok(None)
    }

    fn on_watermark(&mut self, watermark: Watermark) -> Result<Vec<RecordBatch>> {
        if self.watermark.is_some_and(|w| w >= watermark) {
            return Ok(Vec::new());
        }
        self.watermark = Some(watermark);
        let closed = self.close_sessions()?;
        self.metrics.observe(watermark, self.state_size());
        Ok(closed.into_iter().collect())
    }

    fn state_bytes(&self) -> usize {
        self.state_size()
    }

    /// One row per open session: its key (row-encoded), bounds and partial aggregates. The
    /// live state is compacted to one group per session on the way (as closing does).
    fn snapshot(&mut self) -> Result<OperatorState> {
        let total = self.parent.len();
        let states: Vec<Vec<ArrayRef>> = self
            .accumulators
            .iter_mut()
            .map(|a| a.state(EmitTo::All))
            .collect::<datafusion::error::Result<_>>()?;
        let mut index = vec![usize::MAX; total];
        let mut keys: Vec<&[u8]> = Vec::new();
        let mut starts = Vec::new();
        let mut ends = Vec::new();
        for (key, sessions) in self.sessions.iter_mut() {
            for s in sessions.iter_mut() {
                index[s.group] = starts.len();
                s.group = starts.len();
                keys.push(key);
                starts.push(s.start);
                ends.push(s.end);
            }
        }
        let count = starts.len();
        let roots: Vec<usize> = (0..total)
            .map(|g| index[find(&mut self.parent, g)])
            .collect();
        let mask: Vec<bool> = roots.iter().map(|i| *i != usize::MAX).collect();
        let to: Vec<usize> = roots.iter().copied().filter(|i| *i != usize::MAX).collect();
        let mask = BooleanArray::from(mask);
        let mut per_session = Self::fresh_accumulators(&self.spec)?;
        for (acc, state) in per_session.iter_mut().zip(&states) {
            let picked = state
                .iter()
                .map(|a| Ok(filter(a.as_ref(), &mask)?))
                .collect::<Result<Vec<_>>>()?;
            acc.merge_batch(&picked, &to, count)?;
        }
        let session_states: Vec<Vec<ArrayRef>> = per_session
            .iter_mut()
            .map(|a| a.state(EmitTo::All))
            .collect::<datafusion::error::Result<_>>()?;
        // `state` took them out: put the compacted state back.
        let identity: Vec<usize> = (0..count).collect();
        let mut back = Self::fresh_accumulators(&self.spec)?;
        for (acc, state) in back.iter_mut().zip(&session_states) {
            acc.merge_batch(state, &identity, count)?;
        }
        self.accumulators = back;
        self.parent = identity;
        let mut fields = vec![
            Field::new("key", DataType::Binary, false),
            Field::new("start", DataType::Int64, false),
            Field::new("end", DataType::Int64, false),
        ];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(BinaryArray::from(keys)),
            Arc::new(Int64Array::from(starts)),
            Arc::new(Int64Array::from(ends)),
        ];
        for (a, state) in session_states.into_iter().enumerate() {
            for (j, s) in state.into_iter().enumerate() {
                fields.push(Field::new(format!("s{a}_{j}"), s.data_type().clone(), true));
                columns.push(s);
            }
        }
        let batches = if count == 0 {
            Vec::new()
        } else {
            let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
            vec![
                match (&self.key_groups, batch.column(0).as_binary_opt::<i32>()) {
                    (Some(hasher), Some(keys)) => hasher.tag_encoded(&batch, keys)?,
                    _ => batch,
                },
            ]
        };
        Ok(OperatorState {
            meta: serde_json::json!({ "watermark": self.watermark.map(|w| w.0.0) }),
            batches,
        })
    }

    fn restore(&mut self, state: OperatorState) -> Result<()> {
        let bad = |reason: String| EngineError::Checkpoint {
            object: "session window state".into(),
            reason,
        };
        // Several snapshots (after a rescale) add up; they share the watermark.
        self.watermark = self.watermark.max(watermark_from_meta(&state.meta));
        let state_counts: Vec<usize> = self.spec.state_types()?.iter().map(Vec::len).collect();
        for batch in state.batches {
            self.spec
                .check_state_columns(
                    batch.columns(),
                    &[DataType::Binary, DataType::Int64, DataType::Int64],
                    false,
                )
                .map_err(bad)?;
            let (Some(keys), Some(starts), Some(ends)) = (
                batch.column(0).as_binary_opt::<i32>(),
                batch.column(1).as_primitive_opt::<Int64Type>(),
                batch.column(2).as_primitive_opt::<Int64Type>(),
            ) else {
                return Err(bad("key, start and end columns of the wrong types".into()));
            };
            let first = self.parent.len();
            let rows = batch.num_rows();
            for r in 0..rows {
                let group = first + r;
                self.parent.push(group);
                let list = self
                    .sessions
                    .entry(keys.value(r).to_vec().into_boxed_slice())
                    .or_default();
                let (start, end) = (starts.value(r), ends.value(r));
                let at = list.partition_point(|s| s.start < start);
                list.insert(at, Session { start, end, group });
            }
            let indices: Vec<usize> = (first..first + rows).collect();
            let mut at = 3;
            for (acc, n) in self.accumulators.iter_mut().zip(&state_counts) {
                acc.merge_batch(&batch.columns()[at..at + n], &indices, self.parent.len())?;
                at += n;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray, TimestampMillisecondArray};

    use super::*;
    use crate::operators::window::test_support::{
        assert_rescaling_changes_nothing, assert_snapshots_change_nothing, count_and_sum_by_user,
        output_schema,
    };
    use crate::runtime::EventTime;

    const GAP: i64 = 5;

    fn input_schema() -> SchemaRef {
        let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
        Arc::new(Schema::new(vec![
            Field::new("user", DataType::Utf8, false),
            Field::new("x", DataType::Int64, false),
            Field::new("row_start", ts.clone(), false),
            Field::new("row_end", ts, false),
        ]))
    }

    /// SESSION(gap 5 ms): count(x) and sum(x) per user.
    fn operator() -> SessionWindowAggregate {
        let (spec, group) = count_and_sum_by_user(&input_schema());
        SessionWindowAggregate::new(spec, group, output_schema(), 2, 3, Arc::default())
            .expect("operator")
    }

    /// Three users; a pause of 10 ms after every 15 rows ends their sessions; some rows a
    /// little late (they bridge or extend sessions).
    fn input() -> Vec<(RecordBatch, Watermark)> {
        let users = ["a", "b", "c"];
        (0..9)
            .map(|b| {
                let rows: Vec<i64> = (b * 10..b * 10 + 10).collect();
                let ts: Vec<i64> = rows
                    .iter()
                    .map(|i| i + (i / 15) * 10 - if i % 4 == 0 { 3 } else { 0 })
                    .collect();
                let batch = RecordBatch::try_new(
                    input_schema(),
                    vec![
                        Arc::new(StringArray::from_iter_values(
                            rows.iter().map(|i| users[(*i % 3) as usize]),
                        )),
                        Arc::new(Int64Array::from(rows.clone())),
                        Arc::new(TimestampMillisecondArray::from(ts.clone())),
                        Arc::new(TimestampMillisecondArray::from_iter_values(
                            ts.iter().map(|t| t + GAP),
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
    fn snapshots_split_by_key_group_restore_at_another_parallelism() {
        assert_rescaling_changes_nothing(
            operator,
            SessionWindowAggregate::with_key_groups,
            DataType::Utf8,
            0,
            &input(),
        );
    }

    #[test]
    fn a_restored_snapshot_gives_the_output_of_an_uninterrupted_run() {
        let expected = assert_snapshots_change_nothing(operator, &input());
        assert!(
            expected.len() > 3 * 3,
            "several sessions per user: {expected:?}"
        );
    }
}
