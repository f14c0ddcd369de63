//! Filling slots from a match and evaluating `DEFINE` and `MEASURES` over them.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::ColumnarValue;
use magnetar_sql::match_recognize::{MatchAggregate, RowNav, Rows, Slot, VarId};
use magnetar_sql::plan::PhysicalSlotExpr;

use super::buffer::Row;
use crate::error::{EngineError, Result};

/// The rows a slot can see: a partial match's rows and, in DEFINE, the row being
/// classified with the variable it would be mapped to.
pub struct MatchView<'a> {
    /// The match's rows so far, first to last.
    pub rows: &'a [(VarId, Arc<Row>)],
    /// The candidate row (DEFINE only).
    pub current: Option<(VarId, &'a Row)>,
    /// The event time a MATCH_ROWTIME() gives.
    pub rowtime: i64,
}

impl MatchView<'_> {
    fn list(&self, rows: Rows) -> Vec<&Row> {
        let keep = |v: VarId| match rows {
            Rows::All => true,
            Rows::Var(w) => v == w,
        };
        self.rows
            .iter()
            .filter(|(v, _)| keep(*v))
            .map(|(_, r)| r.as_ref())
            .chain(self.current.filter(|(v, _)| keep(*v)).map(|(_, r)| r))
            .collect()
    }
}

/// Where each input column's value sits in a [`Row`]'s values (`None`: not kept).
pub type Positions = [Option<usize>];

fn value_of(row: &Row, column: usize, positions: &Positions) -> Result<ScalarValue> {
    positions
        .get(column)
        .copied()
        .flatten()
        .and_then(|p| row.values.get(p).cloned())
        .ok_or_else(|| {
            EngineError::Internal(format!("column {column} is not kept for the pattern"))
        })
}

fn null_of(data_type: &DataType) -> Result<ScalarValue> {
    Ok(ScalarValue::try_from(data_type)?)
}

/// The value of `slot` (of type `data_type`) in `view`.
pub fn slot_value(
    slot: &Slot,
    data_type: &DataType,
    view: &MatchView<'_>,
    positions: &Positions,
) -> Result<ScalarValue> {
    match slot {
        Slot::MatchRowtime => Ok(ScalarValue::TimestampMillisecond(Some(view.rowtime), None)),
        Slot::Value { row, column } => {
            let picked = match row {
                RowNav::Current => view.current.map(|(_, r)| r),
                RowNav::Last(rows, n) => {
                    let list = view.list(*rows);
                    list.len().checked_sub(1 + n).map(|i| list[i])
                }
                RowNav::First(rows, n) => view.list(*rows).get(*n).copied(),
            };
            match picked {
                Some(r) => value_of(r, *column, positions),
                None => null_of(data_type),
            }
        }
        Slot::Aggregate {
            function,
            rows,
            column,
        } => {
            let list = view.list(*rows);
            let values: Vec<ScalarValue> = match column {
                Some(c) => list
                    .iter()
                    .map(|r| value_of(r, *c, positions))
                    .collect::<Result<Vec<_>>>()?
                    .into_iter()
                    .filter(|v| !v.is_null())
                    .collect(),
                None => Vec::new(),
            };
            aggregate(*function, column.is_none(), list.len(), &values, data_type)
        }
    }
}

fn integer(v: &ScalarValue) -> Option<i128> {
    Some(match v {
        ScalarValue::Int8(Some(x)) => i128::from(*x),
        ScalarValue::Int16(Some(x)) => i128::from(*x),
        ScalarValue::Int32(Some(x)) => i128::from(*x),
        ScalarValue::Int64(Some(x)) => i128::from(*x),
        ScalarValue::UInt8(Some(x)) => i128::from(*x),
        ScalarValue::UInt16(Some(x)) => i128::from(*x),
        ScalarValue::UInt32(Some(x)) => i128::from(*x),
        ScalarValue::UInt64(Some(x)) => i128::from(*x),
        _ => return None,
    })
}

fn float(v: &ScalarValue) -> Option<f64> {
    match v {
        ScalarValue::Float32(Some(x)) => Some(f64::from(*x)),
        ScalarValue::Float64(Some(x)) => Some(*x),
        _ => None,
    }
}

