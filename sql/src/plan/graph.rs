//! The dataflow graph a job runs: plan trees (one per `INSERT` of a statement set, or one
//! query) turned into tasks connected by exchanges.
//!
//! A node is a task that runs in parallel instances: a head (a source, a keyed or global
//! operator, a sink, or a query's output) followed by one or more output branches, each a
//! chain of row-by-row operators fused into the task (no channel hop for a filter). Edges
//! connect a branch to a consumer's input: forward (instance i to instance i), hash (rows by
//! key group), broadcast or single (every instance into one). A `UNION ALL` has no task: its
//! consumer reads each of its inputs, and takes the least of their watermarks. A table read
//! by several statements of a set is read once: its source gets a branch per reader.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::physical_expr::expressions::Column;

use super::{
    Distribution, KeySpec, PhysicalExprRef, PlanOp, SourceNode, StatelessNode, StreamNode,
    StreamOp, StreamPlan,
};
use crate::catalog::TableDef;

/// A node's index in its graph; inputs come before their consumers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// One of a node's output branches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BranchId(pub usize);

/// Where the rows of a plan go.
#[derive(Debug, Clone)]
pub enum PlanTarget {
    /// Back to the caller (a query's result).
    Output,
    /// Into a table (`INSERT INTO`).
    Sink(Arc<TableDef>),
}

/// What a node's task starts with.
#[derive(Debug, Clone)]
pub enum Head {
    /// Reads a table.
    Source(SourceNode),
    /// A keyed or global operator (its input arrives through exchanges).
    Operator(StreamOp),
    /// Writes into a table.
    Sink(Arc<TableDef>),
    /// Hands rows to the caller.
    Output,
}

/// Row-by-row operators fused after a node's head, and where their rows go.
#[derive(Debug, Clone)]
pub struct Branch {
    /// The operators, in order.
    pub chain: Vec<StreamOp>,
    /// The branch's output schema.
    pub schema: SchemaRef,
}

/// How many instances a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeParallelism {
    /// The job's parallelism, but at most one instance per partition (or split) of its table.
    Splits,
    /// The job's parallelism.
    Default,
    /// One instance: the operator has no key to spread its rows by.
    One,
    /// As many as its widest input (a sink after forward edges).
    AsInputs,
}

/// How rows of an upstream branch reach the instances of its consumer.
#[derive(Debug, Clone)]
pub enum EdgeKind {
    /// Upstream instance i to downstream instance i (the consumer has at least as many).
    Forward,
    /// By key group of the key columns: equal keys meet in one instance.
    Hash(KeySpec),
    /// Every row to every instance.
    Broadcast,
    /// Every row to the one instance of the consumer.
    Single,
}

/// An edge into a node.
#[derive(Debug, Clone)]
pub struct Edge {
    /// The upstream node.
    pub from: NodeId,
    /// Its branch.
    pub branch: BranchId,
    /// Which input of the consumer it feeds (a union's inputs all feed the same one).
    pub input: usize,
    /// The exchange.
    pub kind: EdgeKind,
}

/// A node of the graph.
#[derive(Debug, Clone)]
pub struct GraphNode {
    /// Its index.
    pub id: NodeId,
    /// A name derived from the plan (not from its position), which checkpoints use.
    pub stable_id: String,
    /// What the task starts with.
    pub head: Head,
    /// Its output branches (one per consumer; a shared source has several).
    pub branches: Vec<Branch>,
    /// Edges into it.
    pub inputs: Vec<Edge>,
    /// How many instances it runs.
    pub parallelism: NodeParallelism,
}

/// The dataflow graph of a job (or a query).
#[derive(Debug, Clone)]
pub struct JobGraph {
    /// The nodes; inputs come before their consumers.
    pub nodes: Vec<GraphNode>,
}

/// A stream under construction: the branches that carry a plan node's rows.
type Stream = Vec<(NodeId, BranchId)>;

#[derive(Default)]
struct Builder {
    nodes: Vec<GraphNode>,
    /// Source node per table name.
    sources: HashMap<String, NodeId>,
    /// Per source branch: the table columns its reader asked for (`None`: all).
    wanted: HashMap<(NodeId, BranchId), Option<Vec<usize>>>,
}

impl Builder {
    fn push(&mut self, head: Head, inputs: Vec<Edge>, parallelism: NodeParallelism) -> NodeId {
        let id = NodeId(self.nodes.len());
        self.nodes.push(GraphNode {
            id,
            stable_id: String::new(),
            head,
            branches: Vec::new(),
            inputs,
            parallelism,
        });
        id
    }

    fn branch(&mut self, node: NodeId, schema: SchemaRef) -> BranchId {
        let branches = &mut self.nodes[node.0].branches;
        branches.push(Branch {
            chain: Vec::new(),
            schema,
        });
        BranchId(branches.len() - 1)
    }

