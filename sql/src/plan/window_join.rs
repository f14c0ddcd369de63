//! Window joins: a join of two window TVF outputs (or window aggregates) on equal
//! `window_start` and `window_end`, as Flink runs them: each window's rows of both sides are
//! joined once the watermark closes it. Recognised from DataFusion's logical join (semi and
//! anti joins come from `IN` / `EXISTS` / `NOT IN` / `NOT EXISTS` subqueries).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{Column, JoinType};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::expr::Alias;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Join, LogicalPlan, Operator};
use datafusion::physical_expr::expressions::Column as PhysicalColumn;

use super::join_condition::{compile_keys, compile_residual, on_text};
use super::{Distribution, KeySpec, PhysicalExprRef, PlanOp, StreamNode, StreamOp};
use crate::error::{Result, SqlError};
use crate::window::{WINDOW_END, WINDOW_START, WindowTvfNode};

/// What a window join emits for each closed window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowJoinKind {
    /// Matched pairs.
    Inner,
    /// Pairs, and left rows without a partner padded with NULLs.
    Left,
    /// Pairs, and right rows without a partner padded.
    Right,
    /// Pairs, and unmatched rows of both sides padded.
    Full,
    /// Left rows with a partner, each once (`IN`, `EXISTS`).
    Semi,
    /// Left rows without a partner (`NOT EXISTS`).
    Anti,
    /// `NOT IN`: left rows without a partner, none when the window's right side holds a
    /// NULL key, and left rows with a NULL key only when the right side is empty.
    NullAwareAnti,
}

impl WindowJoinKind {
    /// Whether unmatched rows of `side` are emitted padded.
    pub fn pads(self, side: usize) -> bool {
        match self {
            WindowJoinKind::Left => side == 0,
            WindowJoinKind::Right => side == 1,
            WindowJoinKind::Full => true,
            _ => false,
        }
    }

    /// Whether the output is the left rows only.
    pub fn left_only(self) -> bool {
        matches!(
            self,
            WindowJoinKind::Semi | WindowJoinKind::Anti | WindowJoinKind::NullAwareAnti
        )
    }
}

impl fmt::Display for WindowJoinKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WindowJoinKind::Inner => "INNER",
            WindowJoinKind::Left => "LEFT OUTER",
            WindowJoinKind::Right => "RIGHT OUTER",
            WindowJoinKind::Full => "FULL OUTER",
            WindowJoinKind::Semi => "SEMI",
            WindowJoinKind::Anti => "ANTI",
            WindowJoinKind::NullAwareAnti => "ANTI (NOT IN)",
        })
    }
}

/// A window join in the streaming plan: input 0 is the left side, input 1 the right.
#[derive(Debug, Clone)]
pub struct WindowJoinNode {
    /// What it emits.
    pub kind: WindowJoinKind,
    /// Equality keys besides the window, over the left input then the right (same types).
    pub keys: [Vec<PhysicalExprRef>; 2],
    /// How EXPLAIN shows the keys of each side.
    pub key_text: [Vec<String>; 2],
    /// `window_start` and `window_end` of each side (indices in its input).
    pub window: [(usize, usize); 2],
    /// The rest of the condition, over a pair (left columns then right columns).
    pub residual: Option<(PhysicalExprRef, String)>,
    /// The input schemas (left, right).
    pub inputs: [SchemaRef; 2],
    /// The output: left columns then right columns, or the left ones for semi/anti joins.
    pub schema: SchemaRef,
}

impl WindowJoinNode {
    /// The columns that decide the instance of a row of `side`: the window, then the keys
    /// (not the keys for `NOT IN`, which needs the window's every right row in one place).
    pub fn distribution_key(&self, side: usize) -> KeySpec {
        let schema = &self.inputs[side];
        let (start, end) = self.window[side];
        let mut exprs: Vec<PhysicalExprRef> = [start, end]
            .iter()
            .map(|&i| Arc::new(PhysicalColumn::new(schema.field(i).name(), i)) as PhysicalExprRef)
            .collect();
        let mut display = vec![WINDOW_START.to_string(), WINDOW_END.to_string()];
        if self.kind != WindowJoinKind::NullAwareAnti {
            exprs.extend(self.keys[side].iter().cloned());
            display.extend(self.key_text[side].iter().cloned());
        }
        KeySpec { exprs, display }
    }
}

impl PlanOp for WindowJoinNode {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn describe(&self) -> String {
        let on = on_text(&self.key_text);
        let mut line = format!(
            "WindowJoin: {} on=[window_start, window_end{}{}]",
            self.kind,
            if on.is_empty() { "" } else { ", " },
            on.join(", ")
        );
        if let Some((_, text)) = &self.residual {
            line.push_str(&format!(" filter={text}"));
        }
        line
    }

    /// By window and key: each window's partners meet in one instance.
    fn distribution(&self) -> Distribution {
        Distribution::KeyedInputs(vec![self.distribution_key(0), self.distribution_key(1)])
    }

    fn uses_event_time(&self) -> bool {
        true
    }
}

fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(Alias { expr, .. }) => unalias(expr),
        other => other,
    }
}

