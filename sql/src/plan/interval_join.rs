//! Interval joins: a join of two unbounded inputs whose condition bounds one side's event
//! time by the other's (`o.ts BETWEEN c.ts - INTERVAL '5' MINUTE AND c.ts + INTERVAL '1'
//! MINUTE`), so that each row waits only as long as a partner can still come. Recognised
//! from DataFusion's logical join (its equality keys and the time bounds among its filter's
//! conjuncts), as Flink's planner does.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{JoinType, ScalarValue};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::expr::Alias;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Join, LogicalPlan, Operator};

use super::join_condition::{compile_keys, compile_residual, on_text};
use super::{Distribution, KeySpec, PhysicalExprRef, PlanOp, StreamNode, is_time_attribute};
use crate::error::{Result, SqlError};
use crate::window::Millis;

/// Which unmatched rows an interval join also emits, padded with NULLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntervalJoinKind {
    /// Only matched pairs.
    Inner,
    /// Also left rows without a partner.
    Left,
    /// Also right rows without a partner.
    Right,
    /// Also unmatched rows of both sides.
    Full,
}

impl IntervalJoinKind {
    /// Whether unmatched rows of `side` (0: left, 1: right) are emitted.
    pub fn pads(self, side: usize) -> bool {
        match self {
            IntervalJoinKind::Inner => false,
            IntervalJoinKind::Left => side == 0,
            IntervalJoinKind::Right => side == 1,
            IntervalJoinKind::Full => true,
        }
    }
}

impl fmt::Display for IntervalJoinKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IntervalJoinKind::Inner => "INNER",
            IntervalJoinKind::Left => "LEFT OUTER",
            IntervalJoinKind::Right => "RIGHT OUTER",
            IntervalJoinKind::Full => "FULL OUTER",
        })
    }
}

/// The time bounds of an interval join: `right.time - left.time` lies in `[lower, upper]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeBounds {
    /// The least difference (inclusive), in ms.
    pub lower: Millis,
    /// The greatest difference (inclusive), in ms.
    pub upper: Millis,
}

impl TimeBounds {
    /// How far behind its input watermark the join's output can be: a pair is emitted when
    /// its later row arrives, and the other row's time may be this much earlier (Flink's
    /// watermark delay of an interval join).
    pub fn output_delay(&self) -> Millis {
        self.upper.max(-self.lower).max(0)
    }
}

/// An interval join in the streaming plan: input 0 is the left side, input 1 the right.
#[derive(Debug, Clone)]
pub struct IntervalJoinNode {
    /// Which unmatched rows are emitted too.
    pub kind: IntervalJoinKind,
    /// Equality keys over the left input, then over the right (the same types).
    pub keys: [Vec<PhysicalExprRef>; 2],
    /// How EXPLAIN shows the keys of each side.
    pub key_text: [Vec<String>; 2],
    /// The event-time column of each side (index in its input).
    pub time: [usize; 2],
    /// The bounds on `right.time - left.time`.
    pub bounds: TimeBounds,
    /// The rest of the condition, over a pair (left columns then right columns).
    pub residual: Option<(PhysicalExprRef, String)>,
    /// The input schemas (left, right).
    pub inputs: [SchemaRef; 2],
    /// Left columns then right columns.
    pub schema: SchemaRef,
}

impl PlanOp for IntervalJoinNode {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn describe(&self) -> String {
        let on = on_text(&self.key_text);
        let mut line = format!(
            "IntervalJoin: {} on=[{}] time: {} - {} in [{} ms, {} ms]",
            self.kind,
            on.join(", "),
            self.inputs[1].field(self.time[1]).name(),
            self.inputs[0].field(self.time[0]).name(),
            self.bounds.lower,
            self.bounds.upper
        );
        if let Some((_, text)) = &self.residual {
            line.push_str(&format!(" filter={text}"));
        }
        line
    }

