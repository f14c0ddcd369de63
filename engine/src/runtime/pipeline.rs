//! Builds a running pipeline from a streaming plan: one task per node, bounded channels
//! between them, and the shared signals (stop, completed barriers) sources listen to.

use std::sync::Arc;

use std::time::Duration;

use datafusion::execution::session_state::SessionState;
use magnetar_sql::plan::{GroupItem, StreamNode, StreamPlan};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{CHANNEL_CAPACITY, Clock, Epoch, SettleHandle, StreamMessage};
use crate::checkpoint::{PartSender, Restored};
use crate::error::{EngineError, Result};
use crate::operators::window::{
    AggregateSpec, SessionWindowAggregate, SlicedWindowAggregate, Slicer, WindowAssignOperator,
    WindowMetrics, WindowTopNOperator,
};
use crate::operators::{LimitOperator, Operator, StatelessOperator, run_operator};
use crate::sources::{
    BarrierPolicy, ClientPool, EventTimeSettings, Reader, SourceDecoder, SourceMetrics, SourceTask,
    WatermarkExpr, WatermarkGenerator,
};

/// What a pipeline needs from the engine.
#[derive(Clone, Debug)]
pub struct PipelineContext {
    /// Pulsar clients.
    pub clients: Arc<ClientPool>,
    /// Service URL for tables without one.
    pub default_service_url: Option<String>,
    /// Most messages per batch.
    pub batch_size: usize,
    /// When sources emit barriers.
    pub barriers: BarrierPolicy,
    /// Processing time, for idle partitions.
    pub clock: Clock,
    /// Idle timeout for tables that set none (`table.exec.source.idle-timeout`).
    pub idle_timeout: Option<Duration>,
    /// For compiling watermark expressions.
    pub state: SessionState,
    /// In a checkpointed job: where snapshots go, and the checkpoint to restore.
    pub checkpoint: Option<PipelineCheckpoint>,
}

/// How a checkpointed job's pipeline takes part in checkpoints.
#[derive(Clone, Debug)]
pub struct PipelineCheckpoint {
    /// Where sources and operators send their parts.
    pub parts: PartSender,
    /// The checkpoint this run starts from.
    pub restored: Option<Arc<Restored>>,
    /// Sources of tables that name no subscription subscribe durably as
    /// `{prefix}-{source index}`, so the broker keeps what a recovery needs (named jobs).
    pub subscription_prefix: Option<String>,
}

/// Counters of a running pipeline.
#[derive(Clone, Debug, Default)]
pub struct PipelineMetrics {
    /// One per source.
    pub sources: Vec<Arc<SourceMetrics>>,
    /// One per event-time operator.
    pub windows: Vec<Arc<WindowMetrics>>,
}

