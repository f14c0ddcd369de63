//! Starts a job graph: every node's instances as tasks, bounded channels for every edge
//! between instances (forward, hash, broadcast, single), one barrier injector for all the
//! sources, and the counters `SHOW JOBS` and `system.job_tasks` read.
//!
//! Fallible steps come first, in the order a restart needs them: sinks open (an exactly-once
//! sink reads what a crashed run wrote before anything new is emitted), then sources
//! subscribe (an unreachable broker or a refused subscription is reported here), then
//! operators restore their state; only then do tasks start.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::datatypes::DataType;
use datafusion::execution::session_state::SessionState;
use magnetar_sql::catalog::TableDef;
use magnetar_sql::plan::{EdgeKind, Head, JobGraph, NodeId, PlanOp, SourceNode};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::dispatch::{Branch, Exchange, TaskOutput};
use super::gate::{InputChannel, InputGate};
use super::key_groups::{KeyGroupRange, KeyHasher};
use super::task::{OperatorTask, TaskId, TaskMetrics, run_output_task};
use super::{BarrierInjector, CHANNEL_CAPACITY, Clock, Epoch, StreamMessage};
use crate::checkpoint::{PartSender, Restored};
use crate::error::{EngineError, Result};
use crate::operators::window::WindowMetrics;
use crate::operators::{Operator, OperatorContext, instantiate};
use crate::sinks::{
    ExactlyOnceInstance, ReplayGuard, SharedReplayGuard, SinkMetrics, SinkTask, SinkWriter,
};
use crate::sources::{
    BarrierPolicy, ClientPool, EventTimeSettings, Reader, SourceDecoder, SourceMetrics, SourceTask,
    SplitAssignment, WatermarkExpr, WatermarkGenerator,
};

/// What a graph needs from the engine.
#[derive(Clone, Debug)]
pub struct GraphContext {
    /// Pulsar clients (and memory logs, custom connectors).
    pub clients: Arc<ClientPool>,
    /// Service URL for tables without one.
    pub default_service_url: Option<String>,
    /// Most messages per batch.
    pub batch_size: usize,
    /// When barriers are injected.
    pub barriers: BarrierPolicy,
    /// Processing time, for idle partitions.
    pub clock: Clock,
    /// Idle timeout for tables that set none (`table.exec.source.idle-timeout`).
    pub idle_timeout: Option<Duration>,
    /// For compiling watermark expressions.
    pub state: SessionState,
    /// Instances of each keyed node (`parallelism.default`).
    pub parallelism: usize,
    /// Key groups (`pipeline.max-parallelism`).
    pub max_parallelism: u16,
}

/// How a graph's barriers complete, and what its tasks report.
#[derive(Clone, Debug)]
pub enum GraphMode {
    /// A query: its rows, and barriers, go to [`RunningGraph::output`], whose reader
    /// completes the barriers.
    Query,
    /// A job without checkpoints: sinks report each barrier once flushed.
    Flush {
        /// Where they report.
        parts: PartSender,
    },
    /// A checkpointed job: every task reports its part of each barrier.
    Checkpoint {
        /// Where they report.
        parts: PartSender,
        /// The checkpoint this run starts from.
        restored: Option<Arc<Restored>>,
        /// Sources of tables that name no subscription subscribe durably as
        /// `{prefix}-{node}`, so the broker keeps what a recovery needs (named jobs).
        subscription_prefix: Option<String>,
        /// Exactly-once sinks: the job's name, which their producers' names start with.
        exactly_once: Option<String>,
    },
}

impl GraphMode {
    fn parts(&self) -> Option<&PartSender> {
        match self {
            GraphMode::Query => None,
            GraphMode::Flush { parts } | GraphMode::Checkpoint { parts, .. } => Some(parts),
        }
    }

    fn restored(&self) -> Option<&Arc<Restored>> {
        match self {
            GraphMode::Checkpoint { restored, .. } => restored.as_ref(),
            _ => None,
        }
    }

    fn checkpointed(&self) -> bool {
        matches!(self, GraphMode::Checkpoint { .. })
    }
}

/// Counters of a running graph.
#[derive(Clone, Debug, Default)]
pub struct GraphMetrics {
    /// One per source instance.
    pub sources: Vec<Arc<SourceMetrics>>,
    /// One per event-time operator instance.
    pub windows: Vec<Arc<WindowMetrics>>,
    /// One per task instance.
    pub tasks: Vec<Arc<TaskMetrics>>,
}

