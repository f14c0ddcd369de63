//! An operator's state as a checkpoint holds it: small facts (watermark, pending windows) as
//! JSON, keyed data as Arrow batches, encoded as
//! `[u32 meta length][meta JSON][u32 batch count]([u64 length][Arrow IPC stream])*`.

use std::io::Cursor;

use bytes::{BufMut, Bytes, BytesMut};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;

use datafusion::arrow::array::{BooleanArray, UInt16Array};
use datafusion::arrow::compute::filter_record_batch;

use crate::error::{EngineError, Result};
use crate::runtime::{KEY_GROUP_COLUMN, KeyGroup, KeyGroupRange};

/// An operator's state at a barrier.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperatorState {
    /// Small facts: watermark, pending windows.
    pub meta: serde_json::Value,
    /// Keyed data, each batch in its own schema.
    pub batches: Vec<RecordBatch>,
}

fn corrupt(reason: impl std::fmt::Display) -> EngineError {
    EngineError::Checkpoint {
        object: "operator state".into(),
        reason: reason.to_string(),
    }
}

/// Reads `n` bytes at `at`, or says the state is truncated.
fn take<'a>(bytes: &'a [u8], at: &mut usize, n: usize, what: &str) -> Result<&'a [u8]> {
    let end = at
        .checked_add(n)
        .filter(|end| *end <= bytes.len())
        .ok_or_else(|| corrupt(format!("truncated in the {what} at byte {at}")))?;
    let slice = &bytes[*at..end];
    *at = end;
    Ok(slice)
}

impl OperatorState {
    /// Only the rows of `key_groups`, without their tag column, from batches tagged with
    /// [`KEY_GROUP_COLUMN`]; untagged batches (an operator without keys) stay whole.
    pub fn for_key_groups(self, key_groups: KeyGroupRange) -> Result<OperatorState> {
        let mut batches = Vec::with_capacity(self.batches.len());
        for batch in self.batches {
            let tagged =
                batch.num_columns() > 0 && batch.schema().field(0).name() == KEY_GROUP_COLUMN;
            if !tagged {
                batches.push(batch);
                continue;
            }
            let groups = batch
                .column(0)
                .as_any()
                .downcast_ref::<UInt16Array>()
                .ok_or_else(|| corrupt("key groups are not UInt16"))?;
            let mask: BooleanArray = groups
                .iter()
                .map(|g| g.map(|g| key_groups.contains(KeyGroup(g))))
                .collect();
            let kept = filter_record_batch(&batch, &mask)?;
            if kept.num_rows() == 0 {
                continue;
            }
            let untagged: Vec<usize> = (1..kept.num_columns()).collect();
            batches.push(kept.project(&untagged)?);
        }
        Ok(OperatorState {
            meta: self.meta,
            batches,
        })
    }

    /// The state's bytes.
    pub fn encode(&self) -> Result<Bytes> {
        let meta = serde_json::to_vec(&self.meta).map_err(corrupt)?;
        let mut out = BytesMut::with_capacity(meta.len() + 64);
        out.put_u32(meta.len() as u32);
        out.put_slice(&meta);
        out.put_u32(self.batches.len() as u32);
        for batch in &self.batches {
            let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema())?;
            writer.write(batch)?;
            writer.finish()?;
            let ipc = writer.into_inner()?;
            out.put_u64(ipc.len() as u64);
            out.put_slice(&ipc);
        }
        Ok(out.freeze())
    }

    /// A state from its bytes; truncated or garbled bytes are an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<OperatorState> {
        let mut at = 0;
        let len = u32::from_be_bytes(
            take(bytes, &mut at, 4, "meta length")?
                .try_into()
                .map_err(corrupt)?,
        ) as usize;
        let meta = serde_json::from_slice(take(bytes, &mut at, len, "meta")?).map_err(corrupt)?;
        let count = u32::from_be_bytes(
            take(bytes, &mut at, 4, "batch count")?
                .try_into()
                .map_err(corrupt)?,
        );
        let mut batches = Vec::new();
        for i in 0..count {
            let len = u64::from_be_bytes(
                take(bytes, &mut at, 8, "batch length")?
                    .try_into()
                    .map_err(corrupt)?,
            );
            let ipc = take(bytes, &mut at, len as usize, "batch")?;
            let reader = StreamReader::try_new(Cursor::new(ipc), None)
                .map_err(|e| corrupt(format!("batch {i}: {e}")))?;
            for batch in reader {
                batches.push(batch.map_err(|e| corrupt(format!("batch {i}: {e}")))?);
            }
        }
        if at != bytes.len() {
            return Err(corrupt(format!(
                "{} bytes after the last batch",
                bytes.len() - at
            )));
        }
        Ok(OperatorState { meta, batches })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use serde_json::json;

    use super::*;

    #[test]
    fn round_trips_and_rejects_truncation() {
        let a = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec![Some("a"), None]))],
        )
        .expect("batch");
        let b = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
        )
        .expect("batch");
        let state = OperatorState {
            meta: json!({"watermark": 42, "pending": [[10, 0]]}),
            batches: vec![a, b],
        };
        let bytes = state.encode().expect("encode");
        assert_eq!(OperatorState::decode(&bytes).expect("decode"), state);
        for cut in [0, 3, 10, bytes.len() - 1] {
            let err = OperatorState::decode(&bytes[..cut]).expect_err("truncated");
            assert!(err.to_string().contains("operator state"), "{err}");
        }
    }
}
