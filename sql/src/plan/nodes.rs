//! The payload of each kind of plan node, and what it tells the graph builder and EXPLAIN.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Column;

use super::{Distribution, KeySpec, PhysicalExprRef, PlanOp};
use crate::catalog::TableDef;
use crate::options::Connector;
use crate::window::WindowSpec;

/// Reads a table's topics (or files, or memory log).
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

impl PlanOp for SourceNode {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn describe(&self) -> String {
        let columns: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        let mut line = match self.table.pulsar() {
            Some(o) => format!(
                "PulsarSource: table={} topics=[{}] format={} subscription={} ({:?}) start={:?} stop={:?} columns=[{}]",
                self.table.name,
                o.topics
                    .iter()
                    .map(|t| t.to_string())
                    .chain(o.topic_patterns.iter().map(|p| format!("pattern {p}")))
                    .collect::<Vec<_>>()
                    .join(", "),
                o.format.kind.name(),
                o.subscription_name.as_deref().unwrap_or("<temporary>"),
                o.subscription_type,
                o.start,
                o.stop,
                columns.join(", ")
            ),
            None => {
                let (kind, detail) = match &self.table.connector {
                    Connector::Memory(m) => (
                        "MemorySource",
                        format!("storage={} partitions={}", m.name, m.partitions),
                    ),
                    Connector::Custom(c) => ("CustomSource", format!("connector={}", c.connector)),
                    _ => (
                        "FileSource",
                        format!("format={}", self.table.format().kind.name()),
                    ),
                };
                format!(
                    "{kind}: table={} {detail} columns=[{}]",
                    self.table.name,
                    columns.join(", ")
                )
            }
        };
        if let Some(w) = &self.table.watermark {
            line.push_str(&format!("\n  watermark: FOR {} AS {}", w.column, w.expr));
        }
        line
    }

    fn distribution(&self) -> Distribution {
        Distribution::Source
    }
}

/// Filter then projection, per batch.
#[derive(Debug, Clone)]
pub struct StatelessNode {
    /// Rows where this is not true are dropped.
    pub predicate: Option<(PhysicalExprRef, String)>,
    /// Output columns computed from the (filtered) input, with their display text.
    pub projection: Option<Vec<(PhysicalExprRef, String)>>,
    /// Output schema.
    pub schema: SchemaRef,
}