    fn add(&mut self, node: &StreamNode) -> Stream {
        match node.op.info().distribution() {
            Distribution::Source => {
                let StreamOp::Source(source) = &node.op else {
                    return Vec::new();
                };
                let name = source.table.name.clone();
                let id = match self.sources.get(&name) {
                    Some(&id) => {
                        if let Head::Source(shared) = &mut self.nodes[id.0].head {
                            shared.watermarks |= source.watermarks;
                        }
                        id
                    }
                    None => {
                        let id = self.push(
                            Head::Source(source.clone()),
                            Vec::new(),
                            NodeParallelism::Splits,
                        );
                        self.sources.insert(name, id);
                        id
                    }
                };
                let branch = self.branch(id, source.schema.clone());
                self.wanted.insert((id, branch), source.projection.clone());
                vec![(id, branch)]
            }
            Distribution::Fused => {
                let stream = self.add_inputs(node);
                for (id, branch) in &stream {
                    let b = &mut self.nodes[id.0].branches[branch.0];
                    b.chain.push(node.op.clone());
                    b.schema = node.schema();
                }
                stream
            }
            Distribution::Merge => self.add_inputs(node),
            distribution @ (Distribution::Keyed(_)
            | Distribution::KeyedInputs(_)
            | Distribution::Single) => {
                let inputs_count = node.inputs.len();
                let (kinds, parallelism) = match distribution {
                    Distribution::Keyed(keys) => (
                        vec![EdgeKind::Hash(keys); inputs_count],
                        NodeParallelism::Default,
                    ),
                    Distribution::KeyedInputs(keys) => (
                        keys.into_iter().map(EdgeKind::Hash).collect(),
                        NodeParallelism::Default,
                    ),
                    _ => (vec![EdgeKind::Single; inputs_count], NodeParallelism::One),
                };
                let inputs = node
                    .inputs
                    .iter()
                    .zip(kinds)
                    .enumerate()
                    .flat_map(|(input, (n, kind))| {
                        self.add(n)
                            .into_iter()
                            .map(|(from, branch)| Edge {
                                from,
                                branch,
                                input,
                                kind: kind.clone(),
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect();
                let id = self.push(Head::Operator(node.op.clone()), inputs, parallelism);
                let branch = self.branch(id, node.schema());
                vec![(id, branch)]
            }
        }
    }

    fn add_inputs(&mut self, node: &StreamNode) -> Stream {
        node.inputs.iter().flat_map(|n| self.add(n)).collect()
    }

    fn terminal(&mut self, stream: Stream, target: PlanTarget) {
        let (head, kind, parallelism) = match target {
            PlanTarget::Output => (Head::Output, EdgeKind::Single, NodeParallelism::One),
            PlanTarget::Sink(table) => (
                Head::Sink(table),
                EdgeKind::Forward,
                NodeParallelism::AsInputs,
            ),
        };
        let inputs = stream
            .into_iter()
            .map(|(from, branch)| Edge {
                from,
                branch,
                input: 0,
                kind: kind.clone(),
            })
            .collect();
        self.push(head, inputs, parallelism);
    }

    /// A source read by several statements reads the columns any of them needs; each
    /// branch first projects the ones its reader asked for.
    fn merge_source_projections(&mut self) {
        let sources: Vec<NodeId> = self.sources.values().copied().collect();
        for id in sources {
            let branches = self.nodes[id.0].branches.len();
            let wanted: Vec<Option<Vec<usize>>> = (0..branches)
                .map(|b| self.wanted.get(&(id, BranchId(b))).cloned().flatten())
                .collect();
            if branches < 2 {
                continue;
            }
            let Head::Source(source) = &mut self.nodes[id.0].head else {
                continue;
            };
            let table_schema = source.table.schema.clone();
            let merged: Option<Vec<usize>> = if wanted.iter().any(Option::is_none) {
                None
            } else {
                Some(
                    wanted
                        .iter()
                        .flatten()
                        .flatten()
                        .copied()
                        .collect::<BTreeSet<usize>>()
                        .into_iter()
                        .collect(),
                )
            };
            let read: Vec<usize> = merged
                .clone()
                .unwrap_or_else(|| (0..table_schema.fields().len()).collect());
            let merged_schema = Arc::new(Schema::new(
                read.iter()
                    .map(|&i| table_schema.field(i).clone())
                    .collect::<Vec<_>>(),
            ));
            source.projection = merged;
            source.schema = merged_schema.clone();
            for (b, wanted) in wanted.into_iter().enumerate() {
                let columns = wanted.unwrap_or_else(|| (0..table_schema.fields().len()).collect());
                if columns == read {
                    continue;
                }
                let projection: Vec<(PhysicalExprRef, String)> = columns
                    .iter()
                    .map(|c| {
                        let at = read.iter().position(|r| r == c).unwrap_or_default();
                        let name = table_schema.field(*c).name().clone();
                        (
                            Arc::new(Column::new(&name, at)) as PhysicalExprRef,
                            name.clone(),
                        )
                    })
                    .collect();
                let schema = Arc::new(Schema::new(
                    columns
                        .iter()
                        .map(|&c| table_schema.field(c).clone())
                        .collect::<Vec<_>>(),
                ));
                self.nodes[id.0].branches[b].chain.insert(
                    0,
                    StreamOp::Stateless(StatelessNode {
                        predicate: None,
                        projection: Some(projection),
                        schema,
                    }),
                );
            }
        }
    }

    /// Names every node by what it does and what feeds it, so the same statement names its
    /// nodes the same way in every run and at every parallelism.
    fn name_nodes(&mut self) {
        let mut taken: HashMap<String, usize> = HashMap::new();
        for i in 0..self.nodes.len() {
            let node = &self.nodes[i];
            let base = match &node.head {
                Head::Source(s) => format!("source-{}", s.table.name),
                Head::Sink(t) => format!("sink-{}", t.name),
                Head::Output => "output".to_string(),
                Head::Operator(op) => {
                    let mut text = op.info().describe();
                    for edge in &node.inputs {
                        let from = &self.nodes[edge.from.0];
                        let _ = write!(text, "|{}#{}", from.stable_id, edge.input);
                        for chained in &from.branches[edge.branch.0].chain {
                            let _ = write!(text, "|{}", chained.info().describe());
                        }
                    }
                    format!("{}-{:08x}", kind_name(op), crc32c::crc32c(text.as_bytes()))
                }
            };
            let n = taken.entry(base.clone()).or_default();
            *n += 1;
            self.nodes[i].stable_id = if *n == 1 { base } else { format!("{base}~{n}") };
        }
    }
}

/// How EXPLAIN shows a sink.
pub fn sink_description(table: &TableDef) -> String {
    let Some(o) = table.pulsar() else {
        let name = table.connector.name();
        let mut chars = name.chars();
        let capitalized: String = match chars.next() {
            Some(c) => c.to_uppercase().chain(chars).collect(),
            None => String::new(),
        };
        return format!("{capitalized}Sink: table={}", table.name);
    };
    let key = if o.key_fields.is_empty() {
        "none".to_string()
    } else {
        o.key_fields.join(";")
    };
    format!(
        "PulsarSink: table={} topic={} format={} key={} delivery={:?}",
        table.name,
        o.topics
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(";"),
        o.format.kind.name(),
        key,
        o.delivery_guarantee
    )
}

fn kind_name(op: &StreamOp) -> &'static str {
    match op {
        StreamOp::Source(_) => "source",
        StreamOp::Stateless(_) => "stateless",
        StreamOp::Limit(_) => "limit",
        StreamOp::WindowAssign(_) => "window-assign",
        StreamOp::WindowAggregate(_) => "window-aggregate",
        StreamOp::WindowTopN(_) => "window-top-n",
        StreamOp::Union(_) => "union",
        StreamOp::MatchRecognize(_) => "match-recognize",
        StreamOp::IntervalJoin(_) => "interval-join",
        StreamOp::WindowJoin(_) => "window-join",
    }
}

impl JobGraph {
    /// The graph of `plans`, each writing to its target.
    pub fn build(plans: &[(StreamPlan, PlanTarget)]) -> JobGraph {
        let mut builder = Builder::default();
        for (plan, target) in plans {
            let stream = builder.add(&plan.root);
            builder.terminal(stream, target.clone());
        }
        builder.merge_source_projections();
        builder.name_nodes();
        JobGraph {
            nodes: builder.nodes,
        }
    }

    /// The graph of one query, whose rows go back to the caller.
    pub fn of_query(plan: &StreamPlan) -> JobGraph {
        Self::build(&[(plan.clone(), PlanTarget::Output)])
    }

    /// The source nodes.
    pub fn sources(&self) -> impl Iterator<Item = (&GraphNode, &SourceNode)> {
        self.nodes.iter().filter_map(|n| match &n.head {
            Head::Source(s) => Some((n, s)),
            _ => None,
        })
    }

    /// Instances of each node: `default` for keyed operators, one for global ones, for a
    /// source at most `splits(source)` (`None`: unknown) and its table's `scan.parallelism`,
    /// and for a sink as many as its widest input.
    pub fn instances(
        &self,
        default: usize,
        mut splits: impl FnMut(&SourceNode) -> Option<usize>,
    ) -> Vec<usize> {
        let default = default.max(1);
        let mut out: Vec<usize> = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let n = match (&node.head, node.parallelism) {
                (Head::Source(s), _) => {
                    let most = s
                        .table
                        .connector
                        .scan_parallelism()
                        .map_or(default, |n| n.min(default));
                    splits(s).map_or(most, |n| n.clamp(1, most))
                }
                (_, NodeParallelism::One) => 1,
                (_, NodeParallelism::AsInputs) => {
                    node.inputs.iter().map(|e| out[e.from.0]).max().unwrap_or(1)
                }
                (_, NodeParallelism::Default | NodeParallelism::Splits) => default,
            };
            out.push(n);
        }
        out
    }

    /// The nodes reading `id`'s branches, with their edges.
    pub fn consumers_of(&self, id: NodeId) -> impl Iterator<Item = (&GraphNode, &Edge)> {
        self.nodes.iter().flat_map(move |n| {
            n.inputs
                .iter()
                .filter(move |e| e.from == id)
                .map(move |e| (n, e))
        })
    }

    /// The graph as an indented tree, consumers first: every node with its parallelism and
    /// every exchange with its kind. `sources` says how a source's instances are counted
    /// (`None`: known only once its topics' partitions are looked up).
    pub fn explain(
        &self,
        default: usize,
        max_parallelism: usize,
        mut splits: impl FnMut(&SourceNode) -> Option<usize>,
    ) -> String {
        let known: Vec<Option<usize>> = self
            .nodes
            .iter()
            .map(|n| match &n.head {
                Head::Source(s) => splits(s),
                _ => None,
            })
            .collect();
        let by_table: HashMap<&str, Option<usize>> = self
            .sources()
            .map(|(n, s)| (s.table.name.as_str(), known[n.id.0]))
            .collect();
        let instances = self.instances(default, |s| {
            by_table.get(s.table.name.as_str()).copied().flatten()
        });
        let mut out = String::new();
        let mut printed = vec![false; self.nodes.len()];
        for node in self
            .nodes
            .iter()
            .filter(|n| matches!(n.head, Head::Sink(_) | Head::Output))
        {
            Explainer {
                graph: self,
                instances: &instances,
                known: &known,
                max_parallelism,
                out: &mut out,
                printed: &mut printed,
            }
            .node(node, 0);
        }
        out
    }
}

struct Explainer<'a> {
    graph: &'a JobGraph,
    instances: &'a [usize],
    known: &'a [Option<usize>],
    max_parallelism: usize,
    out: &'a mut String,
    printed: &'a mut [bool],
}

impl Explainer<'_> {
    fn line(&mut self, depth: usize, text: &str) {
        for l in text.lines() {
            let _ = writeln!(self.out, "{}{l}", "  ".repeat(depth));
        }
    }

