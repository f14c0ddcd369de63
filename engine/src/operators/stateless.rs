//! Filter and projection of each batch with DataFusion's compiled expressions.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use magnetar_sql::plan::PhysicalExprRef;

use super::Operator;
use crate::error::{EngineError, Result};

/// Keeps the rows where the predicate is true, then computes the output columns.
#[derive(Debug)]
pub struct StatelessOperator {
    predicate: Option<PhysicalExprRef>,
    projection: Option<Vec<PhysicalExprRef>>,
    schema: SchemaRef,
}

impl StatelessOperator {
    /// An operator with an optional predicate and optional projection into `schema`.
    pub fn new(
        predicate: Option<PhysicalExprRef>,
        projection: Option<Vec<PhysicalExprRef>>,
        schema: SchemaRef,
    ) -> Self {
        Self {
            predicate,
            projection,
            schema,
        }
    }
}

impl Operator for StatelessOperator {
    fn name(&self) -> &'static str {
        "Stateless"
    }

    fn process(&mut self, _input: usize, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        let batch = match &self.predicate {
            None => batch,
            Some(predicate) => {
                let mask = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
                if mask.data_type() != &DataType::Boolean {
                    return Err(EngineError::Internal(format!(
                        "filter produced {} instead of booleans",
                        mask.data_type()
                    )));
                }
                let mask = mask.as_boolean();
                if mask.true_count() == 0 {
                    return Ok(None);
                }
                if mask.true_count() == batch.num_rows() && mask.null_count() == 0 {
                    batch
                } else {
                    filter_record_batch(&batch, mask)?
                }
            }
        };
        let Some(projection) = &self.projection else {
            return Ok(Some(batch));
        };
        let mut columns = projection
            .iter()
            .map(|expr| {
                expr.evaluate(&batch)
                    .and_then(|v| v.into_array(batch.num_rows()))
            })
            .collect::<datafusion::error::Result<Vec<Arc<dyn Array>>>>()?;
        // A function may return an equivalent physical type other than the planned one
        // (Utf8View for Utf8, say): cast to what the plan promised downstream.
        for (column, field) in columns.iter_mut().zip(self.schema.fields()) {
            if column.data_type() != field.data_type() {
                *column = cast(column, field.data_type())?;
            }
        }
        let out = RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )?;
        Ok(Some(out))
    }
}
