//! The streaming plan: what an unbounded query runs as. DataFusion parses, resolves and
//! optimises the query; [`lower::lower`] turns the optimised logical plan into these nodes,
//! which the engine runs as incremental operators over Arrow batches.

mod lower;

use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_expr::PhysicalExpr;

pub use lower::{QueryBoundedness, boundedness, lower, needs_streaming, uses_window_tvf};

use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

use crate::catalog::TableDef;
use crate::options::Connector;
use crate::window::WindowSpec;

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

    /// The plan as an indented tree, root first.
    pub fn display(&self) -> String {
        let mut out = String::new();
        self.root.write_tree(&mut out, 0);
        out
    }
}

/// One operator of a streaming plan.
#[derive(Debug, Clone)]
pub enum StreamNode {
    /// Reads a Pulsar table.
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
}

/// How a window TVF assigns rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignMode {
    /// One output row per (row, window) pair: the TVF on its own.
    Expand,
    /// One output row per row, with the slice (pane) it falls in as `window_start` and
    /// `window_end`; the window aggregate above combines slices into windows. For SESSION,
    /// the row's own window `[ts, ts + gap)`.
    Slices,
}

/// A window TVF: the input's columns plus `window_start`, `window_end`, `window_time`.
#[derive(Debug, Clone)]
pub struct WindowAssignNode {
    /// Input.
    pub input: Box<StreamNode>,
    /// The windows.
    pub spec: WindowSpec,
    /// Index of the event-time column in the input.
    pub time_index: usize,
    /// Expansion or slices.
    pub mode: AssignMode,
    /// Output schema.
    pub schema: SchemaRef,
}

/// One item of a window aggregate's GROUP BY.
#[derive(Debug, Clone)]
pub enum GroupItem {
    /// `window_start`.
    WindowStart,
    /// `window_end`.
    WindowEnd,
    /// `window_time`.
    WindowTime,
    /// A key expression over the input.
    Key(PhysicalExprRef),
}

/// One aggregate function of a window aggregate.
#[derive(Debug, Clone)]
pub struct AggregateItem {
    /// The function with its arguments.
    pub function: Arc<AggregateFunctionExpr>,
    /// `FILTER (WHERE ...)`.
    pub filter: Option<PhysicalExprRef>,
}

/// `GROUP BY window_start, window_end, keys...` over a window TVF.
#[derive(Debug, Clone)]
pub struct WindowAggregateNode {
    /// Input: rows with their slice in `window_start` / `window_end`.
    pub input: Box<StreamNode>,
    /// The windows.
    pub spec: WindowSpec,
    /// Index of the slice start column in the input.
    pub slice_start: usize,
    /// Index of the slice end column in the input.
    pub slice_end: usize,
    /// GROUP BY items, in output order.
    pub group: Vec<GroupItem>,
    /// Aggregates, in output order (after the group items).
    pub aggregates: Vec<AggregateItem>,
    /// Output schema.
    pub schema: SchemaRef,
    /// For EXPLAIN.
    pub display: String,
}

/// `ROW_NUMBER() OVER (PARTITION BY window_start, window_end ... ORDER BY ...) <= N`.
#[derive(Debug, Clone)]
pub struct WindowTopNNode {
    /// Input: window aggregate results.
    pub input: Box<StreamNode>,
    /// Index of `window_end` in the input: rows are ranked once the window has fired.
    pub window_end: usize,
    /// PARTITION BY columns (input indices).
    pub partition: Vec<usize>,
    /// ORDER BY: input index, descending, nulls first.
    pub order: Vec<(usize, bool, bool)>,
    /// Rows kept per partition.
    pub limit: usize,
    /// Output schema: the input's columns and the row number.
    pub schema: SchemaRef,
}

/// Reads a table's topics.
#[derive(Debug, Clone)]
pub struct SourceNode {
    /// The table.
    pub table: Arc<TableDef>,
    /// Indices of the table's columns that are read, `None` for all.
    pub projection: Option<Vec<usize>>,
    /// Output schema (the projected columns).
    pub schema: SchemaRef,
    /// Whether the source generates watermarks (an operator above uses event time).
    pub watermarks: bool,
}

/// Filter then projection, per batch.
#[derive(Debug, Clone)]
pub struct StatelessNode {
    /// Input.
    pub input: Box<StreamNode>,
    /// Rows where this is not true are dropped.
    pub predicate: Option<(PhysicalExprRef, String)>,
    /// Output columns computed from the (filtered) input, with their display text.
    pub projection: Option<Vec<(PhysicalExprRef, String)>>,
    /// Output schema.
    pub schema: SchemaRef,
}

/// `OFFSET skip LIMIT fetch`.
#[derive(Debug, Clone)]
pub struct LimitNode {
    /// Input.
    pub input: Box<StreamNode>,
    /// Rows to skip.
    pub skip: usize,
    /// Rows to return after skipping; `None` for all.
    pub fetch: Option<usize>,
}

