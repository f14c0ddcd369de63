//! A streaming plan as a DataFusion table: bounded queries run their window TVF parts on
//! the streaming runtime (watermarks, late rows, window firing as in a stream) and the rest
//! (ORDER BY, joins, further aggregation) in DataFusion over the windows' results.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use magnetar_sql::plan::{JobGraph, StreamPlan};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::{Epoch, GraphContext, GraphMode, StreamMessage, start_graph};
use crate::error::{EngineError, Result};
use crate::sources::QueryCommit;

/// A bounded streaming plan, read as a table whose columns are the plan's output columns
/// renamed to `schema`'s names.
#[derive(Debug)]
pub struct SubplanTable {
    schema: SchemaRef,
    plan: Arc<StreamPlan>,
    ctx: GraphContext,
}

impl SubplanTable {
    /// A table over `plan` (which must end by itself), with `schema` (same types).
    pub fn new(schema: SchemaRef, plan: StreamPlan, ctx: GraphContext) -> Self {
        Self {
            schema,
            plan: Arc::new(plan),
            ctx,
        }
    }
}

#[async_trait]
impl TableProvider for SubplanTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let partition = SubplanPartition {
            schema: self.schema.clone(),
            plan: self.plan.clone(),
            ctx: self.ctx.clone(),
        };
        Ok(Arc::new(StreamingTableExec::try_new(
            self.schema.clone(),
            vec![Arc::new(partition)],
            projection,
            Vec::new(),
            false,
            limit,
        )?))
    }
}

#[derive(Debug)]
struct SubplanPartition {
    schema: SchemaRef,
    plan: Arc<StreamPlan>,
    ctx: GraphContext,
}

impl SubplanPartition {
    async fn run(
        &self,
        tx: &mpsc::Sender<DFResult<RecordBatch>>,
        commit: Option<Arc<QueryCommit>>,
    ) -> Result<()> {
        let graph = JobGraph::of_query(&self.plan);
        let (completed, completed_rx) = watch::channel(Epoch(0));
        let mut running = start_graph(
            &graph,
            &self.ctx,
            GraphMode::Query,
            completed_rx,
            Arc::default(),
        )
        .await?;
        if let Some(commit) = &commit {
            commit.register_graph(&running.metrics);
        }
        let mut output = running
            .output
            .take()
            .ok_or_else(|| EngineError::Internal("a subplan without an output".into()))?;
        let mut last = Epoch(0);
        loop {
            // Dropping `output` when nobody reads the result any more ends the sources.
            let message = tokio::select! {
                m = output.recv() => m,
                _ = tx.closed() => return Ok(()),
            };
            match message {
                Some(StreamMessage::Batch(batch)) => {
                    let batch =
                        RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?;
                    if tx.send(Ok(batch)).await.is_err() {
                        return Ok(());
                    }
                }
                Some(StreamMessage::Watermark(_) | StreamMessage::Idle) => {}
                Some(StreamMessage::Barrier(epoch)) => last = epoch,
                Some(StreamMessage::End) => break,
                Some(StreamMessage::Error(e)) => return Err(EngineError::from_shared(e)),
                None => {
                    return Err(EngineError::Internal(
                        "a streaming subplan ended without an end-of-stream".into(),
                    ));
                }
            }
        }
        // The sources acknowledge their input once the query's result is safe.
        match commit {
            Some(commit) => commit.defer_completion(completed, last),
            None => {
                completed.send_replace(last);
            }
        }
        Ok(())
    }
}

impl PartitionStream for SubplanPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let commit = ctx.session_config().get_extension::<QueryCommit>();
        let (tx, rx) = mpsc::channel(4);
        let partition = SubplanPartition {
            schema: self.schema.clone(),
            plan: self.plan.clone(),
            ctx: self.ctx.clone(),
        };
        tokio::spawn(async move {
            if let Err(e) = partition.run(&tx, commit).await {
                let _ = tx.send(Err(DataFusionError::External(Box::new(e)))).await;
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            ReceiverStream::new(rx),
        ))
    }
}
