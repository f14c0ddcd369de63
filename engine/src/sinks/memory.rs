//! Writing rows to a memory table: each row is encoded as the JSON payload a topic would
//! carry and appended to the partition `partition.field` chooses, a whole batch at once.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use magnetar_connectors::format::{JsonEncoder, PayloadEncoder};
use magnetar_connectors::memory::{MemoryLog, MemoryStore};
use magnetar_sql::catalog::TableDef;

use super::SinkMetrics;
use crate::error::{EngineError, Result};

/// Appends batches of a memory table's columns to its log.
pub struct MemorySinkWriter {
    log: Arc<MemoryLog>,
    encoder: JsonEncoder,
    /// Column choosing the partition.
    partition_column: Option<usize>,
    metrics: Arc<SinkMetrics>,
}

impl std::fmt::Debug for MemorySinkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySinkWriter").finish()
    }
}

impl MemorySinkWriter {
    /// A writer for `table`, whose input batches have its writable columns.
    pub fn open(table: &TableDef, store: &MemoryStore, metrics: Arc<SinkMetrics>) -> Result<Self> {
        let magnetar_sql::options::Connector::Memory(options) = &table.connector else {
            return Err(EngineError::Internal(format!(
                "table '{}' is not a memory table",
                table.name
            )));
        };
        let log = store.log(&options.name, options.partitions)?;
        let partition_column = options.partition_field.as_ref().and_then(|f| {
            table
                .writable_columns()
                .iter()
                .position(|c| c.field.name() == f)
        });
        Ok(Self {
            log,
            encoder: JsonEncoder::new(),
            partition_column,
            metrics,
        })
    }

    /// Appends the rows of `batch`.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let payloads = self.encoder.encode(batch)?;
        let partitions = self.log.partitions() as i64;
        let chosen = match self.partition_column {
            Some(i) => Some(cast(batch.column(i), &DataType::Int64)?),
            None => None,
        };
        let chosen = chosen.as_ref().map(|c| c.as_primitive::<Int64Type>());
        let rows: Vec<(usize, Bytes)> = payloads
            .into_iter()
            .enumerate()
            .map(|(row, payload)| {
                let partition = chosen
                    .filter(|c| c.is_valid(row))
                    .map(|c| c.value(row).rem_euclid(partitions) as usize)
                    .unwrap_or(0);
                (partition, Bytes::from(payload))
            })
            .collect();
        let n = rows.len() as u64;
        self.log.append(rows)?;
        self.metrics
            .messages_written
            .fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}
