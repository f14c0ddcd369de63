//! The join's state in a checkpoint: per side, one batch of its kept rows (its input's
//! columns after a matched flag), each row tagged with its key's key group so that a
//! restore at another parallelism splits them; the watermark in the meta.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use serde_json::json;

use super::operator::IntervalJoinOperator;
use crate::checkpoint::OperatorState;
use crate::error::{EngineError, Result};
use crate::runtime::{EventTime, Watermark};

/// The first column's name of each side's batch, which says whose rows it holds.
const MATCHED: [&str; 2] = ["__left_matched", "__right_matched"];

fn bad(reason: impl Into<String>) -> EngineError {
    EngineError::Checkpoint {
        object: "interval join state".into(),
        reason: reason.into(),
    }
}

/// The operator's state.
pub fn take(op: &mut IntervalJoinOperator) -> Result<OperatorState> {
    let mut batches = Vec::new();
    for (side, marker) in MATCHED.iter().enumerate() {
        if op.sides[side].len() == 0 {
            continue;
        }
        let (rows, matched) = op.sides[side].all()?;
        let mut fields = vec![Field::new(*marker, DataType::Boolean, false)];
        fields.extend(rows.schema().fields().iter().map(|f| f.as_ref().clone()));
        let mut columns: Vec<ArrayRef> = vec![Arc::new(BooleanArray::from(matched))];
        columns.extend(rows.columns().iter().cloned());
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        batches.push(match &op.key_groups {
            Some(hasher) => hasher.tag(&batch, &op.key_arrays(side, &rows)?)?,
            None => batch,
        });
    }
    Ok(OperatorState {
        meta: json!({ "watermark": op.watermark.map(|w| w.0.0) }),
        batches,
    })
}

/// Puts back (some key groups of) a state [`take`] wrote.
pub fn restore(op: &mut IntervalJoinOperator, state: OperatorState) -> Result<()> {
    if let Some(w) = state.meta["watermark"].as_i64() {
        // Every instance saw the same watermarks before the barrier; the greatest is the
        // one they all had.
        let w = Watermark(EventTime(w));
        if op.watermark.is_none_or(|o| o < w) {
            op.watermark = Some(w);
        }
    }
    for batch in state.batches {
        let Some(side) = MATCHED
            .iter()
            .position(|m| batch.schema().field(0).name() == m)
        else {
            return Err(bad(format!(
                "a batch of unknown kind (first column '{}')",
                batch.schema().field(0).name()
            )));
        };
        let matched = batch
            .column(0)
            .as_boolean_opt()
            .ok_or_else(|| bad("the matched flags are not booleans"))?
            .clone();
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
        let keys = op.keys(side, &rows)?;
        let times = op.times(side, &rows)?;
        let mut kept = Vec::with_capacity(rows.num_rows());
        for (i, (key, t)) in keys.into_iter().zip(times).enumerate() {
            let (Some(key), Some(t)) = (key, t) else {
                return Err(bad("a kept row without a key or a time"));
            };
            kept.push((i, key, t, matched.is_valid(i) && matched.value(i)));
        }
        op.sides[side].insert(&rows, &kept)?;
    }
    Ok(())
}