/// A running pipeline: read `output`, report completed barriers on `completed`.
pub struct Pipeline {
    /// The root node's output.
    pub output: mpsc::Receiver<StreamMessage>,
    /// Set by whoever consumes `output` once a barrier's data is safe.
    pub completed: watch::Sender<Epoch>,
    /// `true` asks the sources to stop reading, drain and end.
    pub stop: watch::Sender<bool>,
    /// The tasks.
    pub tasks: Vec<JoinHandle<()>>,
    /// Counters.
    pub metrics: PipelineMetrics,
    /// Lets a caller wait until the pipeline has processed what is available.
    pub settle: Arc<SettleHandle>,
    /// Number of sources.
    pub sources: usize,
    /// Number of operators.
    pub operators: usize,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

/// The service URL a table reads from.
pub fn service_url_for(
    table: &magnetar_sql::catalog::TableDef,
    default: Option<&str>,
) -> Result<String> {
    table
        .pulsar()
        .and_then(|o| o.service_url.clone())
        .or_else(|| default.map(str::to_string))
        .ok_or_else(|| EngineError::NoServiceUrl {
            table: table.name.clone(),
        })
}

/// Starts the tasks of `plan`. Sources subscribe before this returns, so an unreachable
/// broker or a refused subscription is reported here.
pub async fn build_pipeline(plan: &StreamPlan, ctx: &PipelineContext) -> Result<Pipeline> {
    let (completed, completed_rx) = watch::channel(Epoch(0));
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut metrics = PipelineMetrics::default();
    let mut settle = SettleHandle::new(completed_rx.clone());
    let mut wiring = Wiring {
        completed: &completed_rx,
        stop: &stop_rx,
        settle: &mut settle,
        tasks: &mut tasks,
        metrics: &mut metrics,
        sources: 0,
        operators: 0,
    };
    let output = build_node(&plan.root, ctx, &mut wiring)
        .await
        .and_then(|output| {
            check_restored_shape(ctx, wiring.sources, wiring.operators)?;
            Ok(output)
        });
    let (sources, operators) = (wiring.sources, wiring.operators);
    match output {
        Ok(output) => Ok(Pipeline {
            output,
            completed,
            stop,
            tasks,
            metrics,
            settle: Arc::new(settle),
            sources,
            operators,
        }),
        Err(e) => {
            // Sources already started end when their channels close.
            let _ = stop.send(true);
            Err(e)
        }
    }
}

/// A restored checkpoint must have been taken by a pipeline of the same shape.
fn check_restored_shape(ctx: &PipelineContext, sources: usize, operators: usize) -> Result<()> {
    let Some(restored) = ctx.checkpoint.as_ref().and_then(|c| c.restored.as_ref()) else {
        return Ok(());
    };
    if restored.sources.len() != sources || restored.operators.len() != operators {
        return Err(EngineError::Checkpoint {
            object: format!("checkpoint {}", restored.id),
            reason: format!(
                "it holds {} source(s) and {} operator(s), the query's plan has {sources} and {operators}; the plan changed (another Magnetar version?)",
                restored.sources.len(),
                restored.operators.len()
            ),
        });
    }
    Ok(())
}

/// What every node of a pipeline under construction connects to.
struct Wiring<'a> {
    completed: &'a watch::Receiver<Epoch>,
    stop: &'a watch::Receiver<bool>,
    settle: &'a mut SettleHandle,
    tasks: &'a mut Vec<JoinHandle<()>>,
    metrics: &'a mut PipelineMetrics,
    /// Sources so far: the next one's index.
    sources: usize,
    /// Operators so far: the next one's index.
    operators: usize,
}

impl Wiring<'_> {
    /// Starts an operator's task: numbers it, restores its state from the checkpoint being
    /// restored, and lets it take part in checkpoints.
    fn spawn_operator(
        &mut self,
        ctx: &PipelineContext,
        mut operator: impl Operator,
        input: mpsc::Receiver<StreamMessage>,
        output: mpsc::Sender<StreamMessage>,
    ) -> Result<()> {
        let index = self.operators;
        self.operators += 1;
        let checkpoint = match &ctx.checkpoint {
            Some(c) => {
                if let Some(state) = c
                    .restored
                    .as_ref()
                    .and_then(|r| r.operators.get(index).cloned().flatten())
                {
                    operator.restore(state)?;
                }
                Some((index, c.parts.clone()))
            }
            None => None,
        };
        self.tasks.push(tokio::spawn(run_operator(
            operator, input, output, checkpoint,
        )));
        Ok(())
    }
}