    /// Each side by its equality key, so that partners meet in one instance; without a
    /// key, one instance.
    fn distribution(&self) -> Distribution {
        if self.keys[0].is_empty() {
            return Distribution::Single;
        }
        Distribution::KeyedInputs(
            [0, 1]
                .map(|side| KeySpec {
                    exprs: self.keys[side].clone(),
                    display: self.key_text[side].clone(),
                })
                .to_vec(),
        )
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

fn interval_ms(v: &ScalarValue) -> Option<Millis> {
    match v {
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
            Some(i64::from(v.days) * 86_400_000 + v.nanoseconds.div_euclid(1_000_000))
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            Some(i64::from(v.days) * 86_400_000 + i64::from(v.milliseconds))
        }
        _ => None,
    }
}

/// A time operand: a column plus a constant offset (`ts`, `ts + INTERVAL ..`, `ts - ..`).
fn time_operand(e: &Expr) -> Option<(&datafusion::common::Column, Millis)> {
    match unalias(e) {
        Expr::Column(c) => Some((c, 0)),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (c, base) = time_operand(left)?;
            let Expr::Literal(v, _) = unalias(right) else {
                return None;
            };
            let ms = interval_ms(v)?;
            match op {
                Operator::Plus => Some((c, base + ms)),
                Operator::Minus => Some((c, base - ms)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The side (0: left, 1: right) and input index of a column of the join.
fn side_of(join: &Join, c: &datafusion::common::Column) -> Option<(usize, usize)> {
    if let Ok(i) = join.left.schema().index_of_column(c) {
        return Some((0, i));
    }
    join.right.schema().index_of_column(c).ok().map(|i| (1, i))
}

/// A comparison between a left and a right time operand, as a bound on
/// `right.time - left.time`: the two columns, and the bound.
struct TimeCondition {
    columns: [usize; 2],
    lower: Option<Millis>,
    upper: Option<Millis>,
}

fn time_condition(join: &Join, e: &Expr) -> Option<TimeCondition> {
    let (a, op, b) = match unalias(e) {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => (left.as_ref(), *op, right.as_ref()),
        _ => return None,
    };
    let (ca, oa) = time_operand(a)?;
    let (cb, ob) = time_operand(b)?;
    let (sa, ia) = side_of(join, ca)?;
    let (sb, ib) = side_of(join, cb)?;
    if sa == sb {
        return None;
    }
    // Written as r + x OP l + y, that is r - l OP y - x.
    let (op, c, columns) = if sa == 1 {
        (op, ob - oa, [ib, ia])
    } else {
        // l + x OP r + y  ⇔  r - l OP' x - y, with OP mirrored.
        let mirrored = match op {
            Operator::Lt => Operator::Gt,
            Operator::LtEq => Operator::GtEq,
            Operator::Gt => Operator::Lt,
            Operator::GtEq => Operator::LtEq,
            other => other,
        };
        (mirrored, oa - ob, [ia, ib])
    };
    let (lower, upper) = match op {
        Operator::GtEq => (Some(c), None),
        Operator::Gt => (Some(c + 1), None),
        Operator::LtEq => (None, Some(c)),
        Operator::Lt => (None, Some(c - 1)),
        Operator::Eq => (Some(c), Some(c)),
        _ => return None,
    };
    Some(TimeCondition {
        columns,
        lower,
        upper,
    })
}

/// `e` with BETWEEN taken apart into its two comparisons.
fn conjuncts(filter: Option<&Expr>) -> Vec<Expr> {
    let mut out = Vec::new();
    for e in filter.map(split_conjunction).unwrap_or_default() {
        match unalias(e) {
            Expr::Between(b) if !b.negated => {
                out.push(b.expr.as_ref().clone().gt_eq(b.low.as_ref().clone()));
                out.push(b.expr.as_ref().clone().lt_eq(b.high.as_ref().clone()));
            }
            other => out.push(other.clone()),
        }
    }
    out
}

fn refuse(message: String) -> SqlError {
    SqlError::unsupported(message, None)
}

const FORMS: &str = "an interval join (ON l.k = r.k AND r.ts BETWEEN l.ts - INTERVAL '..' AND l.ts + INTERVAL '..', on both tables' event-time columns), or a window join (of two window TVFs ON l.window_start = r.window_start AND l.window_end = r.window_end AND l.k = r.k)";

/// Lowers a join of two unbounded inputs, which must be an interval join.
pub(super) fn lower_interval_join(
    join: &Join,
    inputs: [StreamNode; 2],
    state: &SessionState,
) -> Result<StreamNode> {
    let kind = match join.join_type {
        JoinType::Inner => IntervalJoinKind::Inner,
        JoinType::Left => IntervalJoinKind::Left,
        JoinType::Right => IntervalJoinKind::Right,
        JoinType::Full => IntervalJoinKind::Full,
        other => {
            return Err(refuse(format!(
                "a {other} join over unbounded tables is not supported yet; {FORMS} runs as INNER, LEFT, RIGHT or FULL OUTER (a window join also as semi or anti join: IN, EXISTS, NOT IN, NOT EXISTS)"
            )));
        }
    };
    // The time columns: the first comparison between event-time attributes of both sides.
    let all = conjuncts(join.filter.as_ref());
    let mut time: Option<[usize; 2]> = None;
    let mut lower: Option<Millis> = None;
    let mut upper: Option<Millis> = None;
    let mut residual = Vec::new();
    for e in all {
        let condition = time_condition(join, &e).filter(|t| {
            is_time_attribute(&join.left, t.columns[0])
                && is_time_attribute(&join.right, t.columns[1])
                && time.is_none_or(|c| c == t.columns)
        });
        match condition {
            Some(t) => {
                time = Some(t.columns);
                if let Some(l) = t.lower {
                    lower = Some(lower.map_or(l, |x: Millis| x.max(l)));
                }
                if let Some(u) = t.upper {
                    upper = Some(upper.map_or(u, |x: Millis| x.min(u)));
                }
            }
            None => residual.push(e),
        }
    }
    let (Some(time), Some(lower), Some(upper)) = (time, lower, upper) else {
        return Err(refuse(format!(
            "a join over unbounded tables must be {FORMS}; a regular join (without time bounds) would keep every row forever"
        )));
    };
    if lower > upper {
        return Err(refuse(format!(
            "the interval join's time bounds leave no room: right time - left time must lie in [{lower} ms, {upper} ms]"
        )));
    }
    let left_schema = inputs[0].schema();
    let right_schema = inputs[1].schema();
    let keys = compile_keys(&join.on, join, [&left_schema, &right_schema], state)?;
    let residual = compile_residual(residual, join, state)?;
    let node = IntervalJoinNode {
        kind,
        keys: keys.exprs,
        key_text: keys.text,
        time,
        bounds: TimeBounds { lower, upper },
        residual,
        inputs: [left_schema, right_schema],
        schema: Arc::new(join.schema.as_arrow().clone()),
    };
    let [left, right] = inputs;
    Ok(StreamNode {
        op: super::StreamOp::IntervalJoin(node),
        inputs: vec![left, right],
    })
}

/// Whether `plan` is an interval join: a join whose condition compares the event times of
/// its two sides (it then runs in event time, on the streaming runtime, even over bounded
/// input, as windows do).
pub fn is_interval_join(plan: &LogicalPlan) -> bool {
    let LogicalPlan::Join(join) = plan else {
        return false;
    };
    conjuncts(join.filter.as_ref()).iter().any(|e| {
        time_condition(join, e).is_some_and(|t| {
            is_time_attribute(&join.left, t.columns[0])
                && is_time_attribute(&join.right, t.columns[1])
        })
    })
}
