//! The streaming plan: what an unbounded query runs as. DataFusion parses, resolves and
//! optimises the query; [`lower::lower`] turns the optimised logical plan into a tree of
//! [`StreamNode`]s, and [`graph::JobGraph`] turns one or more trees (a statement set) into the
//! dataflow graph the engine runs: tasks with parallel instances, connected by exchanges.

mod graph;
mod interval_join;
mod join_condition;
mod lower;
mod nodes;
mod time_attribute;
mod window_join;

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_expr::PhysicalExpr;

pub use graph::{
    Branch, BranchId, Edge, EdgeKind, GraphNode, Head, JobGraph, NodeId, NodeParallelism,
    PlanTarget, sink_description,
};
pub use interval_join::{IntervalJoinKind, IntervalJoinNode, TimeBounds, is_interval_join};
pub use lower::{QueryBoundedness, boundedness, lower, needs_streaming, uses_event_time_node};
pub use nodes::{
    AggregateItem, AssignMode, GroupItem, LimitNode, MatchRecognizeNode, PhysicalDefine,
    PhysicalSlotExpr, SourceNode, StatelessNode, UnionNode, WindowAggregateNode, WindowAssignNode,
    WindowTopNNode,
};
pub use time_attribute::is_time_attribute;
pub use window_join::{WindowJoinKind, WindowJoinNode, is_window_join, window_columns};

/// A compiled expression over a node's input batches.
pub type PhysicalExprRef = Arc<dyn PhysicalExpr>;

/// A streaming plan: a tree of nodes from sources to the root.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    /// The root node; its output is the query's result.
    pub root: StreamNode,
}

impl StreamPlan {
    /// Output schema.
    pub fn schema(&self) -> SchemaRef {
        self.root.schema()
    }
}

/// One operator of a streaming plan with its inputs.
#[derive(Debug, Clone)]
pub struct StreamNode {
    /// What the node does.
    pub op: StreamOp,
    /// Its inputs (none for a source, several for a union).
    pub inputs: Vec<StreamNode>,
}

/// What a plan node does. Each kind's behaviour lives with its payload (see [`PlanOp`]);
/// this enum only names the kinds, and [`StreamOp::info`] is the one place that lists them.
#[derive(Debug, Clone)]
pub enum StreamOp {
    /// Reads a table.
    Source(SourceNode),
    /// Filters and projects each batch on its own (no state).
    Stateless(StatelessNode),
    /// Skips and takes rows, then ends the stream.
    Limit(LimitNode),
    /// Adds window columns (a window TVF).
    WindowAssign(WindowAssignNode),
    /// Aggregates per window and key; emits each window once, when it fires.
    WindowAggregate(WindowAggregateNode),
    /// Keeps the first N rows of each window by an order (window Top-N).
    WindowTopN(WindowTopNNode),
    /// `UNION ALL`: the rows of every input.
    Union(UnionNode),
    /// `MATCH_RECOGNIZE`: one row per match of a pattern, per partition.
    MatchRecognize(MatchRecognizeNode),
    /// A join of two inputs within time bounds of each other (input 0 left, 1 right).
    IntervalJoin(IntervalJoinNode),
    /// A join of two windowed inputs, per window once it closes (input 0 left, 1 right).
    WindowJoin(WindowJoinNode),
}

/// How a node's input rows must be spread over its parallel instances.
#[derive(Debug, Clone)]
pub enum Distribution {
    /// Row by row, with no state across rows: runs in the task of its input (fused).
    Fused,
    /// Rows with equal keys meet in one instance: hash-partitioned by these keys.
    Keyed(KeySpec),
    /// Like `Keyed`, with a key per input (in input order, of the same types): rows of
    /// every input with equal keys meet in one instance (a join).
    KeyedInputs(Vec<KeySpec>),
    /// Every row in one instance (a global aggregate, `LIMIT`).
    Single,
    /// No task of its own: its consumer reads each of its inputs directly (`UNION ALL`).
    Merge,
    /// No input: a source.
    Source,
}

/// Key expressions over a node's input, which decide the instance each row goes to.
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// The expressions.
    pub exprs: Vec<PhysicalExprRef>,
    /// How EXPLAIN shows them.
    pub display: Vec<String>,
}

/// What the graph builder and EXPLAIN need to know of a node kind.
pub trait PlanOp {
    /// The node's output schema.
    fn schema(&self) -> SchemaRef;
    /// One line for EXPLAIN (no indentation, no newline).
    fn describe(&self) -> String;
    /// How its input is distributed over instances.
    fn distribution(&self) -> Distribution;
    /// Whether it works in event time (its sources must generate watermarks).
    fn uses_event_time(&self) -> bool {
        false
    }
}

impl StreamOp {
    /// The node kind's behaviour.
    pub fn info(&self) -> &dyn PlanOp {
        match self {
            StreamOp::Source(n) => n,
            StreamOp::Stateless(n) => n,
            StreamOp::Limit(n) => n,
            StreamOp::WindowAssign(n) => n,
            StreamOp::WindowAggregate(n) => n,
            StreamOp::WindowTopN(n) => n,
            StreamOp::Union(n) => n,
            StreamOp::MatchRecognize(n) => n,
            StreamOp::IntervalJoin(n) => n,
            StreamOp::WindowJoin(n) => n,
        }
    }
}

impl StreamNode {
    /// A node without inputs.
    pub fn leaf(op: StreamOp) -> Self {
        Self {
            op,
            inputs: Vec::new(),
        }
    }

    /// A node over one input.
    pub fn over(op: StreamOp, input: StreamNode) -> Self {
        Self {
            op,
            inputs: vec![input],
        }
    }

    /// The node's output schema.
    pub fn schema(&self) -> SchemaRef {
        self.op.info().schema()
    }

    /// Whether this node or one below works in event time.
    pub fn uses_event_time(&self) -> bool {
        self.op.info().uses_event_time() || self.inputs.iter().any(StreamNode::uses_event_time)
    }

    /// Marks every source below as generating watermarks.
    pub(crate) fn mark_watermarks(&mut self) {
        if let StreamOp::Source(s) = &mut self.op {
            s.watermarks = true;
        }
        for input in &mut self.inputs {
            input.mark_watermarks();
        }
    }
}
