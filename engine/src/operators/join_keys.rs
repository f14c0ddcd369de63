//! A join's equality keys, row-encoded: equal keys of either side give equal bytes (the
//! planner casts both sides' keys to one type), and a key with a NULL meets nothing.

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::logical_expr::ColumnarValue;
use magnetar_sql::plan::PhysicalExprRef;

use crate::error::Result;

/// Encodes the keys of a join's rows.
pub struct JoinKeys {
    converter: RowConverter,
}

/// `e` over `batch`, as an array of its rows.
pub fn evaluate(e: &PhysicalExprRef, batch: &RecordBatch) -> Result<ArrayRef> {
    Ok(match e.evaluate(batch)? {
        ColumnarValue::Array(a) => a,
        ColumnarValue::Scalar(s) => s.to_array_of_size(batch.num_rows())?,
    })
}

impl JoinKeys {
    /// An encoder of keys `keys` over rows of `schema` (the left side's: both sides' keys
    /// have its types).
    pub fn new(keys: &[PhysicalExprRef], schema: &SchemaRef) -> Result<Self> {
        let fields = keys
            .iter()
            .map(|k| Ok(SortField::new(k.data_type(schema)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(JoinKeys {
            converter: RowConverter::new(fields)?,
        })
    }

    /// Each row's key of `batch` by `keys` (`None`: a NULL in it); without keys, every row
    /// has the same empty key.
    pub fn encode(
        &self,
        keys: &[PhysicalExprRef],
        batch: &RecordBatch,
    ) -> Result<Vec<Option<Box<[u8]>>>> {
        let arrays = keys
            .iter()
            .map(|k| evaluate(k, batch))
            .collect::<Result<Vec<_>>>()?;
        if arrays.is_empty() {
            return Ok(vec![Some(Box::default()); batch.num_rows()]);
        }
        let rows = self.converter.convert_columns(&arrays)?;
        Ok((0..batch.num_rows())
            .map(|i| {
                arrays
                    .iter()
                    .all(|a| a.is_valid(i))
                    .then(|| Box::from(rows.row(i).as_ref()))
            })
            .collect())
    }
}
