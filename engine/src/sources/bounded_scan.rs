//! Bounded reads for DataFusion: a table read from its start to its stop position (or a
//! file table read whole) as a [`PartitionStream`], so aggregates, ORDER BY and joins run
//! in DataFusion as usual.
//!
//! Acknowledgement waits for the query: the scan hands its reader to the query's
//! [`QueryCommit`], which acknowledges once the result has been delivered (or written by a
//! job's sink) and closes the consumers.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use magnetar_sql::catalog::TableDef;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::clients::ClientPool;
use super::decode::{SourceDecoder, SourceMetrics};
use super::query_commit::QueryCommit;
use super::reader::Reader;
use crate::error::Result;

/// One bounded read of a table, as a DataFusion partition.
#[derive(Debug)]
pub struct BoundedScan {
    table: Arc<TableDef>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    clients: Arc<ClientPool>,
    service_url: Option<String>,
    batch_size: usize,
    metrics: Arc<SourceMetrics>,
}

impl BoundedScan {
    /// A scan of `table` producing the `projection` columns; it connects (to `service_url`
    /// for tables without their own) when executed, so that planning and EXPLAIN need no
    /// broker.
    pub fn new(
        table: Arc<TableDef>,
        projection: Option<Vec<usize>>,
        clients: Arc<ClientPool>,
        service_url: Option<String>,
        batch_size: usize,
    ) -> Result<Self> {
        let metrics = Arc::new(SourceMetrics::default());
        let decoder =
            SourceDecoder::new(table.clone(), projection.as_deref(), None, metrics.clone())?;
        Ok(Self {
            schema: decoder.schema().clone(),
            table,
            projection,
            clients,
            service_url,
            batch_size,
            metrics,
        })
    }

    async fn read(
        &self,
        tx: &mpsc::Sender<Result<datafusion::arrow::array::RecordBatch, DataFusionError>>,
        commit: Option<Arc<QueryCommit>>,
    ) -> Result<()> {
        let mut decoder = SourceDecoder::new(
            self.table.clone(),
            self.projection.as_deref(),
            None,
            self.metrics.clone(),
        )?
        .with_service_url(self.service_url.as_deref());
        let mut reader = Reader::open(
            &self.table,
            &self.clients,
            self.service_url.as_deref(),
            self.batch_size,
            super::SplitAssignment::WHOLE,
            None,
            None,
            &self.metrics,
        )
        .await?;
        let outcome: Result<bool> = async {
            loop {
                // Also stop waiting for messages when nobody reads the result any more.
                let chunk = tokio::select! {
                    chunk = reader.next_chunk(self.batch_size) => chunk?,
                    _ = tx.closed() => return Ok(false),
                };
                let Some(chunk) = chunk else {
                    return Ok(true);
                };
                if let Some(decoded) = decoder.decode(&chunk).await?
                    && tx.send(Ok(decoded.batch)).await.is_err()
                {
                    return Ok(false);
                }
            }
        }
        .await;
        match (outcome, commit) {
            (Ok(true), Some(commit)) => {
                let token = reader.take_ack_token();
                commit.defer(reader, token);
                Ok(())
            }
            (Ok(true), None) => {
                let token = reader.take_ack_token();
                let acked = reader.ack(token);
                reader.close().await;
                acked
            }
            (Ok(false), _) => {
                reader.close().await;
                Ok(())
            }
            (Err(e), _) => {
                reader.close().await;
                Err(e)
            }
        }
    }
}

impl PartitionStream for BoundedScan {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let commit = ctx.session_config().get_extension::<QueryCommit>();
        if let Some(commit) = &commit {
            commit.register(self.metrics.clone());
        }
        let (tx, rx) = mpsc::channel(4);
        let scan = BoundedScan {
            table: self.table.clone(),
            projection: self.projection.clone(),
            schema: self.schema.clone(),
            clients: self.clients.clone(),
            service_url: self.service_url.clone(),
            batch_size: self.batch_size,
            metrics: self.metrics.clone(),
        };
        tokio::spawn(async move {
            if let Err(e) = scan.read(&tx, commit).await {
                let _ = tx.send(Err(DataFusionError::External(Box::new(e)))).await;
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            ReceiverStream::new(rx),
        ))
    }
}
