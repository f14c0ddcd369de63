//! `OFFSET` / `LIMIT` over a stream: skip, take, then done.

use datafusion::arrow::array::RecordBatch;

use super::Operator;
use crate::checkpoint::OperatorState;
use crate::error::{EngineError, Result};

/// Skips `skip` rows, passes `fetch` rows, then asks for no more input.
#[derive(Debug)]
pub struct LimitOperator {
    skip: usize,
    remaining: Option<usize>,
}

impl LimitOperator {
    /// `OFFSET skip LIMIT fetch` (`fetch` `None` = no limit).
    pub fn new(skip: usize, fetch: Option<usize>) -> Self {
        Self {
            skip,
            remaining: fetch,
        }
    }
}

impl Operator for LimitOperator {
    fn name(&self) -> &'static str {
        "Limit"
    }

    fn process(&mut self, _input: usize, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        let mut batch = batch;
        if self.skip > 0 {
            let skipped = self.skip.min(batch.num_rows());
            self.skip -= skipped;
            batch = batch.slice(skipped, batch.num_rows() - skipped);
        }
        if let Some(remaining) = &mut self.remaining {
            let take = (*remaining).min(batch.num_rows());
            *remaining -= take;
            batch = batch.slice(0, take);
        }
        Ok((batch.num_rows() > 0).then_some(batch))
    }

    fn is_done(&self) -> bool {
        self.remaining == Some(0)
    }

    fn snapshot(&mut self) -> Result<OperatorState> {
        Ok(OperatorState {
            meta: serde_json::json!({ "skip": self.skip, "remaining": self.remaining }),
            batches: Vec::new(),
        })
    }

    fn restore(&mut self, state: OperatorState) -> Result<()> {
        let count = |key: &str| state.meta[key].as_u64().map(|n| n as usize);
        self.skip = count("skip").ok_or_else(|| EngineError::Checkpoint {
            object: "LIMIT state".into(),
            reason: format!("no row count to skip in {}", state.meta),
        })?;
        self.remaining = count("remaining");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int32Array;
    use std::sync::Arc;

    fn batch(values: Vec<i32>) -> RecordBatch {
        RecordBatch::try_from_iter(vec![("a", Arc::new(Int32Array::from(values)) as _)])
            .expect("batch")
    }

    #[test]
    fn skips_and_takes_across_batches() {
        let mut limit = LimitOperator::new(3, Some(4));
        let a = limit.process(0, batch(vec![1, 2])).expect("ok");
        assert!(a.is_none());
        let b = limit
            .process(0, batch(vec![3, 4, 5]))
            .expect("ok")
            .expect("rows");
        assert_eq!(b.num_rows(), 2);
        assert!(!limit.is_done());
        let c = limit
            .process(0, batch(vec![6, 7, 8, 9]))
            .expect("ok")
            .expect("rows");
        assert_eq!(c.num_rows(), 2);
        assert!(limit.is_done());
        assert!(limit.process(0, batch(vec![10])).expect("ok").is_none());
    }
}
