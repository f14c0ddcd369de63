//! The `MATCH_RECOGNIZE` operator: rows are held until the watermark passes them (a row at
//! or behind the watermark is late: dropped and counted), then fed per partition in event
//! time order (rows of equal time in arrival order, or by the further ORDER BY columns) to
//! the partition's matcher; each released match becomes one output row.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use magnetar_sql::plan::{MatchRecognizeNode, PhysicalSlotExpr};

use super::buffer::{EventId, Row};
use super::eval::{MatchView, evaluate, slot_batch, truthy};
use super::matcher::{Match, Matcher, PartitionState};
use super::nfa::Nfa;
use super::snapshot;
use crate::checkpoint::OperatorState;
use crate::error::{EngineError, Result};
use crate::operators::Operator;
use crate::operators::window::WindowMetrics;
use crate::runtime::{KeyHasher, Watermark};

/// A partition key, row-encoded.
pub type Key = Arc<[u8]>;

/// A row waiting for the watermark.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Its partition.
    pub key: Key,
    /// Kept column values (empty when no variable can take it).
    pub values: Vec<ScalarValue>,
    /// Which variables' row conditions it satisfies.
    pub row_ok: u64,
}

/// One partition: its key's values (for output) and its matching state.
#[derive(Debug)]
pub struct Partition {
    /// PARTITION BY values.
    pub key_values: Vec<ScalarValue>,
    /// Matching state.
    pub state: PartitionState,
}

/// Runs a `MATCH_RECOGNIZE`.
pub struct MatchRecognizeOperator {
    pub(super) matcher: Matcher,
    pub(super) node: MatchRecognizeNode,
    /// Input columns kept in rows, in value order.
    pub(super) kept: Vec<usize>,
    pub(super) converter: RowConverter,
    pub(super) partitions: HashMap<Key, Partition>,
    /// Rows not yet passed by the watermark, by (event time, arrival).
    pub(super) pending: BTreeMap<(i64, u64), Pending>,
    pub(super) arrivals: u64,
    /// Processing order counter (see `EventId::seq`).
    pub(super) processed: u64,
    /// (start + WITHIN, key): when a partition's partial match times out.
    pub(super) deadlines: BTreeSet<(i64, Key)>,
    pub(super) watermark: Option<Watermark>,
    pub(super) metrics: Arc<WindowMetrics>,
    pub(super) key_groups: Option<KeyHasher>,
}

