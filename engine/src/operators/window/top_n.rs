//! Window Top-N: `ROW_NUMBER() OVER (PARTITION BY window_start, window_end, ... ORDER BY
//! ...) <= N`. Rows of a window are held until the watermark fires the window (the window
//! aggregate below emits a window's rows before passing that watermark on), then ranked.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch, UInt32Array, UInt64Array};
use datafusion::arrow::compute::{
    SortColumn, SortOptions, cast, concat_batches, lexsort_to_indices, take,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use datafusion::arrow::row::{RowConverter, SortField};

use super::{cast_to_schema, fired, watermark_from_meta};
use crate::checkpoint::OperatorState;
use crate::error::Result;
use crate::operators::Operator;
use crate::runtime::{KeyHasher, Watermark};

/// Keeps the first `limit` rows per partition of each window.
#[derive(Debug)]
pub struct WindowTopNOperator {
    window_end: usize,
    partition: Vec<usize>,
    order: Vec<(usize, bool, bool)>,
    limit: usize,
    schema: SchemaRef,
    held: BTreeMap<i64, Vec<RecordBatch>>,
    watermark: Option<Watermark>,
    /// Tags snapshot rows with their key group (a keyed instance of a parallel job).
    key_groups: Option<KeyHasher>,
}

impl WindowTopNOperator {
    /// A Top-N over rows whose window end is column `window_end`.
    pub fn new(
        window_end: usize,
        partition: Vec<usize>,
        order: Vec<(usize, bool, bool)>,
        limit: usize,
        schema: SchemaRef,
    ) -> Self {
        Self {
            window_end,
            partition,
            order,
            limit,
            schema,
            held: BTreeMap::new(),
            watermark: None,
            key_groups: None,
        }
    }

    /// Snapshots tag each held row with the key group of its PARTITION BY columns.
    pub fn with_key_groups(mut self, hasher: KeyHasher) -> Self {
        self.key_groups = Some(hasher);
        self
    }

    fn rank(&self, batch: &RecordBatch) -> Result<Option<RecordBatch>> {
        if batch.num_rows() == 0 || self.limit == 0 {
            return Ok(None);
        }
        let mut sort: Vec<SortColumn> = self
            .partition
            .iter()
            .map(|&i| SortColumn {
                values: batch.column(i).clone(),
                options: None,
            })
            .collect();
        sort.extend(
            self.order
                .iter()
                .map(|&(i, descending, nulls_first)| SortColumn {
                    values: batch.column(i).clone(),
                    options: Some(SortOptions {
                        descending,
                        nulls_first,
                    }),
                }),
        );
        let sorted = lexsort_to_indices(&sort, None)?;
        let partition_rows = RowConverter::new(
            self.partition
                .iter()
                .map(|&i| SortField::new(batch.column(i).data_type().clone()))
                .collect(),
        )?
        .convert_columns(
            &self
                .partition
                .iter()
                .map(|&i| batch.column(i).clone())
                .collect::<Vec<_>>(),
        )?;
        let mut keep = Vec::new();
        let mut numbers = Vec::new();
        let mut previous: Option<usize> = None;
        let mut n = 0u64;
        for &row in sorted.values() {
            let row = row as usize;
            let same = previous.is_some_and(|p| partition_rows.row(p) == partition_rows.row(row));
            n = if same { n + 1 } else { 1 };
            previous = Some(row);
            if n as usize <= self.limit {
                keep.push(row as u32);
                numbers.push(n);
            }
        }
        let indices = UInt32Array::from(keep);
        let mut columns = batch
            .columns()
            .iter()
            .map(|c| Ok(take(c.as_ref(), &indices, None)?))
            .collect::<Result<Vec<_>>>()?;
        columns.push(Arc::new(UInt64Array::from(numbers)));
        let columns = cast_to_schema(&self.schema, columns)?;
        Ok(Some(RecordBatch::try_new(self.schema.clone(), columns)?))
    }
}

impl Operator for WindowTopNOperator {
    fn name(&self) -> &'static str {
        "WindowTopN"
    }

    fn process(&mut self, _input: usize, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        let ends = cast(
            batch.column(self.window_end),
            &DataType::Timestamp(TimeUnit::Millisecond, None),
        )?;
        let ends = ends.as_primitive::<TimestampMillisecondType>();
        let mut by_end: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        for row in 0..batch.num_rows() {
            if ends.is_valid(row) {
                by_end.entry(ends.value(row)).or_default().push(row as u32);
            }
        }
        if by_end.len() == 1 {
            if let Some(end) = by_end.keys().next() {
                self.held.entry(*end).or_default().push(batch);
            }
            return Ok(None);
        }
        for (end, rows) in by_end {
            let indices = UInt32Array::from(rows);
            let columns = batch
                .columns()
                .iter()
                .map(|c| Ok(take(c.as_ref(), &indices, None)?))
                .collect::<Result<Vec<_>>>()?;
            self.held
                .entry(end)
                .or_default()
                .push(RecordBatch::try_new(batch.schema(), columns)?);
        }
        Ok(None)
    }

    fn on_watermark(&mut self, watermark: Watermark) -> Result<Vec<RecordBatch>> {
        self.watermark = Some(watermark);
        let mut out = Vec::new();
        while let Some((&end, _)) = self.held.first_key_value() {
            if !fired(self.watermark, end) {
                break;
            }
            let Some((_, batches)) = self.held.pop_first() else {
                break;
            };
            let Some(first) = batches.first() else {
                continue;
            };
            let all = concat_batches(&first.schema(), &batches)?;
            if let Some(ranked) = self.rank(&all)? {
                out.push(ranked);
            }
        }
        Ok(out)
    }

    /// The rows held for windows that have not fired, and the watermark.
    fn snapshot(&mut self) -> Result<OperatorState> {
        let mut batches = Vec::new();
        for batch in self.held.values().flatten() {
            batches.push(match &self.key_groups {
                Some(hasher) => {
                    let keys: Vec<_> = self
                        .partition
                        .iter()
                        .map(|&i| batch.column(i).clone())
                        .collect();
                    hasher.tag(batch, &keys)?
                }
                None => batch.clone(),
            });
        }
        Ok(OperatorState {
            meta: serde_json::json!({ "watermark": self.watermark.map(|w| w.0.0) }),
            batches,
        })
    }

    fn state_bytes(&self) -> usize {
        self.held
            .values()
            .flatten()
            .map(RecordBatch::get_array_memory_size)
            .sum()
    }

    fn restore(&mut self, state: OperatorState) -> Result<()> {
        // Several snapshots (after a rescale) add up; they share the watermark.
        self.watermark = self.watermark.max(watermark_from_meta(&state.meta));
        let needed = self
            .partition
            .iter()
            .chain(self.order.iter().map(|o| &o.0))
            .fold(self.window_end, |a, b| a.max(*b));
        for batch in state.batches {
            if batch.num_columns() <= needed {
                return Err(crate::error::EngineError::Checkpoint {
                    object: "window Top-N state".into(),
                    reason: format!(
                        "rows of {} columns; this query ranks by column {needed}",
                        batch.num_columns()
                    ),
                });
            }
            // Held rows go back to their windows exactly as they first arrived.
            self.process(0, batch)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::{Field, Int64Type, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(
                "window_end",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
            Field::new("v", DataType::Int64, false),
        ]))
    }

    /// The 2 largest `v` per window (partitioned by the window, as the planner does).
    fn operator() -> WindowTopNOperator {
        WindowTopNOperator::new(0, vec![0], vec![(1, true, false)], 2, schema())
    }

    fn batch(rows: &[(i64, i64)]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(TimestampMillisecondArray::from_iter_values(
                    rows.iter().map(|r| r.0),
                )),
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            ],
        )
        .expect("batch")
    }

    fn values(out: &[RecordBatch]) -> Vec<(i64, i64)> {
        out.iter()
            .flat_map(|b| {
                let ends = b
                    .column(0)
                    .as_primitive::<TimestampMillisecondType>()
                    .clone();
                let v = b.column(1).as_primitive::<Int64Type>().clone();
                (0..b.num_rows())
                    .map(|r| (ends.value(r), v.value(r)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn held_rows_survive_a_snapshot() {
        let input = [
            batch(&[(10, 1), (10, 7), (20, 3)]),
            batch(&[(10, 5), (20, 9), (20, 4)]),
        ];
        let mut straight = operator();
        for b in &input {
            assert!(straight.process(0, b.clone()).expect("process").is_none());
        }
        let expected = values(&straight.on_watermark(Watermark::END).expect("fire"));
        assert_eq!(expected, [(10, 7), (10, 5), (20, 9), (20, 4)]);

        let mut first = operator();
        assert!(
            first
                .process(0, input[0].clone())
                .expect("process")
                .is_none()
        );
        let bytes = first
            .snapshot()
            .expect("snapshot")
            .encode()
            .expect("encode");
        let mut second = operator();
        second
            .restore(OperatorState::decode(&bytes).expect("decode"))
            .expect("restore");
        assert!(
            second
                .process(0, input[1].clone())
                .expect("process")
                .is_none()
        );
        assert_eq!(
            values(&second.on_watermark(Watermark::END).expect("fire")),
            expected
        );
    }
}