/// A running graph.
pub struct RunningGraph {
    /// A query's rows (and barriers, which its reader completes).
    pub output: Option<mpsc::Receiver<StreamMessage>>,
    /// Injects barriers into the sources; a stop goes through it too.
    pub injector: Arc<BarrierInjector>,
    /// The source, operator and output tasks.
    pub tasks: Vec<JoinHandle<()>>,
    /// The sink tasks, which say how the job ended.
    pub sinks: Vec<JoinHandle<Result<()>>>,
    /// The tasks whose reports complete an epoch (for the coordinator).
    pub reporting: BTreeSet<TaskId>,
    /// Counters.
    pub metrics: GraphMetrics,
    /// Instances of each node, by stable id (for `SHOW JOBS`).
    pub parallelism: BTreeMap<String, usize>,
    /// Injects a barrier every interval (jobs).
    pub ticker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningGraph")
            .field("tasks", &self.tasks.len())
            .field("sinks", &self.sinks.len())
            .finish()
    }
}

impl Drop for RunningGraph {
    fn drop(&mut self) {
        if let Some(ticker) = &self.ticker {
            ticker.abort();
        }
    }
}

/// The service URL a table reads from.
pub fn service_url_for(table: &TableDef, default: Option<&str>) -> Result<String> {
    table
        .pulsar()
        .and_then(|o| o.service_url.clone())
        .or_else(|| default.map(str::to_string))
        .ok_or_else(|| EngineError::NoServiceUrl {
            table: table.name.clone(),
        })
}

/// How many instances each node of `graph` runs (sources: at most one per partition or
/// split of their table, which for Pulsar tables asks the broker).
pub async fn node_instances(graph: &JobGraph, ctx: &GraphContext) -> Result<Vec<usize>> {
    let mut splits: HashMap<String, usize> = HashMap::new();
    for (_, source) in graph.sources() {
        let n = Reader::splits(
            &source.table,
            &ctx.clients,
            ctx.default_service_url.as_deref(),
            ctx.parallelism,
        )
        .await?;
        splits.insert(source.table.name.clone(), n);
    }
    Ok(graph.instances(ctx.parallelism, |s: &SourceNode| {
        splits.get(&s.table.name).copied()
    }))
}

/// Channels of every instance, before tasks start.
struct Wiring {
    /// Per node, per instance, per branch: the exchanges it sends into.
    outputs: Vec<Vec<Vec<Vec<Exchange>>>>,
    /// Per node, per instance: its input channels.
    inputs: Vec<Vec<Vec<InputChannel>>>,
}

fn wire(graph: &JobGraph, instances: &[usize], max_parallelism: u16) -> Result<Wiring> {
    let mut outputs: Vec<Vec<Vec<Vec<Exchange>>>> = graph
        .nodes
        .iter()
        .map(|n| {
            (0..instances[n.id.0])
                .map(|_| (0..n.branches.len()).map(|_| Vec::new()).collect())
                .collect()
        })
        .collect();
    let mut inputs: Vec<Vec<Vec<InputChannel>>> = graph
        .nodes
        .iter()
        .map(|n| (0..instances[n.id.0]).map(|_| Vec::new()).collect())
        .collect();
    for consumer in &graph.nodes {
        let downstream = instances[consumer.id.0];
        for edge in &consumer.inputs {
            let branch_schema = &graph.nodes[edge.from.0].branches[edge.branch.0].schema;
            for (u, upstream) in outputs[edge.from.0].iter_mut().enumerate() {
                let exchange = match &edge.kind {
                    EdgeKind::Forward | EdgeKind::Single => {
                        let target = if matches!(edge.kind, EdgeKind::Single) {
                            0
                        } else {
                            u
                        };
                        let Some(channels) = inputs[consumer.id.0].get_mut(target) else {
                            return Err(EngineError::Internal(format!(
                                "forward edge from instance {u} into {downstream} instance(s) of {}",
                                consumer.stable_id
                            )));
                        };
                        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
                        channels.push(InputChannel {
                            input: edge.input,
                            rx,
                        });
                        Exchange::One(tx)
                    }
                    EdgeKind::Broadcast | EdgeKind::Hash(_) => {
                        let mut senders = Vec::with_capacity(downstream);
                        for channels in inputs[consumer.id.0].iter_mut() {
                            let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
                            channels.push(InputChannel {
                                input: edge.input,
                                rx,
                            });
                            senders.push(tx);
                        }
                        match &edge.kind {
                            EdgeKind::Hash(keys) => {
                                let types = keys
                                    .exprs
                                    .iter()
                                    .map(|k| Ok(k.data_type(branch_schema)?))
                                    .collect::<Result<Vec<DataType>>>()?;
                                Exchange::Hash {
                                    senders,
                                    keys: keys.exprs.clone(),
                                    hasher: KeyHasher::new(types, max_parallelism)?,
                                }
                            }
                            _ => Exchange::Broadcast(senders),
                        }
                    }
                };
                upstream[edge.branch.0].push(exchange);
            }
        }
    }
    Ok(Wiring { outputs, inputs })
}