impl std::fmt::Debug for MatchRecognizeOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatchRecognizeOperator")
            .field("partitions", &self.partitions.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

/// The input columns the pattern reads: every slot's column and the further ORDER BY ones.
fn kept_columns(node: &MatchRecognizeNode) -> Vec<usize> {
    use magnetar_sql::match_recognize::Slot;
    let mut kept = BTreeSet::new();
    let exprs = node
        .defines
        .iter()
        .flat_map(|d| d.row.iter().chain(d.matched.iter()))
        .chain(node.measures.iter());
    for e in exprs {
        for s in &e.slots {
            match s {
                Slot::Value { column, .. } => {
                    kept.insert(*column);
                }
                Slot::Aggregate {
                    column: Some(column),
                    ..
                } => {
                    kept.insert(*column);
                }
                _ => {}
            }
        }
    }
    kept.extend(node.spec.order.iter().map(|(c, ..)| *c));
    kept.into_iter().collect()
}

impl MatchRecognizeOperator {
    /// An operator running `node`.
    pub fn new(node: MatchRecognizeNode, metrics: Arc<WindowMetrics>) -> Result<Self> {
        let spec = node.spec.clone();
        if spec.pattern.variables.len() > 64 {
            return Err(EngineError::Internal(
                "more than 64 pattern variables".into(),
            ));
        }
        let kept = kept_columns(&node);
        let mut positions = vec![None; node.input_schema.fields().len()];
        for (p, &c) in kept.iter().enumerate() {
            positions[c] = Some(p);
        }
        let converter = RowConverter::new(
            spec.partition
                .iter()
                .map(|&c| SortField::new(node.input_schema.field(c).data_type().clone()))
                .collect(),
        )?;
        Ok(Self {
            matcher: Matcher {
                nfa: Nfa::compile(&spec.pattern),
                defines: node.defines.clone(),
                skip: spec.skip,
                within: spec.within,
                positions,
                names: spec.pattern.written.clone(),
            },
            node,
            kept,
            converter,
            partitions: HashMap::new(),
            pending: BTreeMap::new(),
            arrivals: 0,
            processed: 0,
            deadlines: BTreeSet::new(),
            watermark: None,
            metrics,
            key_groups: None,
        })
    }

    /// Tags snapshot rows with their key groups (a keyed instance of a parallel job).
    pub fn with_key_groups(mut self, hasher: KeyHasher) -> Self {
        self.key_groups = Some(hasher);
        self
    }

    /// The PARTITION BY values of a row-encoded key.
    pub(super) fn key_values(&self, key: &[u8]) -> Result<Vec<ScalarValue>> {
        if self.node.spec.partition.is_empty() {
            return Ok(Vec::new());
        }
        let parser = self.converter.parser();
        let arrays = self.converter.convert_rows([parser.parse(key)])?;
        arrays
            .iter()
            .map(|a| Ok(ScalarValue::try_from_array(a, 0)?))
            .collect()
    }

    /// Bit per variable: its row-only condition over each row of `batch`.
    fn row_conditions(&self, batch: &RecordBatch) -> Result<Vec<u64>> {
        let mut bits = vec![0u64; batch.num_rows()];
        for (v, define) in self.node.defines.iter().enumerate() {
            match &define.row {
                None => bits.iter_mut().for_each(|b| *b |= 1 << v),
                Some(condition) => {
                    let result = evaluate(condition, &current_row_slots(condition, batch)?)?;
                    for (i, b) in bits.iter_mut().enumerate() {
                        if truthy(&result, i) {
                            *b |= 1 << v;
                        }
                    }
                }
            }
        }
        Ok(bits)
    }

    fn state_size(&self) -> usize {
        let row = 64 + self.kept.len() * 32;
        self.pending.len() * row
            + self
                .partitions
                .values()
                .map(|p| 64 + (p.state.partial.len() + p.state.completed.len()) * row)
                .sum::<usize>()
    }

    /// Feeds one partition its ready rows (in order), then the watermark; the matches it
    /// releases go to `out` with their MATCH_ROWTIME.
    fn run_partition(
        &mut self,
        key: &Key,
        rows: Vec<(i64, Pending)>,
        watermark: i64,
        out: &mut Vec<(Key, Match, i64)>,
    ) -> Result<()> {
        let mut partition = match self.partitions.remove(key) {
            Some(p) => p,
            // Nothing can start here, and nothing is held.
            None if rows.iter().all(|(_, p)| p.row_ok == 0) => return Ok(()),
            None => Partition {
                key_values: self.key_values(key)?,
                state: PartitionState::default(),
            },
        };
        let order = &self.node.spec.order;
        let mut i = 0;
        let mut rows = rows;
        while i < rows.len() {
            let ts = rows[i].0;
            let mut j = i;
            while j < rows.len() && rows[j].0 == ts {
                j += 1;
            }
            if !order.is_empty() {
                rows[i..j].sort_by(|a, b| compare(&a.1, &b.1, order, &self.kept));
            }
            for m in self.matcher.advance_time(&mut partition.state, ts)? {
                out.push((key.clone(), m, ts));
            }
            for (_, pending) in rows[i..j].iter_mut() {
                let row = Arc::new(Row {
                    id: EventId {
                        ts,
                        seq: self.processed,
                    },
                    values: std::mem::take(&mut pending.values),
                    row_ok: pending.row_ok,
                });
                self.processed += 1;
                for m in self.matcher.process(&mut partition.state, &row)? {
                    out.push((key.clone(), m, ts));
                }
                if let Some(within) = self.matcher.within
                    && partition.state.partial.iter().any(|r| r.start == row.id)
                {
                    self.deadlines
                        .insert((ts.saturating_add(within), key.clone()));
                }
            }
            i = j;
        }
        for m in self.matcher.advance_time(&mut partition.state, watermark)? {
            out.push((key.clone(), m, watermark));
        }
        if !partition.state.is_empty() {
            self.partitions.insert(key.clone(), partition);
        }
        Ok(())
    }

    /// One output row per released match: the partition's values, then the measures.
    fn output(&self, matches: Vec<(Key, Match, i64)>) -> Result<Option<RecordBatch>> {
        if matches.is_empty() {
            return Ok(None);
        }
        let schema: &SchemaRef = &self.node.schema;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        let keys: Vec<Vec<ScalarValue>> = matches
            .iter()
            .map(|(k, ..)| match self.partitions.get(k) {
                Some(p) => Ok(p.key_values.clone()),
                None => self.key_values(k),
            })
            .collect::<Result<_>>()?;
        for c in 0..self.node.spec.partition.len() {
            columns.push(ScalarValue::iter_to_array(
                keys.iter().map(|k| k[c].clone()),
            )?);
        }
        let views: Vec<MatchView<'_>> = matches
            .iter()
            .map(|(_, m, rowtime)| MatchView {
                rows: m,
                current: None,
                rowtime: *rowtime,
            })
            .collect();
        for measure in &self.node.measures {
            let batch = slot_batch(measure, &views, &self.matcher.positions)?;
            columns.push(evaluate(measure, &batch)?);
        }
        let columns = columns
            .into_iter()
            .zip(schema.fields())
            .map(|(c, f)| {
                if c.data_type() == f.data_type() {
                    Ok(c)
                } else {
                    Ok(cast(&c, f.data_type())?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(RecordBatch::try_new_with_options(
            schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(matches.len())),
        )?))
    }
}

impl Operator for MatchRecognizeOperator {
    fn name(&self) -> &'static str {
        "MatchRecognize"
    }

    fn process(&mut self, _input: usize, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        if batch.num_rows() == 0 {
            return Ok(None);
        }
        let spec = self.node.spec.clone();
        let times = cast(
            batch.column(spec.time_index),
            &DataType::Timestamp(TimeUnit::Millisecond, None),
        )?;
        let times = times.as_primitive::<TimestampMillisecondType>();
        let bits = self.row_conditions(&batch)?;
        let keys = self.converter.convert_columns(
            &spec
                .partition
                .iter()
                .map(|&c| batch.column(c).clone())
                .collect::<Vec<_>>(),
        )?;
        let watermark = self.watermark.map(|w| w.0.0);
        let mut late = 0;
        let mut interned: HashMap<&[u8], Key> = HashMap::new();
        for (i, &row_ok) in bits.iter().enumerate() {
            if times.is_null(i) || watermark.is_some_and(|w| times.value(i) <= w) {
                late += 1;
                continue;
            }
            let ts = times.value(i);
            // Without PARTITION BY every row is in the one partition (the converter has no
            // columns and so no rows).
            let bytes: &[u8] = if spec.partition.is_empty() {
                &[]
            } else {
                keys.row(i).data()
            };
            let key = match interned.get(bytes) {
                Some(k) => k.clone(),
                None => {
                    let k: Key = match self.partitions.get_key_value(bytes) {
                        Some((k, _)) => k.clone(),
                        None => Arc::from(bytes),
                    };
                    interned.insert(bytes, k.clone());
                    k
                }
            };
            // A row no variable takes still needs its ORDER BY values to find its place.
            let values = if row_ok == 0 && spec.order.is_empty() {
                Vec::new()
            } else {
                self.kept
                    .iter()
                    .map(|&c| Ok(ScalarValue::try_from_array(batch.column(c), i)?))
                    .collect::<Result<Vec<_>>>()?
            };
            self.pending.insert(
                (ts, self.arrivals),
                Pending {
                    key,
                    values,
                    row_ok,
                },
            );
            self.arrivals += 1;
        }
        self.metrics.late(late);
        Ok(None)
    }

    fn on_watermark(&mut self, watermark: Watermark) -> Result<Vec<RecordBatch>> {
        if self.watermark.is_some_and(|w| w >= watermark) {
            return Ok(Vec::new());
        }
        self.watermark = Some(watermark);
        let w = watermark.0.0;
        let rest = match w.checked_add(1) {
            Some(next) => self.pending.split_off(&(next, 0)),
            None => BTreeMap::new(),
        };
        let ready = std::mem::replace(&mut self.pending, rest);
        // Per partition, in the order of its first ready row.
        let mut order: Vec<Key> = Vec::new();
        let mut by_key: HashMap<Key, Vec<(i64, Pending)>> = HashMap::new();
        for ((ts, _), p) in ready {
            let rows = by_key.entry(p.key.clone()).or_insert_with(|| {
                order.push(p.key.clone());
                Vec::new()
            });
            rows.push((ts, p));
        }
        // Partitions whose partial matches time out under this watermark.
        let mut due = Vec::new();
        while let Some(first) = self.deadlines.first() {
            if first.0 > w {
                break;
            }
            if let Some((_, key)) = self.deadlines.pop_first()
                && !by_key.contains_key(&key)
            {
                due.push(key);
            }
        }
        let mut out = Vec::new();
        for key in order {
            let rows = by_key.remove(&key).unwrap_or_default();
            self.run_partition(&key, rows, w, &mut out)?;
        }
        due.sort();
        due.dedup();
        for key in due {
            if self.partitions.contains_key(&key) {
                self.run_partition(&key, Vec::new(), w, &mut out)?;
            }
        }
        self.metrics.observe(watermark, self.state_size());
        Ok(self.output(out)?.into_iter().collect())
    }

    fn snapshot(&mut self) -> Result<OperatorState> {
        snapshot::take(self)
    }

    fn restore(&mut self, state: OperatorState) -> Result<()> {
        snapshot::restore(self, state)
    }

    fn state_bytes(&self) -> usize {
        self.state_size()
    }
}

/// The slot batch of a row-only condition: the input columns its slots name.
fn current_row_slots(condition: &PhysicalSlotExpr, batch: &RecordBatch) -> Result<RecordBatch> {
    use magnetar_sql::match_recognize::Slot;
    let columns = condition
        .slots
        .iter()
        .map(|s| match s {
            Slot::Value { column, .. } => Ok(batch.column(*column).clone()),
            other => Err(EngineError::Internal(format!(
                "{other:?} in a row-only condition"
            ))),
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new_with_options(
        condition.schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

/// Order of rows of equal time by the further ORDER BY columns (with their NULL placement).
fn compare(
    a: &Pending,
    b: &Pending,
    order: &[(usize, bool, bool)],
    kept: &[usize],
) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for &(column, descending, nulls_first) in order {
        let Some(p) = kept.iter().position(|&c| c == column) else {
            continue;
        };
        let (x, y) = (a.values.get(p), b.values.get(p));
        let x_null = x.is_none_or(ScalarValue::is_null);
        let y_null = y.is_none_or(ScalarValue::is_null);
        let o = match (x_null, y_null) {
            (true, true) => Ordering::Equal,
            (true, false) if nulls_first => Ordering::Less,
            (true, false) => Ordering::Greater,
            (false, true) if nulls_first => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => {
                let o = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
                if descending { o.reverse() } else { o }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}
