//! The window join's state in a checkpoint: per side, one batch of the open windows' rows
//! (its input's columns after a marker column naming the side), each row tagged with the
//! key group of its window and key so that a restore at another parallelism splits them;
//! the watermark in the meta. A restored row finds its window again from its own columns.

use std::sync::Arc;

use datafusion::arrow::array::{BooleanArray, RecordBatch};
use datafusion::arrow::compute::concat_batches;

use super::operator::WindowJoinOperator;
use crate::checkpoint::OperatorState;
use crate::error::Result;
use crate::operators::join_keys::evaluate;
use crate::operators::join_snapshot::{read_side, restore_watermark, side_batch, state};

/// The first column's name of each side's batch.
const SIDE: [&str; 2] = ["__left_rows", "__right_rows"];

/// The operator's state.
pub fn take(op: &mut WindowJoinOperator) -> Result<OperatorState> {
    let mut batches = Vec::new();
    for (side, marker) in SIDE.iter().enumerate() {
        let parts: Vec<&RecordBatch> = op.windows.values().flat_map(|w| w[side].iter()).collect();
        if parts.is_empty() {
            continue;
        }
        let rows = concat_batches(&op.node.inputs[side], parts)?;
        let keys = match &op.key_groups {
            Some(hasher) => Some((
                hasher,
                op.node
                    .distribution_key(side)
                    .exprs
                    .iter()
                    .map(|k| evaluate(k, &rows))
                    .collect::<Result<Vec<_>>>()?,
            )),
            None => None,
        };
        let marks = Arc::new(BooleanArray::from(vec![true; rows.num_rows()]));
        batches.push(side_batch(marker, marks, &rows, keys)?);
    }
    Ok(state(batches, op.watermark))
}

/// Puts back (some key groups of) a state [`take`] wrote.
pub fn restore(op: &mut WindowJoinOperator, state: OperatorState) -> Result<()> {
    restore_watermark(&state, &mut op.watermark);
    for batch in &state.batches {
        let (side, _, rows) = read_side("window join", batch, &SIDE, &op.node.inputs)?;
        op.insert(side, &rows, false)?;
    }
    Ok(())
}
