//! The join's state in a checkpoint: per side, one batch of its kept rows (its input's
//! columns after a matched flag), each row tagged with its key's key group so that a
//! restore at another parallelism splits them; the watermark in the meta.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray};

use super::operator::IntervalJoinOperator;
use crate::checkpoint::OperatorState;
use crate::error::{EngineError, Result};
use crate::operators::join_snapshot::{read_side, restore_watermark, side_batch, state};

/// The first column's name of each side's batch, which says whose rows it holds.
const MATCHED: [&str; 2] = ["__left_matched", "__right_matched"];

fn bad(reason: &str) -> EngineError {
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
        let keys = match &op.key_groups {
            Some(hasher) => Some((hasher, op.key_arrays(side, &rows)?)),
            None => None,
        };
        batches.push(side_batch(
            marker,
            Arc::new(BooleanArray::from(matched)),
            &rows,
            keys,
        )?);
    }
    Ok(state(batches, op.watermark))
}

/// Puts back (some key groups of) a state [`take`] wrote.
pub fn restore(op: &mut IntervalJoinOperator, state: OperatorState) -> Result<()> {
    restore_watermark(&state, &mut op.watermark);
    for batch in &state.batches {
        let (side, first, rows) = read_side("interval join", batch, &MATCHED, &op.node.inputs)?;
        let matched = first
            .as_boolean_opt()
            .ok_or_else(|| bad("the matched flags are not booleans"))?
            .clone();
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