/// A task that is ready to start.
enum Ready {
    Source(Box<SourceTask>, TaskOutput),
    Operator(OperatorTask),
    Sink(SinkTask),
    Output(InputGate, mpsc::Sender<StreamMessage>),
}

/// Starts `graph`. `completed` tells sources which barriers are complete (from the
/// coordinator, or from the reader of a query's output); `sink_metrics` counts what the
/// job's sinks write.
pub async fn start_graph(
    graph: &JobGraph,
    ctx: &GraphContext,
    mode: GraphMode,
    completed: watch::Receiver<Epoch>,
    sink_metrics: Arc<SinkMetrics>,
) -> Result<RunningGraph> {
    let instances = node_instances(graph, ctx).await?;
    if let Some(restored) = mode.restored() {
        restored.check_shape(
            graph.nodes.iter().map(|n| n.stable_id.as_str()),
            ctx.max_parallelism,
        )?;
    }
    let mut wiring = wire(graph, &instances, ctx.max_parallelism)?;
    let injector = Arc::new(BarrierInjector::default());
    let mut metrics = GraphMetrics::default();
    let mut reporting = BTreeSet::new();
    let mut ready: Vec<Ready> = Vec::new();
    let mut output = None;
    // Boxed: opening readers and writers is a deep future; keep it off the caller's stack.
    let result = Box::pin(prepare(
        graph,
        ctx,
        &mode,
        &instances,
        &mut wiring,
        &mut metrics,
        &mut reporting,
        &mut ready,
        &mut output,
        sink_metrics,
    ))
    .await;
    if let Err(e) = result {
        // Leave nothing subscribed behind (an Exclusive subscription would stay taken).
        for task in ready {
            if let Ready::Source(task, _) = task {
                task.reader.close().await;
            }
        }
        return Err(e);
    }
    let mut tasks = Vec::new();
    let mut sinks = Vec::new();
    for task in ready {
        match task {
            Ready::Source(task, out) => tasks.push(tokio::spawn(task.run(
                out,
                injector.clone(),
                completed.clone(),
            ))),
            Ready::Operator(task) => tasks.push(tokio::spawn(task.run())),
            Ready::Sink(task) => sinks.push(tokio::spawn(task.run())),
            Ready::Output(gate, out) => tasks.push(tokio::spawn(run_output_task(gate, out))),
        }
    }
    let ticker = match ctx.barriers {
        BarrierPolicy::Every(interval) => Some(injector.every(interval)),
        BarrierPolicy::AfterEachBatch => None,
    };
    Ok(RunningGraph {
        output,
        injector,
        tasks,
        sinks,
        reporting,
        metrics,
        parallelism: graph
            .nodes
            .iter()
            .map(|n| (n.stable_id.clone(), instances[n.id.0]))
            .collect(),
        ticker,
    })
}