fn build_node<'a, 'w>(
    node: &'a StreamNode,
    ctx: &'a PipelineContext,
    wiring: &'a mut Wiring<'w>,
) -> futures::future::BoxFuture<'a, Result<mpsc::Receiver<StreamMessage>>> {
    Box::pin(async move {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        match node {
            StreamNode::Source(source) => {
                let source_metrics = Arc::new(SourceMetrics::default());
                let watermark = if source.watermarks {
                    WatermarkExpr::compile(&source.table, &ctx.state)?.map(Arc::new)
                } else {
                    None
                };
                let decoder = SourceDecoder::new(
                    source.table.clone(),
                    source.projection.as_deref(),
                    watermark.clone(),
                    source_metrics.clone(),
                )?
                .with_service_url(ctx.default_service_url.as_deref());
                let index = wiring.sources;
                wiring.sources += 1;
                let resume = ctx
                    .checkpoint
                    .as_ref()
                    .and_then(|c| c.restored.as_ref())
                    .and_then(|r| r.sources.get(index));
                if let Some(o) = source.table.pulsar()
                    && ctx.checkpoint.is_some()
                    && !o.subscription_type.is_ordered()
                {
                    return Err(EngineError::Sql(magnetar_sql::SqlError::unsupported(
                        format!(
                            "table '{}' is read with a {:?} subscription; a checkpointed job needs an Exclusive or Failover one ('source.subscription-type'), whose position per partition a checkpoint can hold",
                            source.table.name, o.subscription_type
                        ),
                        None,
                    )));
                }
                let subscription = ctx
                    .checkpoint
                    .as_ref()
                    .and_then(|c| c.subscription_prefix.as_ref())
                    .map(|prefix| format!("{prefix}-{index}"));
                let reader = Reader::open(
                    &source.table,
                    &ctx.clients,
                    ctx.default_service_url.as_deref(),
                    ctx.batch_size,
                    resume.map(|r| &r.positions),
                    subscription,
                    source_metrics.backfill.clone(),
                )
                .await?;
                let event_time = watermark.map(|_| {
                    let (emit, idle_timeout) = source.table.connector.event_time();
                    let mut generator = WatermarkGenerator::new(
                        reader.partition_count(),
                        idle_timeout.or(ctx.idle_timeout),
                        ctx.clock.clone(),
                    );
                    if let Some(state) = resume.and_then(|r| r.watermarks.as_ref()) {
                        generator.restore(state);
                    }
                    EventTimeSettings { emit, generator }
                });
                wiring.metrics.sources.push(source_metrics);
                let task = SourceTask {
                    table: source.table.clone(),
                    reader,
                    decoder,
                    batch_size: ctx.batch_size,
                    barriers: ctx.barriers,
                    event_time,
                    checkpoint: ctx.checkpoint.as_ref().map(|c| (index, c.parts.clone())),
                };
                let settle = wiring.settle.source();
                wiring.tasks.push(tokio::spawn(task.run(
                    tx,
                    wiring.completed.clone(),
                    wiring.stop.clone(),
                    settle,
                )));
            }
            StreamNode::Stateless(stage) => {
                let input = build_node(&stage.input, ctx, wiring).await?;
                let operator = StatelessOperator::new(
                    stage.predicate.as_ref().map(|(p, _)| p.clone()),
                    stage
                        .projection
                        .as_ref()
                        .map(|cols| cols.iter().map(|(e, _)| e.clone()).collect()),
                    stage.schema.clone(),
                );
                wiring.spawn_operator(ctx, operator, input, tx)?;
            }
            StreamNode::Limit(limit) => {
                let input = build_node(&limit.input, ctx, wiring).await?;
                let operator = LimitOperator::new(limit.skip, limit.fetch);
                wiring.spawn_operator(ctx, operator, input, tx)?;
            }
            StreamNode::WindowAssign(w) => {
                let input = build_node(&w.input, ctx, wiring).await?;
                let window_metrics = Arc::new(WindowMetrics::default());
                wiring.metrics.windows.push(window_metrics.clone());
                let operator = WindowAssignOperator::new(
                    &w.spec,
                    w.time_index,
                    w.mode,
                    w.schema.clone(),
                    window_metrics,
                );
                wiring.spawn_operator(ctx, operator, input, tx)?;
            }
            StreamNode::WindowAggregate(w) => {
                let input = build_node(&w.input, ctx, wiring).await?;
                let window_metrics = Arc::new(WindowMetrics::default());
                wiring.metrics.windows.push(window_metrics.clone());
                let keys = w
                    .group
                    .iter()
                    .filter_map(|g| match g {
                        GroupItem::Key(k) => Some(k.clone()),
                        _ => None,
                    })
                    .collect();
                let spec = AggregateSpec::new(keys, w.aggregates.clone(), &w.input.schema())?;
                match Slicer::new(&w.spec) {
                    Some(slicer) => {
                        let operator = SlicedWindowAggregate::new(
                            slicer,
                            spec,
                            w.group.clone(),
                            w.schema.clone(),
                            w.slice_end,
                            window_metrics,
                        );
                        wiring.spawn_operator(ctx, operator, input, tx)?;
                    }
                    None => {
                        let operator = SessionWindowAggregate::new(
                            spec,
                            w.group.clone(),
                            w.schema.clone(),
                            w.slice_start,
                            w.slice_end,
                            window_metrics,
                        )?;
                        wiring.spawn_operator(ctx, operator, input, tx)?;
                    }
                }
            }
            StreamNode::WindowTopN(w) => {
                let input = build_node(&w.input, ctx, wiring).await?;
                let operator = WindowTopNOperator::new(
                    w.window_end,
                    w.partition.clone(),
                    w.order.clone(),
                    w.limit,
                    w.schema.clone(),
                );
                wiring.spawn_operator(ctx, operator, input, tx)?;
            }
        }
        Ok(rx)
    })
}
