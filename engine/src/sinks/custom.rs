//! Writing a job's rows to a connector registered from Rust.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::arrow::array::RecordBatch;
use magnetar_sql::catalog::TableDef;

use super::SinkMetrics;
use crate::custom::{BoxError, CustomSink};
use crate::error::{EngineError, Result};
use crate::sources::ClientPool;

/// A custom sink, with the names its errors carry.
pub struct CustomSinkWriter {
    sink: Box<dyn CustomSink>,
    table: String,
    connector: String,
    metrics: Arc<SinkMetrics>,
}

impl std::fmt::Debug for CustomSinkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomSinkWriter")
            .field("table", &self.table)
            .field("connector", &self.connector)
            .finish()
    }
}

impl CustomSinkWriter {
    /// Opens the sink of `table` through its registered connector.
    pub async fn open(
        table: &TableDef,
        clients: &ClientPool,
        metrics: Arc<SinkMetrics>,
    ) -> Result<Self> {
        let (connector, context) = clients.custom().for_table(table, None)?;
        let name = connector.name().to_string();
        let sink =
            connector
                .open_sink(context)
                .await
                .map_err(|source| EngineError::CustomConnector {
                    connector: name.clone(),
                    table: table.name.clone(),
                    source,
                })?;
        Ok(Self {
            sink,
            table: table.name.clone(),
            connector: name,
            metrics,
        })
    }

    fn error(&self, source: BoxError) -> EngineError {
        EngineError::CustomConnector {
            connector: self.connector.clone(),
            table: self.table.clone(),
            source,
        }
    }

    /// Writes the rows of `batch`.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        match self.sink.write(batch).await {
            Ok(()) => {
                self.metrics
                    .messages_written
                    .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(self.error(e)),
        }
    }

    /// Makes what was written durable.
    pub async fn flush(&mut self) -> Result<()> {
        let flushed = self.sink.flush().await;
        flushed.map_err(|e| self.error(e))
    }

    /// Flushes and releases the sink.
    pub async fn close(mut self) -> Result<()> {
        self.flush().await?;
        let Self {
            sink,
            table,
            connector,
            ..
        } = self;
        sink.close()
            .await
            .map_err(|source| EngineError::CustomConnector {
                connector,
                table,
                source,
            })
    }
}