#[allow(clippy::too_many_arguments)]
async fn prepare(
    graph: &JobGraph,
    ctx: &GraphContext,
    mode: &GraphMode,
    instances: &[usize],
    wiring: &mut Wiring,
    metrics: &mut GraphMetrics,
    reporting: &mut BTreeSet<TaskId>,
    ready: &mut Vec<Ready>,
    output: &mut Option<mpsc::Receiver<StreamMessage>>,
    sink_metrics: Arc<SinkMetrics>,
) -> Result<()> {
    let parts = mode.parts().cloned();
    // Sinks first, then sources, then operators (see the module's documentation).
    let mut order: Vec<NodeId> = graph
        .nodes
        .iter()
        .filter(|n| matches!(n.head, Head::Sink(_)))
        .map(|n| n.id)
        .collect();
    order.extend(
        graph
            .nodes
            .iter()
            .filter(|n| matches!(n.head, Head::Source(_)))
            .map(|n| n.id),
    );
    order.extend(
        graph
            .nodes
            .iter()
            .filter(|n| matches!(n.head, Head::Operator(_) | Head::Output))
            .map(|n| n.id),
    );
    for id in order {
        let node = &graph.nodes[id.0];
        let count = instances[id.0];
        let node_name: Arc<str> = Arc::from(node.stable_id.as_str());
        let kind = match &node.head {
            Head::Source(s) => s
                .describe()
                .split(':')
                .next()
                .unwrap_or("Source")
                .to_string(),
            Head::Operator(op) => op
                .info()
                .describe()
                .split(':')
                .next()
                .unwrap_or("Operator")
                .to_string(),
            Head::Sink(_) => "Sink".into(),
            Head::Output => "Result".into(),
        };
        let guard = match (&node.head, mode) {
            (
                Head::Sink(table),
                GraphMode::Checkpoint {
                    exactly_once: Some(job),
                    restored,
                    ..
                },
            ) if table.pulsar().is_some_and(|o| {
                o.delivery_guarantee == magnetar_sql::options::DeliveryGuarantee::ExactlyOnce
            }) =>
            {
                let prefix = format!("magnetar-{job}-{}-", node.stable_id);
                Some((
                    prefix.clone(),
                    Box::pin(replay_guard(
                        table,
                        ctx,
                        restored.as_deref(),
                        &node.stable_id,
                        &prefix,
                        count,
                    ))
                    .await?,
                ))
            }
            _ => None,
        };
        for instance in 0..count {
            let task = TaskId {
                node: node_name.clone(),
                instance,
            };
            let task_metrics = Arc::new(TaskMetrics::new(task.clone(), kind.clone(), count));
            metrics.tasks.push(task_metrics.clone());
            let channels = std::mem::take(&mut wiring.inputs[id.0][instance]);
            let exchanges = std::mem::take(&mut wiring.outputs[id.0][instance]);
            match &node.head {
                Head::Sink(table) => {
                    let exactly_once = guard.as_ref().map(|(prefix, guard)| ExactlyOnceInstance {
                        producer_name: format!("{prefix}{instance}"),
                        guard: guard.clone(),
                        instance,
                    });
                    let writer = Box::pin(SinkWriter::open(
                        table.clone(),
                        &ctx.clients,
                        ctx.default_service_url.as_deref(),
                        sink_metrics.clone(),
                        exactly_once,
                    ))
                    .await?;
                    let Some(parts) = parts.clone() else {
                        return Err(EngineError::Internal("a sink in a query".into()));
                    };
                    reporting.insert(task.clone());
                    ready.push(Ready::Sink(SinkTask {
                        id: task,
                        gate: InputGate::new(channels),
                        writer,
                        parts,
                        metrics: task_metrics,
                    }));
                }
                Head::Output => {
                    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
                    *output = Some(rx);
                    ready.push(Ready::Output(InputGate::new(channels), tx));
                }
                Head::Source(source) => {
                    let out = task_output(node, exchanges, metrics, task_metrics.clone())?;
                    let task = Box::pin(open_source(
                        source,
                        ctx,
                        mode,
                        task.clone(),
                        SplitAssignment {
                            instance,
                            instances: count,
                        },
                        task_metrics,
                        metrics,
                    ))
                    .await?;
                    if mode.checkpointed() {
                        reporting.insert(task.id.clone());
                    }
                    ready.push(Ready::Source(Box::new(task), out));
                }
                Head::Operator(op) => {
                    let keyed = node
                        .inputs
                        .iter()
                        .any(|e| matches!(e.kind, EdgeKind::Hash(_)));
                    let key_groups = if keyed {
                        KeyGroupRange::of_instance(ctx.max_parallelism, count, instance)
                    } else {
                        KeyGroupRange::all(ctx.max_parallelism)
                    };
                    let hasher = match node.inputs.first().map(|e| &e.kind) {
                        Some(EdgeKind::Hash(keys)) => {
                            let edge = &node.inputs[0];
                            let schema = &graph.nodes[edge.from.0].branches[edge.branch.0].schema;
                            let types = keys
                                .exprs
                                .iter()
                                .map(|k| Ok(k.data_type(schema)?))
                                .collect::<Result<Vec<DataType>>>()?;
                            Some(KeyHasher::new(types, ctx.max_parallelism)?)
                        }
                        _ => None,
                    };
                    let (mut head, window) =
                        instantiate(op, OperatorContext { key_groups: hasher })?;
                    metrics.windows.extend(window);
                    if let Some(restored) = mode.restored() {
                        for state in restored.operator_states(&node.stable_id, key_groups)? {
                            head.restore(state)?;
                        }
                    }
                    if mode.checkpointed() {
                        reporting.insert(task.clone());
                    }
                    ready.push(Ready::Operator(OperatorTask {
                        id: task,
                        gate: InputGate::new(channels),
                        head,
                        output: task_output(node, exchanges, metrics, task_metrics.clone())?,
                        parts: if mode.checkpointed() {
                            parts.clone()
                        } else {
                            None
                        },
                        key_groups,
                        metrics: task_metrics,
                    }));
                }
            }
        }
    }
    Ok(())
}

