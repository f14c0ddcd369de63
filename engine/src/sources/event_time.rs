//! A table's `WATERMARK FOR col AS expr`, compiled against the columns it reads.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit, TimestampMillisecondType};
use datafusion::common::DFSchema;
use datafusion::common::ScalarValue;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, Operator};
use magnetar_sql::catalog::TableDef;
use magnetar_sql::plan::PhysicalExprRef;

use crate::error::{EngineError, Result};

/// The compiled watermark expression of a table.
#[derive(Debug, Clone)]
pub struct WatermarkExpr {
    /// Indices (in the table) of the columns the expression reads, ascending.
    pub columns: Vec<usize>,
    /// The expression, over a batch of exactly `columns`.
    pub expr: PhysicalExprRef,
    /// `col - INTERVAL '<fixed>'` (or just `col`): the position of `col` in `columns` and the
    /// milliseconds subtracted, evaluated without DataFusion's calendar arithmetic.
    shift: Option<(usize, i64)>,
}

impl WatermarkExpr {
    /// Compiles `table`'s watermark expression; `None` for a table without one.
    pub fn compile(table: &TableDef, state: &SessionState) -> Result<Option<WatermarkExpr>> {
        let Some(w) = &table.watermark else {
            return Ok(None);
        };
        let fail = |what: String| {
            EngineError::Sql(magnetar_sql::SqlError::unsupported(
                format!(
                    "WATERMARK FOR {} AS {} in table '{}': {what}",
                    w.column, w.expr, table.name
                ),
                None,
            ))
        };
        let full = DFSchema::try_from(table.schema.as_ref().clone())?;
        let logical = state
            .create_logical_expr(&w.expr, &full)
            .map_err(|e| fail(e.strip_backtrace()))?;
        let mut columns: Vec<usize> = logical
            .column_refs()
            .iter()
            .filter_map(|c| table.schema.index_of(&c.name).ok())
            .collect();
        columns.sort_unstable();
        columns.dedup();
        let sub = Schema::new(
            columns
                .iter()
                .map(|&i| table.schema.field(i).clone())
                .collect::<Vec<_>>(),
        );
        let sub = DFSchema::try_from(sub)?;
        let data_type = logical
            .get_type(&sub)
            .map_err(|e| fail(e.strip_backtrace()))?;
        if !matches!(data_type, DataType::Timestamp(_, _)) {
            return Err(fail(format!(
                "the expression is {data_type}, not a timestamp"
            )));
        }
        let shift = fixed_shift(&logical).and_then(|(name, ms)| {
            let index = table.schema.index_of(&name).ok()?;
            let DataType::Timestamp(_, tz) = table.schema.field(index).data_type() else {
                return None;
            };
            // Days are 24 hours only without a time zone, or in UTC.
            let utc = tz.as_deref().is_none_or(|z| z == "UTC" || z == "+00:00");
            if ms >= 86_400_000 && !utc {
                return None;
            }
            Some((columns.iter().position(|&c| c == index)?, ms))
        });
        let expr = state
            .create_physical_expr(logical, &sub)
            .map_err(|e| fail(e.strip_backtrace()))?;
        Ok(Some(WatermarkExpr {
            columns,
            expr,
            shift,
        }))
    }

    /// The expression's value per row of `batch` (which holds exactly `columns`), in
    /// milliseconds; NULL rows give `None`.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<Vec<Option<i64>>> {
        if let Some((position, ms)) = self.shift {
            let values = cast(
                batch.column(position),
                &DataType::Timestamp(TimeUnit::Millisecond, None),
            )?;
            let values = values.as_primitive::<TimestampMillisecondType>();
            return Ok((0..values.len())
                .map(|i| {
                    values
                        .is_valid(i)
                        .then(|| values.value(i).saturating_sub(ms))
                })
                .collect());
        }
        let values = self.expr.evaluate(batch)?.into_array(batch.num_rows())?;
        let values = cast(&values, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
        let values = values.as_primitive::<TimestampMillisecondType>();
        Ok((0..values.len())
            .map(|i| values.is_valid(i).then(|| values.value(i)))
            .collect())
    }
}

/// `col` or `col - <interval without months>`: the column and the interval in milliseconds
/// (`None` when the interval is not whole milliseconds).
fn fixed_shift(expr: &Expr) -> Option<(String, i64)> {
    match expr {
        Expr::Column(c) => Some((c.name.clone(), 0)),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::Minus => {
            let Expr::Column(c) = left.as_ref() else {
                return None;
            };
            let ms = match right.as_ref() {
                Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _) if v.months == 0 => {
                    (v.nanoseconds % 1_000_000 == 0)
                        .then(|| i64::from(v.days) * 86_400_000 + v.nanoseconds / 1_000_000)?
                }
                Expr::Literal(ScalarValue::IntervalDayTime(Some(v)), _) => {
                    i64::from(v.days) * 86_400_000 + i64::from(v.milliseconds)
                }
                _ => return None,
            };
            Some((c.name.clone(), ms))
        }
        _ => None,
    }
}

/// Shared so that a source task and its decoder use one compiled expression.
pub type SharedWatermarkExpr = Arc<WatermarkExpr>;

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::TimestampMillisecondArray;
    use datafusion::prelude::SessionContext;
    use magnetar_sql::Statement;

    use super::*;

    fn compile(watermark: &str) -> WatermarkExpr {
        let sql = format!(
            "CREATE TABLE t (k STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS {watermark}) \
             WITH ('connector' = 'memory')"
        );
        let Ok(Statement::CreateTable(create)) = magnetar_sql::parse_statement(&sql) else {
            panic!("not a CREATE TABLE: {sql}");
        };
        let table = TableDef::from_create(&create).expect("table");
        WatermarkExpr::compile(&table, &SessionContext::new().state())
            .expect("compiles")
            .expect("has a watermark")
    }

    fn batch(values: &[Option<i64>]) -> RecordBatch {
        let ts = TimestampMillisecondArray::from(values.to_vec());
        RecordBatch::try_from_iter([("ts", Arc::new(ts) as _)]).expect("batch")
    }

    #[test]
    fn fixed_intervals_are_subtracted_directly_and_agree_with_datafusion() {
        let input = [Some(10_000), None, Some(86_400_000 * 40 + 123)];
        for (watermark, shift) in [
            ("ts", 0),
            ("ts - INTERVAL '5' SECOND", 5_000),
            ("ts - INTERVAL '1.5' SECOND", 1_500),
            ("ts - INTERVAL '2' DAY", 2 * 86_400_000),
        ] {
            let fast = compile(watermark);
            assert_eq!(fast.shift, Some((0, shift)), "{watermark}");
            let slow = WatermarkExpr {
                shift: None,
                ..fast.clone()
            };
            let expected: Vec<Option<i64>> = input.iter().map(|v| v.map(|v| v - shift)).collect();
            assert_eq!(fast.evaluate(&batch(&input)).expect("fast"), expected);
            assert_eq!(slow.evaluate(&batch(&input)).expect("slow"), expected);
        }
    }

    #[test]
    fn calendar_intervals_use_datafusion() {
        let w = compile("ts - INTERVAL '1' MONTH");
        assert_eq!(w.shift, None);
        // 1970-03-01 minus one month is 1970-02-01.
        let march = 59 * 86_400_000;
        let feb = 31 * 86_400_000;
        assert_eq!(
            w.evaluate(&batch(&[Some(march)])).expect("eval"),
            vec![Some(feb)]
        );
    }
}
