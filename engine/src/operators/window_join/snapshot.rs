//! The window join's state in a checkpoint: per side, one batch of the open windows' rows
//! (its input's columns after a marker column naming the side), each row tagged with the
//! key group of its window and key so that a restore at another parallelism splits them;
//! the watermark in the meta. A restored row finds its window again from its own columns.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::logical_expr::ColumnarValue;
use serde_json::json;

use super::operator::WindowJoinOperator;
use crate::checkpoint::OperatorState;
use crate::error::{EngineError, Result};
use crate::runtime::{EventTime, Watermark};

/// The first column's name of each side's batch.
const SIDE: [&str; 2] = ["__left_rows", "__right_rows"];

fn bad(reason: impl Into<String>) -> EngineError {
    EngineError::Checkpoint {
        object: "window join state".into(),
        reason: reason.into(),
    }
}

/// The operator's state.
pub fn take(op: &mut WindowJoinOperator) -> Result<OperatorState> {
    let mut batches = Vec::new();
    for (side, marker) in SIDE.iter().enumerate() {
        let parts: Vec<&RecordBatch> = op.windows.values().flat_map(|w| w[side].iter()).collect();
        if parts.is_empty() {
            continue;
        }
        let rows = concat_batches(&op.node.inputs[side], parts)?;
        let mut fields = vec![Field::new(*marker, DataType::Boolean, false)];
        fields.extend(rows.schema().fields().iter().map(|f| f.as_ref().clone()));
        let mut columns: Vec<ArrayRef> =
            vec![Arc::new(BooleanArray::from(vec![true; rows.num_rows()]))];
        columns.extend(rows.columns().iter().cloned());
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        batches.push(match &op.key_groups {
            Some(hasher) => {
                let keys = op
                    .node
                    .distribution_key(side)
                    .exprs
                    .iter()
                    .map(|k| {
                        Ok(match k.evaluate(&rows)? {
                            ColumnarValue::Array(a) => a,
                            ColumnarValue::Scalar(s) => s.to_array_of_size(rows.num_rows())?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                hasher.tag(&batch, &keys)?
            }
            None => batch,
        });
    }
    Ok(OperatorState {
        meta: json!({ "watermark": op.watermark.map(|w| w.0.0) }),
        batches,
    })
}

/// Puts back (some key groups of) a state [`take`] wrote.
pub fn restore(op: &mut WindowJoinOperator, state: OperatorState) -> Result<()> {
    if let Some(w) = state.meta["watermark"].as_i64() {
        // Every instance saw the same watermarks before the barrier.
        let w = Watermark(EventTime(w));
        if op.watermark.is_none_or(|o| o < w) {
            op.watermark = Some(w);
        }
    }
    for batch in state.batches {
        let Some(side) = SIDE
            .iter()
            .position(|m| batch.schema().field(0).name() == m)
        else {
            return Err(bad(format!(
                "a batch of unknown kind (first column '{}')",
                batch.schema().field(0).name()
            )));
        };
        let schema = op.node.inputs[side].clone();
        if batch.num_columns() != schema.fields().len() + 1 {
            return Err(bad(format!(
                "{} columns where the {} input has {}",
                batch.num_columns() - 1,
                ["left", "right"][side],
                schema.fields().len()
            )));
        }
        let rows = RecordBatch::try_new(schema, batch.columns()[1..].to_vec())?;
        op.insert(side, &rows, false)?;
    }
    Ok(())
}