impl PlanOp for StatelessNode {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some((_, text)) = &self.predicate {
            parts.push(format!("filter={text}"));
        }
        if let Some(columns) = &self.projection {
            parts.push(format!(
                "project=[{}]",
                columns
                    .iter()
                    .map(|(_, t)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        format!("Stateless: {}", parts.join(" "))
    }

    fn distribution(&self) -> Distribution {
        Distribution::Fused
    }
}

/// `OFFSET skip LIMIT fetch`.
#[derive(Debug, Clone)]
pub struct LimitNode {
    /// Rows to skip.
    pub skip: usize,
    /// Rows to return after skipping; `None` for all.
    pub fetch: Option<usize>,
    /// Output schema (the input's).
    pub schema: SchemaRef,
}

impl PlanOp for LimitNode {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn describe(&self) -> String {
        let fetch = self
            .fetch
            .map(|f| f.to_string())
            .unwrap_or_else(|| "all".into());
        format!("Limit: skip={} fetch={fetch}", self.skip)
    }

    fn distribution(&self) -> Distribution {
        Distribution::Single
    }
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
    /// The windows.
    pub spec: WindowSpec,
    /// Index of the event-time column in the input.
    pub time_index: usize,
    /// Name of the event-time column.
    pub time_column: String,
    /// Expansion or slices.
    pub mode: AssignMode,
    /// Output schema.
    pub schema: SchemaRef,
}

impl PlanOp for WindowAssignNode {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn describe(&self) -> String {
        let mode = match self.mode {
            AssignMode::Expand => "rows per window",
            AssignMode::Slices => "slices",
        };
        format!(
            "WindowAssign: {} on {} ({mode})",
            self.spec, self.time_column
        )
    }

    fn distribution(&self) -> Distribution {
        Distribution::Fused
    }

    fn uses_event_time(&self) -> bool {
        true
    }
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
    /// A key expression over the input, with its display text.
    Key(PhysicalExprRef, String),
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
    /// Input schema: rows with their slice in `window_start` / `window_end`.
    pub input_schema: SchemaRef,
    /// Output schema.
    pub schema: SchemaRef,
    /// For EXPLAIN.
    pub display: String,
}

impl WindowAggregateNode {
    /// The key expressions (GROUP BY items other than the window columns).
    pub fn keys(&self) -> Vec<PhysicalExprRef> {
        self.group
            .iter()
            .filter_map(|g| match g {
                GroupItem::Key(k, _) => Some(k.clone()),
                _ => None,
            })
            .collect()
    }
}

impl PlanOp for WindowAggregateNode {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn describe(&self) -> String {
        format!("WindowAggregate: {} {}", self.spec, self.display)
    }

    /// By the GROUP BY keys: every slice of a key's windows is in one instance. Without
    /// keys (or for a SESSION without PARTITION BY) all rows meet in one instance.
    fn distribution(&self) -> Distribution {
        let (exprs, display): (Vec<_>, Vec<_>) = self
            .group
            .iter()
            .filter_map(|g| match g {
                GroupItem::Key(k, text) => Some((k.clone(), text.clone())),
                _ => None,
            })
            .unzip();
        if exprs.is_empty() {
            return Distribution::Single;
        }
        Distribution::Keyed(KeySpec { exprs, display })
    }

    fn uses_event_time(&self) -> bool {
        true
    }
}

/// `ROW_NUMBER() OVER (PARTITION BY window_start, window_end ... ORDER BY ...) <= N`.
#[derive(Debug, Clone)]
pub struct WindowTopNNode {
    /// Index of `window_end` in the input: rows are ranked once the window has fired.
    pub window_end: usize,
    /// PARTITION BY columns (input indices).
    pub partition: Vec<usize>,
    /// ORDER BY: input index, descending, nulls first.
    pub order: Vec<(usize, bool, bool)>,
    /// Rows kept per partition.
    pub limit: usize,
    /// Input schema: window aggregate results.
    pub input_schema: SchemaRef,
    /// Output schema: the input's columns and the row number.
    pub schema: SchemaRef,
}

impl PlanOp for WindowTopNNode {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn describe(&self) -> String {
        let name = |i: usize| self.input_schema.field(i).name().clone();
        let order: Vec<String> = self
            .order
            .iter()
            .map(|(i, desc, _)| format!("{}{}", name(*i), if *desc { " DESC" } else { "" }))
            .collect();
        format!(
            "WindowTopN: limit={} partition=[{}] order=[{}]",
            self.limit,
            self.partition
                .iter()
                .map(|i| name(*i))
                .collect::<Vec<_>>()
                .join(", "),
            order.join(", ")
        )
    }

    /// By the PARTITION BY columns (the window's bounds among them): a ranking is in one
    /// instance.
    fn distribution(&self) -> Distribution {
        let (exprs, display) = self
            .partition
            .iter()
            .map(|&i| {
                let name = self.input_schema.field(i).name().clone();
                (
                    Arc::new(Column::new(&name, i)) as PhysicalExprRef,
                    name.clone(),
                )
            })
            .unzip();
        Distribution::Keyed(KeySpec { exprs, display })
    }

    fn uses_event_time(&self) -> bool {
        true
    }
}

/// `UNION ALL` of its inputs, each already projected to `schema`.
#[derive(Debug, Clone)]
pub struct UnionNode {
    /// Output schema.
    pub schema: SchemaRef,
}

impl PlanOp for UnionNode {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn describe(&self) -> String {
        "Union".into()
    }

    fn distribution(&self) -> Distribution {
        Distribution::Merge
    }
}

/// A `DEFINE` or `MEASURES` expression compiled over its slots.
#[derive(Debug, Clone)]
pub struct PhysicalSlotExpr {
    /// What each slot column holds.
    pub slots: Vec<crate::match_recognize::Slot>,
    /// The slot columns.
    pub schema: SchemaRef,
    /// The expression over them.
    pub expr: PhysicalExprRef,
    /// As written.
    pub text: String,
}

/// A variable's condition, compiled (see [`crate::match_recognize::Define`]).
#[derive(Debug, Clone, Default)]
pub struct PhysicalDefine {
    /// Over the current row alone.
    pub row: Option<PhysicalSlotExpr>,
    /// Over the match so far.
    pub matched: Option<PhysicalSlotExpr>,
}

/// `MATCH_RECOGNIZE`: one row per match, per partition, in event time.
#[derive(Debug, Clone)]
pub struct MatchRecognizeNode {
    /// The clause.
    pub spec: Arc<crate::match_recognize::MatchSpec>,
    /// Per variable.
    pub defines: Vec<PhysicalDefine>,
    /// MEASURES, in output order (after the partition columns).
    pub measures: Vec<PhysicalSlotExpr>,
    /// Input schema.
    pub input_schema: SchemaRef,
    /// Output schema.
    pub schema: SchemaRef,
}

impl MatchRecognizeNode {
    /// Why the state may grow without bound, if it may: an unbounded repetition without
    /// WITHIN keeps every row it takes until the match ends.
    pub fn unbounded_state(&self) -> Option<String> {
        if self.spec.within.is_some() {
            return None;
        }
        let p = &self.spec.pattern;
        p.elements.iter().find(|e| e.unbounded()).map(|e| {
            format!(
                "without WITHIN, a partial match of {} can hold rows without bound; add WITHIN INTERVAL '...' to the PATTERN",
                p.name(e.var)
            )
        })
    }
}

impl PlanOp for MatchRecognizeNode {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn describe(&self) -> String {
        let mut line = format!("MatchRecognize: {}", self.spec.summary());
        let measures: Vec<String> = self
            .spec
            .measures
            .iter()
            .map(|(name, e)| format!("{} AS {name}", e.text))
            .collect();
        if !measures.is_empty() {
            line.push_str(&format!(" measures=[{}]", measures.join(", ")));
        }
        if let Some(warning) = self.unbounded_state() {
            line.push_str(&format!("\n  warning: {warning}"));
        }
        line
    }

    /// By the PARTITION BY columns: a partition's rows meet in one instance.
    fn distribution(&self) -> Distribution {
        if self.spec.partition.is_empty() {
            return Distribution::Single;
        }
        let (exprs, display) = self
            .spec
            .partition
            .iter()
            .map(|&i| {
                let name = self.input_schema.field(i).name().clone();
                (
                    Arc::new(Column::new(&name, i)) as PhysicalExprRef,
                    name.clone(),
                )
            })
            .unzip();
        Distribution::Keyed(KeySpec { exprs, display })
    }

    fn uses_event_time(&self) -> bool {
        true
    }
}