/// An instance's branches: their fused operators and exchanges.
fn task_output(
    node: &magnetar_sql::plan::GraphNode,
    exchanges: Vec<Vec<Exchange>>,
    metrics: &mut GraphMetrics,
    task_metrics: Arc<TaskMetrics>,
) -> Result<TaskOutput> {
    let mut branches = Vec::with_capacity(node.branches.len());
    for (branch, exchanges) in node.branches.iter().zip(exchanges) {
        let mut chain: Vec<Box<dyn Operator>> = Vec::with_capacity(branch.chain.len());
        for op in &branch.chain {
            let (operator, window) = instantiate(op, OperatorContext::default())?;
            metrics.windows.extend(window);
            chain.push(operator);
        }
        branches.push(Branch { chain, exchanges });
    }
    Ok(TaskOutput::new(branches, task_metrics))
}

/// The replay guard of an exactly-once sink node: what a crashed run wrote after the
/// restored checkpoint (nothing on a fresh start).
async fn replay_guard(
    table: &TableDef,
    ctx: &GraphContext,
    restored: Option<&Restored>,
    node: &str,
    producer_prefix: &str,
    instances: usize,
) -> Result<SharedReplayGuard> {
    let guard = match restored {
        None => ReplayGuard::empty(instances),
        Some(restored) => {
            let client = ctx
                .clients
                .for_table(table, ctx.default_service_url.as_deref())
                .await?;
            let topic = table
                .pulsar()
                .and_then(|o| o.topics.first().cloned())
                .ok_or_else(|| {
                    EngineError::Internal(format!("sink '{}' has no topic", table.name))
                })?;
            ReplayGuard::read_tail(
                client,
                &topic,
                restored.sink_parts(node),
                producer_prefix,
                instances,
            )
            .await?
        }
    };
    Ok(Arc::new(Mutex::new(guard)))
}

/// Opens one source instance: its reader over its share of the partitions, positioned
/// after the restored checkpoint's positions, and its watermark generator.
#[allow(clippy::too_many_arguments)]
async fn open_source(
    source: &SourceNode,
    ctx: &GraphContext,
    mode: &GraphMode,
    id: TaskId,
    assignment: SplitAssignment,
    task_metrics: Arc<TaskMetrics>,
    metrics: &mut GraphMetrics,
) -> Result<SourceTask> {
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
    let restored_parts = mode
        .restored()
        .map(|r| r.source_parts(&id.node))
        .unwrap_or_default();
    let resume: Option<crate::checkpoint::SourcePositions> = mode.restored().map(|_| {
        restored_parts
            .iter()
            .flat_map(|p| p.positions.clone())
            .collect()
    });
    if let Some(o) = source.table.pulsar()
        && mode.checkpointed()
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
    let subscription = match mode {
        GraphMode::Checkpoint {
            subscription_prefix: Some(prefix),
            ..
        } => Some(format!("{prefix}-{}", id.node)),
        _ => None,
    };
    let reader = Reader::open(
        &source.table,
        &ctx.clients,
        ctx.default_service_url.as_deref(),
        ctx.batch_size,
        assignment,
        resume.as_ref(),
        subscription,
        &source_metrics,
    )
    .await?;
    let event_time = watermark.map(|_| {
        let (emit, idle_timeout) = source.table.connector.event_time();
        let mut generator = WatermarkGenerator::new(
            reader.partition_count(),
            idle_timeout.or(ctx.idle_timeout),
            ctx.clock.clone(),
        );
        let states: Vec<&serde_json::Value> = restored_parts
            .iter()
            .filter_map(|p| p.watermarks.as_ref())
            .collect();
        if !states.is_empty() {
            generator.restore(&states, &reader.partition_names());
        }
        EventTimeSettings { emit, generator }
    });
    metrics.sources.push(source_metrics);
    Ok(SourceTask {
        table: source.table.clone(),
        reader,
        decoder,
        batch_size: ctx.batch_size,
        barriers: ctx.barriers,
        event_time,
        parts: mode.checkpointed().then(|| mode.parts().cloned()).flatten(),
        metrics: task_metrics,
        id,
    })
}
