//! What the join operators' snapshots share: one batch per side, its input's columns after
//! a first column whose name says the side, and the watermark in the meta.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::json;

use crate::checkpoint::OperatorState;
use crate::error::{EngineError, Result};
use crate::runtime::{EventTime, KeyHasher, Watermark};

fn bad(what: &str, reason: impl Into<String>) -> EngineError {
    EngineError::Checkpoint {
        object: format!("{what} state"),
        reason: reason.into(),
    }
}

/// `rows` of one side with `first` (a boolean column named `marker`) before them, tagged
/// with the key groups of `keys` when the instance is keyed.
pub fn side_batch(
    marker: &str,
    first: ArrayRef,
    rows: &RecordBatch,
    key_groups: Option<(&KeyHasher, Vec<ArrayRef>)>,
) -> Result<RecordBatch> {
    let mut fields = vec![Field::new(marker, DataType::Boolean, false)];
    fields.extend(rows.schema().fields().iter().map(|f| f.as_ref().clone()));
    let mut columns = vec![first];
    columns.extend(rows.columns().iter().cloned());
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    Ok(match key_groups {
        Some((hasher, keys)) => hasher.tag(&batch, &keys)?,
        None => batch,
    })
}

/// The state: the side batches and the watermark.
pub fn state(batches: Vec<RecordBatch>, watermark: Option<Watermark>) -> OperatorState {
    OperatorState {
        meta: json!({ "watermark": watermark.map(|w| w.0.0) }),
        batches,
    }
}

/// Raises `watermark` to the snapshot's: every instance saw the same watermarks before the
/// barrier, so the greatest over several snapshots is the one they all had.
pub fn restore_watermark(state: &OperatorState, watermark: &mut Option<Watermark>) {
    if let Some(w) = state.meta["watermark"].as_i64() {
        let w = Watermark(EventTime(w));
        if watermark.is_none_or(|o| o < w) {
            *watermark = Some(w);
        }
    }
}

/// A side batch read back: which side (by `markers`), its first column, and its rows in
/// that side's schema (of `inputs`).
pub fn read_side(
    what: &str,
    batch: &RecordBatch,
    markers: &[&str; 2],
    inputs: &[SchemaRef; 2],
) -> Result<(usize, ArrayRef, RecordBatch)> {
    let first = batch.schema().field(0).name().clone();
    let Some(side) = markers.iter().position(|m| *m == first) else {
        return Err(bad(
            what,
            format!("a batch of unknown kind (first column '{first}')"),
        ));
    };
    let schema = inputs[side].clone();
    if batch.num_columns() != schema.fields().len() + 1 {
        return Err(bad(
            what,
            format!(
                "{} columns where the {} input has {}",
                batch.num_columns() - 1,
                ["left", "right"][side],
                schema.fields().len()
            ),
        ));
    }
    let rows = RecordBatch::try_new(schema, batch.columns()[1..].to_vec())?;
    Ok((side, batch.column(0).clone(), rows))
}