    fn parallelism(&self, node: &GraphNode) -> String {
        let n = self.instances[node.id.0];
        match (&node.head, node.parallelism) {
            (Head::Source(_), _) => match self.known[node.id.0] {
                Some(_) => format!("[parallelism {n}]"),
                None => format!("[parallelism up to {n}: one instance per partition at most]"),
            },
            (Head::Output, _) => "[parallelism 1]".into(),
            (_, NodeParallelism::One) => "[parallelism 1: no key to spread rows by]".into(),
            _ => format!("[parallelism {n}]"),
        }
    }

    fn node(&mut self, node: &GraphNode, depth: usize) {
        let head = match &node.head {
            Head::Source(s) => s.describe(),
            Head::Operator(op) => op.info().describe(),
            Head::Sink(table) => sink_description(table),
            Head::Output => "Result".to_string(),
        };
        let mut lines = head.lines();
        let first = lines.next().unwrap_or_default().to_string();
        let shared = matches!(node.head, Head::Source(_)) && self.printed[node.id.0];
        self.printed[node.id.0] = true;
        let suffix = if shared {
            " (the same reader as above: read once)".to_string()
        } else {
            String::new()
        };
        let _ = writeln!(
            self.out,
            "{}{first} {}{suffix}",
            "  ".repeat(depth),
            self.parallelism(node)
        );
        for rest in lines {
            self.line(depth, rest);
        }
        for edge in &node.inputs {
            let kind = match &edge.kind {
                EdgeKind::Forward => "forward".to_string(),
                EdgeKind::Hash(keys) => format!(
                    "hash [{}] into {} key groups",
                    keys.display.join(", "),
                    self.max_parallelism
                ),
                EdgeKind::Broadcast => "broadcast".into(),
                EdgeKind::Single => "single (every instance into one)".into(),
            };
            self.line(depth + 1, &format!("Exchange: {kind}"));
            let from = &self.graph.nodes[edge.from.0];
            let mut depth = depth + 2;
            for op in from.branches[edge.branch.0].chain.iter().rev() {
                let text = op.info().describe();
                let mut lines = text.lines();
                let first = lines.next().unwrap_or_default().to_string();
                self.line(depth, &format!("{first} [fused]"));
                for rest in lines {
                    self.line(depth, rest);
                }
                depth += 1;
            }
            self.node(from, depth);
        }
    }
}