/// The output indices of `window_start` and `window_end` of the window TVF (or window
/// aggregate) that `plan` passes on, if it is one.
pub fn window_columns(plan: &LogicalPlan) -> Option<(usize, usize)> {
    let through = |input: &LogicalPlan, exprs: &[Expr]| -> Option<(usize, usize)> {
        let (start, end) = window_columns(input)?;
        let index_of = |wanted: usize| {
            exprs.iter().position(|e| match unalias(e) {
                Expr::Column(c) => input.schema().index_of_column(c).ok() == Some(wanted),
                _ => false,
            })
        };
        Some((index_of(start)?, index_of(end)?))
    };
    match plan {
        LogicalPlan::Extension(ext) => {
            let tvf = ext.node.as_any().downcast_ref::<WindowTvfNode>()?;
            let names: Vec<&String> = tvf.schema.fields().iter().map(|f| f.name()).collect();
            Some((
                names.iter().position(|n| *n == WINDOW_START)?,
                names.iter().position(|n| *n == WINDOW_END)?,
            ))
        }
        LogicalPlan::SubqueryAlias(a) => window_columns(&a.input),
        LogicalPlan::Filter(f) => window_columns(&f.input),
        LogicalPlan::Projection(p) => through(&p.input, &p.expr),
        // A window aggregate's output starts with its GROUP BY columns.
        LogicalPlan::Aggregate(a) => through(&a.input, &a.group_expr),
        _ => None,
    }
}

fn column_of(e: &Expr) -> Option<&Column> {
    match unalias(e) {
        Expr::Column(c) => Some(c),
        Expr::Cast(c) => column_of(&c.expr),
        _ => None,
    }
}

/// The equalities of a join (its `on` pairs, and `l.x = r.y` among its filter's
/// conjuncts), as (left, right) expressions, and the rest of the filter.
fn equalities(join: &Join) -> (Vec<(Expr, Expr)>, Vec<Expr>) {
    let mut pairs = join.on.clone();
    let mut rest = Vec::new();
    for e in join
        .filter
        .as_ref()
        .map(split_conjunction)
        .unwrap_or_default()
    {
        if let Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) = unalias(e)
            && let (Some(a), Some(b)) = (column_of(left), column_of(right))
        {
            let ls = join.left.schema();
            let rs = join.right.schema();
            if ls.has_column(a) && rs.has_column(b) {
                pairs.push((left.as_ref().clone(), right.as_ref().clone()));
                continue;
            }
            if ls.has_column(b) && rs.has_column(a) {
                pairs.push((right.as_ref().clone(), left.as_ref().clone()));
                continue;
            }
        }
        rest.push(e.clone());
    }
    (pairs, rest)
}

/// Whether an equality pair joins column `l` of the left input with column `r` of the right.
fn joins(join: &Join, pair: &(Expr, Expr), l: usize, r: usize) -> bool {
    let (Some(a), Some(b)) = (column_of(&pair.0), column_of(&pair.1)) else {
        return false;
    };
    join.left.schema().index_of_column(a).ok() == Some(l)
        && join.right.schema().index_of_column(b).ok() == Some(r)
}

/// The window columns of both sides, when `plan` is a window join: both inputs are windowed
/// and the condition equates their window starts and their window ends.
fn window_join_columns(join: &Join) -> Option<[(usize, usize); 2]> {
    let left = window_columns(&join.left)?;
    let right = window_columns(&join.right)?;
    let (pairs, _) = equalities(join);
    let has = |l: usize, r: usize| pairs.iter().any(|p| joins(join, p, l, r));
    (has(left.0, right.0) && has(left.1, right.1)).then_some([left, right])
}

/// Whether `plan` is a window join.
pub fn is_window_join(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Join(join) if window_join_columns(join).is_some())
}

/// Lowers a window join (see [`is_window_join`]); `None` when `join` is not one.
pub(super) fn lower_window_join(
    join: &Join,
    inputs: [StreamNode; 2],
    state: &SessionState,
) -> Result<Option<StreamNode>> {
    let Some(window) = window_join_columns(join) else {
        return Ok(None);
    };
    let kind = match (join.join_type, join.null_aware) {
        (JoinType::Inner, _) => WindowJoinKind::Inner,
        (JoinType::Left, _) => WindowJoinKind::Left,
        (JoinType::Right, _) => WindowJoinKind::Right,
        (JoinType::Full, _) => WindowJoinKind::Full,
        (JoinType::LeftSemi, _) => WindowJoinKind::Semi,
        (JoinType::LeftAnti, false) => WindowJoinKind::Anti,
        (JoinType::LeftAnti, true) => WindowJoinKind::NullAwareAnti,
        (other, _) => {
            return Err(SqlError::unsupported(
                format!(
                    "a {other} window join is not supported; write it as a LEFT SEMI or LEFT ANTI join (IN / EXISTS with the left table outside)"
                ),
                None,
            ));
        }
    };
    let (pairs, rest) = equalities(join);
    let left_schema = inputs[0].schema();
    let right_schema = inputs[1].schema();
    let key_pairs: Vec<(Expr, Expr)> = pairs
        .into_iter()
        .filter(|p| {
            !joins(join, p, window[0].0, window[1].0) && !joins(join, p, window[0].1, window[1].1)
        })
        .collect();
    let keys = compile_keys(&key_pairs, join, [&left_schema, &right_schema], state)?;
    if kind == WindowJoinKind::NullAwareAnti && !rest.is_empty() {
        return Err(SqlError::unsupported(
            "NOT IN with further conditions in a window join; write it as NOT EXISTS",
            None,
        ));
    }
    let residual = compile_residual(rest, join, state)?;
    let node = WindowJoinNode {
        kind,
        keys: keys.exprs,
        key_text: keys.text,
        window,
        residual,
        inputs: [left_schema, right_schema],
        schema: Arc::new(join.schema.as_arrow().clone()),
    };
    let [left, right] = inputs;
    Ok(Some(StreamNode {
        op: StreamOp::WindowJoin(node),
        inputs: vec![left, right],
    }))
}
