//! The result of a query as a stream of Arrow record batches.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream};
use tokio::sync::{mpsc, watch};

use super::{Epoch, RunningGraph, StreamMessage};
use crate::error::{EngineError, Result};
use crate::sources::{QueryCommit, ReadStats, SourceMetrics};

/// A continuous query's graph, and where its rows arrive.
struct GraphRun {
    graph: RunningGraph,
    output: mpsc::Receiver<StreamMessage>,
    /// Barriers whose rows were handed out: the sources acknowledge their input up to them.
    completed: watch::Sender<Epoch>,
}

enum Inner {
    /// A continuous query on the streaming runtime.
    Graph(Option<Box<GraphRun>>),
    /// A bounded query executed by DataFusion.
    Bounded {
        stream: SendableRecordBatchStream,
        commit: Arc<QueryCommit>,
        committing: Option<BoxFuture<'static, Result<()>>>,
    },
    /// The stream has ended.
    Done,
}

/// Rows of a query, batch by batch. Unbounded queries never end by themselves: drop the
/// stream or call [`QueryStream::close`] to cancel. Input is acknowledged (for durable
/// subscriptions) up to what the stream has delivered.
pub struct QueryStream {
    schema: SchemaRef,
    inner: Inner,
    /// The sources' counters, kept after the stream ends.
    stats: StatsOf,
}

/// Where a query's read counters are.
#[derive(Clone)]
enum StatsOf {
    Sources(Vec<Arc<SourceMetrics>>),
    Commit(Arc<QueryCommit>),
}

impl std::fmt::Debug for QueryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryStream")
            .field("schema", &self.schema)
            .finish()
    }
}

impl QueryStream {
    /// The rows of a started query graph; `completed` is what its sources watch.
    pub(crate) fn from_graph(
        schema: SchemaRef,
        mut graph: RunningGraph,
        completed: watch::Sender<Epoch>,
    ) -> Result<Self> {
        let output = graph
            .output
            .take()
            .ok_or_else(|| EngineError::Internal("a query graph without an output".into()))?;
        Ok(Self {
            schema,
            stats: StatsOf::Sources(graph.metrics.sources.clone()),
            inner: Inner::Graph(Some(Box::new(GraphRun {
                graph,
                output,
                completed,
            }))),
        })
    }

    pub(crate) fn from_bounded(
        stream: SendableRecordBatchStream,
        commit: Arc<QueryCommit>,
    ) -> Self {
        Self {
            schema: stream.schema(),
            stats: StatsOf::Commit(commit.clone()),
            inner: Inner::Bounded {
                stream,
                commit,
                committing: None,
            },
        }
    }

    /// What the query's sources have read so far (broker, tiered storage, backfill progress).
    pub fn read_stats(&self) -> ReadStats {
        self.stats_handle().get()
    }

    /// A handle that reads the counters while the stream is consumed elsewhere (progress
    /// displays).
    pub fn stats_handle(&self) -> ReadStatsHandle {
        ReadStatsHandle(self.stats.clone())
    }

    /// Whether the query ends by itself (it reads only bounded tables).
    pub fn is_bounded(&self) -> bool {
        matches!(self.inner, Inner::Bounded { .. })
    }

    /// The schema of the rows.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Stops the query and waits until its consumers have acknowledged what was delivered
    /// and closed (so the same subscription can be used again at once).
    pub async fn close(mut self) {
        match std::mem::replace(&mut self.inner, Inner::Done) {
            Inner::Graph(Some(run)) => {
                let GraphRun {
                    mut graph,
                    output,
                    completed,
                } = *run;
                // Dropping the output and the completion makes the sources stop without
                // acknowledging more than the completed barriers (what was delivered).
                drop(output);
                drop(completed);
                for task in std::mem::take(&mut graph.tasks) {
                    let _ = task.await;
                }
            }
            Inner::Bounded { commit, .. } => commit.abandon().await,
            Inner::Graph(None) | Inner::Done => {}
        }
    }
}

/// Reads a query's counters; see [`QueryStream::stats_handle`].
#[derive(Clone)]
pub struct ReadStatsHandle(StatsOf);

impl std::fmt::Debug for ReadStatsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ReadStatsHandle").field(&self.get()).finish()
    }
}

impl ReadStatsHandle {
    /// The counters now.
    pub fn get(&self) -> ReadStats {
        match &self.0 {
            StatsOf::Sources(sources) => ReadStats::of(sources),
            StatsOf::Commit(commit) => ReadStats::of(&commit.metrics()),
        }
    }
}

impl Stream for QueryStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match &mut this.inner {
            Inner::Done | Inner::Graph(None) => Poll::Ready(None),
            Inner::Graph(Some(run)) => loop {
                match run.output.poll_recv(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(StreamMessage::Batch(batch))) => {
                        return Poll::Ready(Some(Ok(batch)));
                    }
                    Poll::Ready(Some(StreamMessage::Watermark(_) | StreamMessage::Idle)) => {}
                    Poll::Ready(Some(StreamMessage::Barrier(epoch))) => {
                        // Everything before the barrier has been handed out.
                        run.completed.send_replace(epoch);
                    }
                    Poll::Ready(Some(StreamMessage::End)) | Poll::Ready(None) => {
                        // The sources wait for the last barrier's completion before they
                        // acknowledge and close; keep the graph until they have.
                        this.inner = Inner::Graph(None);
                        return Poll::Ready(None);
                    }
                    Poll::Ready(Some(StreamMessage::Error(e))) => {
                        this.inner = Inner::Done;
                        return Poll::Ready(Some(Err(EngineError::from_shared(e))));
                    }
                }
            },
            Inner::Bounded {
                stream,
                commit,
                committing,
            } => {
                if let Some(fut) = committing {
                    return match fut.poll_unpin(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(result) => {
                            this.inner = Inner::Done;
                            match result {
                                Ok(()) => Poll::Ready(None),
                                Err(e) => Poll::Ready(Some(Err(e))),
                            }
                        }
                    };
                }
                match stream.as_mut().poll_next(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Some(Ok(batch))) => Poll::Ready(Some(Ok(batch))),
                    Poll::Ready(Some(Err(e))) => {
                        let commit = commit.clone();
                        tokio::spawn(async move { commit.abandon().await });
                        this.inner = Inner::Done;
                        Poll::Ready(Some(Err(unwrap_external(e))))
                    }
                    Poll::Ready(None) => {
                        let commit = commit.clone();
                        *committing = Some(async move { commit.commit().await }.boxed());
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                }
            }
        }
    }
}

/// DataFusion wraps our errors as `External`; take them back out so messages stay ours.
pub(crate) fn unwrap_external(e: datafusion::error::DataFusionError) -> EngineError {
    let e = match e {
        datafusion::error::DataFusionError::Context(_, inner) => *inner,
        other => other,
    };
    match e {
        datafusion::error::DataFusionError::External(inner) => {
            match inner.downcast::<EngineError>() {
                Ok(engine) => *engine,
                Err(other) => match other.downcast::<magnetar_sql::SqlError>() {
                    Ok(sql) => EngineError::Sql(*sql),
                    Err(other) => {
                        EngineError::DataFusion(datafusion::error::DataFusionError::External(other))
                    }
                },
            }
        }
        other => EngineError::DataFusion(other),
    }
}
