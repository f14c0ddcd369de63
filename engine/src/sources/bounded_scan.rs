//! Bounded reads for DataFusion: a table read from its start to its stop position as a
//! [`PartitionStream`], so aggregates, ORDER BY and joins run in DataFusion as usual.
//!
//! Acknowledgement waits for the query: the scan hands its source to the query's
//! [`QueryCommit`], which acknowledges once the result has been delivered (or written by a
//! job's sink) and closes the consumers.

use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use magnetar_connectors::pulsar::{AckToken, PulsarSource};
use magnetar_sql::catalog::TableDef;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::clients::ClientPool;
use super::decode::{SourceDecoder, SourceMetrics};
use super::pulsar_task::source_config;
use crate::error::Result;

/// Sources of one bounded query, acknowledged together when the query's output is safe;
/// also where the query's scans leave their counters.
#[derive(Default)]
pub struct QueryCommit {
    finished: Mutex<Vec<(PulsarSource, AckToken)>>,
    metrics: Mutex<Vec<Arc<SourceMetrics>>>,
}

impl std::fmt::Debug for QueryCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryCommit").finish()
    }
}

impl QueryCommit {
    fn defer(&self, source: PulsarSource, token: AckToken) {
        self.finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((source, token));
    }

    fn register(&self, metrics: Arc<SourceMetrics>) {
        self.metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(metrics);
    }

    /// Counters of the scans that have started.
    pub fn metrics(&self) -> Vec<Arc<SourceMetrics>> {
        self.metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn take(&self) -> Vec<(PulsarSource, AckToken)> {
        std::mem::take(&mut *self.finished.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Acknowledges everything the query's scans read, and closes them.
    pub async fn commit(&self) -> Result<()> {
        for (mut source, token) in self.take() {
            let acked = source.ack(token);
            source.close().await;
            acked?;
        }
        Ok(())
    }

    /// Closes the scans without acknowledging (the query failed or was cancelled).
    pub async fn abandon(&self) {
        for (source, _) in self.take() {
            source.close().await;
        }
    }
}

/// One bounded read of a table, as a DataFusion partition.
#[derive(Debug)]
pub struct BoundedPulsarScan {
    table: Arc<TableDef>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    clients: Arc<ClientPool>,
    service_url: String,
    batch_size: usize,
    metrics: Arc<SourceMetrics>,
}

impl BoundedPulsarScan {
    /// A scan of `table` producing the `projection` columns; it connects to `service_url`
    /// when executed (so that planning and EXPLAIN need no broker).
    pub fn new(
        table: Arc<TableDef>,
        projection: Option<Vec<usize>>,
        clients: Arc<ClientPool>,
        service_url: String,
        batch_size: usize,
    ) -> Result<Self> {
        let metrics = Arc::new(SourceMetrics::default());
        let decoder = SourceDecoder::new(table.clone(), projection.as_deref(), metrics.clone())?;
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
            self.metrics.clone(),
        )?;
        let config = source_config(
            &self.table,
            (self.batch_size as u32).clamp(100, 10_000),
            self.clients.positions(),
        );
        let client = self.clients.get(&self.service_url).await?;
        let mut source = PulsarSource::open(client, config).await?;
        let outcome: Result<bool> = async {
            loop {
                // Also stop waiting for messages when nobody reads the result any more.
                let chunk = tokio::select! {
                    chunk = source.next_chunk(self.batch_size) => chunk?,
                    _ = tx.closed() => return Ok(false),
                };
                let Some(chunk) = chunk else {
                    return Ok(true);
                };
                if let Some(batch) = decoder.decode(&chunk)?
                    && tx.send(Ok(batch)).await.is_err()
                {
                    return Ok(false);
                }
            }
        }
        .await;
        match (outcome, commit) {
            (Ok(true), Some(commit)) => {
                let token = source.take_ack_token();
                commit.defer(source, token);
                Ok(())
            }
            (Ok(true), None) => {
                let token = source.take_ack_token();
                let acked = source.ack(token);
                source.close().await;
                Ok(acked?)
            }
            (Ok(false), _) => {
                source.close().await;
                Ok(())
            }
            (Err(e), _) => {
                source.close().await;
                Err(e)
            }
        }
    }
}

impl PartitionStream for BoundedPulsarScan {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let commit = ctx.session_config().get_extension::<QueryCommit>();
        if let Some(commit) = &commit {
            commit.register(self.metrics.clone());
        }
        let (tx, rx) = mpsc::channel(4);
        let scan = BoundedPulsarScan {
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
