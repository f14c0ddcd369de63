//! Building a join's output rows: the left and right columns side by side, either side
//! possibly absent (NULLs, for a row an outer join pads).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions, new_null_array,
};
use datafusion::arrow::datatypes::{Schema, SchemaRef};

use crate::error::Result;

/// `rows` output rows of `schema`: the columns of `left` and `right` (rows of inputs with
/// schemas `inputs`), or NULLs for an absent side.
pub fn side_by_side(
    schema: &SchemaRef,
    inputs: &[SchemaRef; 2],
    rows: usize,
    left: Option<&RecordBatch>,
    right: Option<&RecordBatch>,
) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (side, batch) in [left, right].into_iter().enumerate() {
        match batch {
            Some(b) => columns.extend(b.columns().iter().cloned()),
            None => columns.extend(
                inputs[side]
                    .fields()
                    .iter()
                    .map(|f| new_null_array(f.data_type(), rows)),
            ),
        }
    }
    Ok(RecordBatch::try_new_with_options(
        nullable_where_needed(schema, &columns),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// `schema`, with its fields made nullable when a column holds NULLs its field does not
/// allow (padding of a side declared NOT NULL).
fn nullable_where_needed(schema: &SchemaRef, columns: &[ArrayRef]) -> SchemaRef {
    if schema
        .fields()
        .iter()
        .zip(columns)
        .all(|(f, c)| f.is_nullable() || c.null_count() == 0)
    {
        return schema.clone();
    }
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// A join condition's result as a filter: NULL is false.
pub fn without_nulls(mask: &BooleanArray) -> BooleanArray {
    if mask.null_count() == 0 {
        return mask.clone();
    }
    (0..mask.len())
        .map(|i| Some(mask.is_valid(i) && mask.value(i)))
        .collect()
}