/// An integer as a value of `data_type` (an integer type).
fn typed_integer(x: i128, data_type: &DataType) -> Result<ScalarValue> {
    // Flink's integer sums wrap; keep the low bits of the widest type, then cast.
    let wide = ScalarValue::Int64(Some(x as i64));
    match data_type {
        DataType::UInt64 => Ok(ScalarValue::UInt64(Some(x as u64))),
        other => Ok(wide.cast_to(other)?),
    }
}

fn aggregate(
    function: MatchAggregate,
    star: bool,
    rows: usize,
    values: &[ScalarValue],
    data_type: &DataType,
) -> Result<ScalarValue> {
    if function == MatchAggregate::Count {
        let n = if star { rows } else { values.len() };
        return Ok(ScalarValue::Int64(Some(n as i64)));
    }
    if values.is_empty() {
        return null_of(data_type);
    }
    match function {
        MatchAggregate::Count => unreachable!("handled above"),
        MatchAggregate::Min | MatchAggregate::Max => {
            let mut best = &values[0];
            for v in &values[1..] {
                let better = match v.partial_cmp(best) {
                    Some(std::cmp::Ordering::Less) => function == MatchAggregate::Min,
                    Some(std::cmp::Ordering::Greater) => function == MatchAggregate::Max,
                    _ => false,
                };
                if better {
                    best = v;
                }
            }
            Ok(best.clone())
        }
        MatchAggregate::Sum | MatchAggregate::Avg => {
            if let Some(ints) = values.iter().map(integer).collect::<Option<Vec<i128>>>() {
                let sum: i128 = ints.iter().sum();
                let x = if function == MatchAggregate::Avg {
                    // Integer division truncates toward zero, as Flink's AVG of integers.
                    sum / ints.len() as i128
                } else {
                    sum
                };
                return typed_integer(x, data_type);
            }
            let floats = values
                .iter()
                .map(float)
                .collect::<Option<Vec<f64>>>()
                .ok_or_else(|| {
                    EngineError::Internal(format!("{function:?} of {}", values[0].data_type()))
                })?;
            let sum: f64 = floats.iter().sum();
            let x = if function == MatchAggregate::Avg {
                sum / floats.len() as f64
            } else {
                sum
            };
            Ok(ScalarValue::Float64(Some(x)).cast_to(data_type)?)
        }
    }
}

/// The slot columns of `e` for several views (one row each).
pub fn slot_batch(
    e: &PhysicalSlotExpr,
    views: &[MatchView<'_>],
    positions: &Positions,
) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(e.slots.len());
    for (slot, field) in e.slots.iter().zip(e.schema.fields()) {
        let values = views
            .iter()
            .map(|v| slot_value(slot, field.data_type(), v, positions))
            .collect::<Result<Vec<_>>>()?;
        columns.push(if values.is_empty() {
            datafusion::arrow::array::new_empty_array(field.data_type())
        } else {
            ScalarValue::iter_to_array(values)?
        });
    }
    Ok(RecordBatch::try_new_with_options(
        e.schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(views.len())),
    )?)
}

/// `e` evaluated over a slot batch, as an array of its rows.
pub fn evaluate(e: &PhysicalSlotExpr, batch: &RecordBatch) -> Result<ArrayRef> {
    Ok(match e.expr.evaluate(batch)? {
        ColumnarValue::Array(a) => a,
        ColumnarValue::Scalar(s) => s.to_array_of_size(batch.num_rows())?,
    })
}

/// Whether a condition holds for one view (NULL does not).
pub fn holds(e: &PhysicalSlotExpr, view: MatchView<'_>, positions: &Positions) -> Result<bool> {
    let batch = slot_batch(e, std::slice::from_ref(&view), positions)?;
    let result = evaluate(e, &batch)?;
    Ok(truthy(&result, 0))
}

/// Whether row `i` of a boolean result is true (NULL and other types are not).
pub fn truthy(result: &ArrayRef, i: usize) -> bool {
    result
        .as_any()
        .downcast_ref::<BooleanArray>()
        .is_some_and(|b| b.is_valid(i) && b.value(i))
}
