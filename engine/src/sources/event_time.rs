//! A table's `WATERMARK FOR col AS expr`, compiled against the columns it reads.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit, TimestampMillisecondType};
use datafusion::common::DFSchema;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::ExprSchemable;
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
        let expr = state
            .create_physical_expr(logical, &sub)
            .map_err(|e| fail(e.strip_backtrace()))?;
        Ok(Some(WatermarkExpr { columns, expr }))
    }

    /// The expression's value per row of `batch` (which holds exactly `columns`), in
    /// milliseconds; NULL rows give `None`.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<Vec<Option<i64>>> {
        let values = self.expr.evaluate(batch)?.into_array(batch.num_rows())?;
        let values = cast(&values, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
        let values = values.as_primitive::<TimestampMillisecondType>();
        Ok((0..values.len())
            .map(|i| values.is_valid(i).then(|| values.value(i)))
            .collect())
    }
}

/// Shared so that a source task and its decoder use one compiled expression.
pub type SharedWatermarkExpr = Arc<WatermarkExpr>;
