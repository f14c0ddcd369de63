//! The streaming plan: what an unbounded query runs as. DataFusion parses, resolves and
//! optimises the query; [`lower::lower`] turns the optimised logical plan into these nodes,
//! which the engine runs as incremental operators over Arrow batches.

mod lower;

use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_expr::PhysicalExpr;

pub use lower::{QueryBoundedness, boundedness, lower};

use crate::catalog::TableDef;

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
        }
    }

    /// The sources below this node.
    pub fn sources(&self) -> Vec<&SourceNode> {
        match self {
            StreamNode::Source(s) => vec![s],
            StreamNode::Stateless(s) => s.input.sources(),
            StreamNode::Limit(l) => l.input.sources(),
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
                    let _ = writeln!(
                        out,
                        "{indent}FileSource: table={} format={} columns=[{}]",
                        s.table.name,
                        s.table.format().kind.name(),
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
        }
    }
}