impl StreamNode {
    /// The node's output schema.
    pub fn schema(&self) -> SchemaRef {
        match self {
            StreamNode::Source(s) => s.schema.clone(),
            StreamNode::Stateless(s) => s.schema.clone(),
            StreamNode::Limit(l) => l.input.schema(),
            StreamNode::WindowAssign(w) => w.schema.clone(),
            StreamNode::WindowAggregate(w) => w.schema.clone(),
            StreamNode::WindowTopN(w) => w.schema.clone(),
        }
    }

    /// The node's input, if it has one.
    pub fn input(&self) -> Option<&StreamNode> {
        match self {
            StreamNode::Source(_) => None,
            StreamNode::Stateless(s) => Some(&s.input),
            StreamNode::Limit(l) => Some(&l.input),
            StreamNode::WindowAssign(w) => Some(&w.input),
            StreamNode::WindowAggregate(w) => Some(&w.input),
            StreamNode::WindowTopN(w) => Some(&w.input),
        }
    }

    /// Whether this node or one below works in event time.
    pub fn uses_event_time(&self) -> bool {
        matches!(
            self,
            StreamNode::WindowAssign(_)
                | StreamNode::WindowAggregate(_)
                | StreamNode::WindowTopN(_)
        ) || self.input().is_some_and(StreamNode::uses_event_time)
    }

    /// The sources below this node.
    pub fn sources(&self) -> Vec<&SourceNode> {
        match self {
            StreamNode::Source(s) => vec![s],
            other => other.input().map(StreamNode::sources).unwrap_or_default(),
        }
    }

    fn write_tree(&self, out: &mut String, depth: usize) {
        let indent = "  ".repeat(depth);
        match self {
            StreamNode::Source(s) => {
                let columns: Vec<&str> = s
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect();
                let Some(o) = s.table.pulsar() else {
                    let (kind, detail) = match &s.table.connector {
                        Connector::Memory(m) => (
                            "MemorySource",
                            format!("storage={} partitions={}", m.name, m.partitions),
                        ),
                        Connector::Custom(c) => {
                            ("CustomSource", format!("connector={}", c.connector))
                        }
                        _ => (
                            "FileSource",
                            format!("format={}", s.table.format().kind.name()),
                        ),
                    };
                    let _ = writeln!(
                        out,
                        "{indent}{kind}: table={} {detail} columns=[{}]",
                        s.table.name,
                        columns.join(", ")
                    );
                    if let Some(w) = &s.table.watermark {
                        let _ =
                            writeln!(out, "{indent}  watermark: FOR {} AS {}", w.column, w.expr);
                    }
                    return;
                };
                let _ = writeln!(
                    out,
                    "{indent}PulsarSource: table={} topics=[{}] format={} subscription={} ({:?}) start={:?} stop={:?} columns=[{}]",
                    s.table.name,
                    o.topics
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    o.format.kind.name(),
                    o.subscription_name.as_deref().unwrap_or("<temporary>"),
                    o.subscription_type,
                    o.start,
                    o.stop,
                    columns.join(", ")
                );
                if let Some(w) = &s.table.watermark {
                    let _ = writeln!(out, "{indent}  watermark: FOR {} AS {}", w.column, w.expr);
                }
            }
            StreamNode::Stateless(s) => {
                let mut parts = Vec::new();
                if let Some((_, text)) = &s.predicate {
                    parts.push(format!("filter={text}"));
                }
                if let Some(columns) = &s.projection {
                    parts.push(format!(
                        "project=[{}]",
                        columns
                            .iter()
                            .map(|(_, t)| t.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                let _ = writeln!(out, "{indent}Stateless: {}", parts.join(" "));
                s.input.write_tree(out, depth + 1);
            }
            StreamNode::Limit(l) => {
                let fetch = l
                    .fetch
                    .map(|f| f.to_string())
                    .unwrap_or_else(|| "all".into());
                let _ = writeln!(out, "{indent}Limit: skip={} fetch={fetch}", l.skip);
                l.input.write_tree(out, depth + 1);
            }
            StreamNode::WindowAssign(w) => {
                let time = w.input.schema().field(w.time_index).name().clone();
                let mode = match w.mode {
                    AssignMode::Expand => "rows per window",
                    AssignMode::Slices => "slices",
                };
                let _ = writeln!(out, "{indent}WindowAssign: {} on {time} ({mode})", w.spec);
                w.input.write_tree(out, depth + 1);
            }
            StreamNode::WindowAggregate(w) => {
                let _ = writeln!(out, "{indent}WindowAggregate: {} {}", w.spec, w.display);
                w.input.write_tree(out, depth + 1);
            }
            StreamNode::WindowTopN(w) => {
                let name = |i: usize| w.input.schema().field(i).name().clone();
                let order: Vec<String> = w
                    .order
                    .iter()
                    .map(|(i, desc, _)| format!("{}{}", name(*i), if *desc { " DESC" } else { "" }))
                    .collect();
                let _ = writeln!(
                    out,
                    "{indent}WindowTopN: limit={} partition=[{}] order=[{}]",
                    w.limit,
                    w.partition
                        .iter()
                        .map(|i| name(*i))
                        .collect::<Vec<_>>()
                        .join(", "),
                    order.join(", ")
                );
                w.input.write_tree(out, depth + 1);
            }
        }
    }
}
