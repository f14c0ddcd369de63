//! `DEFINE` and `MEASURES` expressions. What DataFusion cannot resolve in them (a
//! variable's column, `PREV`, `FIRST`/`LAST`, an aggregate over a variable's rows,
//! `MATCH_ROWTIME()`) is replaced by a *slot*: a placeholder column whose value the pattern
//! operator computes from the match; DataFusion plans the rest over the slots.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::logical_expr::Expr;
use datafusion::sql::sqlparser::ast::{
    self, BinaryOperator, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Value, VisitMut,
    VisitorMut,
};

use super::pattern::{Pattern, VarId};
use crate::error::{Location, Result, SqlError};
use crate::parser::ident_name;

/// Which rows of a match an aggregate or `FIRST`/`LAST` looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rows {
    /// Every row of the match (an unqualified column).
    All,
    /// The rows mapped to one variable.
    Var(VarId),
}

/// Which row a value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowNav {
    /// The row being classified (in `DEFINE`).
    Current,
    /// `FIRST(v.col, n)`: the `n`-th row after the first of `v`.
    First(Rows, usize),
    /// `LAST(v.col, n)`, or `v.col`: the `n`-th row before the last of `v`.
    Last(Rows, usize),
}

/// An aggregate over rows of a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchAggregate {
    /// `COUNT`.
    Count,
    /// `SUM`.
    Sum,
    /// `AVG` (of integers an integer, truncated, as Flink computes it).
    Avg,
    /// `MIN`.
    Min,
    /// `MAX`.
    Max,
}

/// What a slot holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// One column of one row.
    Value {
        /// The row.
        row: RowNav,
        /// The column's index in the input.
        column: usize,
    },
    /// An aggregate over some rows (`column` `None`: `COUNT(*)`).
    Aggregate {
        /// The function.
        function: MatchAggregate,
        /// Over which rows.
        rows: Rows,
        /// Its argument column in the input.
        column: Option<usize>,
    },
    /// `MATCH_ROWTIME()`: the event time of the match's last row.
    MatchRowtime,
}

/// An expression over slots: what the operator fills, and DataFusion's expression over them.
#[derive(Clone, Debug)]
pub struct SlotExpr {
    /// The slots, in the order of the slot schema's columns.
    pub slots: Vec<Slot>,
    /// One column per slot.
    pub schema: DFSchemaRef,
    /// The expression over the slot schema.
    pub expr: Expr,
    /// As written, for EXPLAIN.
    pub text: String,
}

impl SlotExpr {
    /// Whether this is `MATCH_ROWTIME()` itself (an event-time attribute of the output).
    pub fn is_match_rowtime(&self) -> bool {
        let mut e = &self.expr;
        while let Expr::Alias(a) = e {
            e = &a.expr;
        }
        matches!(self.slots.as_slice(), [Slot::MatchRowtime]) && matches!(e, Expr::Column(_))
    }

    /// Whether every slot is a column of the current row (the expression can be computed
    /// for a whole batch of rows at once, before any matching).
    pub fn on_current_row_only(&self) -> bool {
        self.slots.iter().all(|s| {
            matches!(
                s,
                Slot::Value {
                    row: RowNav::Current,
                    ..
                }
            )
        })
    }
}

/// Where an expression stands, which decides what a bare column means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clause {
    /// In the `DEFINE` of this variable: a bare column (or this variable's) is the row
    /// being classified.
    Define(VarId),
    /// In `MEASURES`: a bare column is the match's last row's.
    Measures,
}

/// What slot expressions are compiled against.
pub struct SlotContext<'a> {
    /// The pattern.
    pub pattern: &'a Pattern,
    /// The input's columns.
    pub input: &'a Schema,
    /// The event-time column's index in the input.
    pub time_index: usize,
}

/// The conjuncts of `e` (its top-level `AND`s taken apart).
pub fn conjuncts(e: ast::Expr) -> Vec<ast::Expr> {
    match e {
        ast::Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut out = conjuncts(*left);
            out.extend(conjuncts(*right));
            out
        }
        ast::Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                ast::Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(*inner)
        }
        other => vec![other],
    }
}

/// `e` with its slots taken out: the rewritten expression and the slots.
pub fn extract_slots(
    mut e: ast::Expr,
    clause: Clause,
    ctx: &SlotContext<'_>,
) -> Result<(ast::Expr, Vec<Slot>, Vec<DataType>)> {
    let mut rewriter = Rewriter {
        clause,
        ctx,
        slots: Vec::new(),
        types: Vec::new(),
    };
    match e.visit(&mut rewriter) {
        ControlFlow::Break(err) => Err(err),
        ControlFlow::Continue(()) => Ok((e, rewriter.slots, rewriter.types)),
    }
}

/// The schema of slot columns of these types.
pub fn slot_schema(types: &[DataType]) -> Result<DFSchemaRef> {
    let fields: Vec<Field> = types
        .iter()
        .enumerate()
        .map(|(i, t)| Field::new(slot_name(i), t.clone(), true))
        .collect();
    Ok(Arc::new(DFSchema::try_from(Schema::new(fields))?))
}

/// The placeholder column of slot `i`.
pub fn slot_name(i: usize) -> String {
    format!("__mr_slot_{i}")
}

struct Rewriter<'a, 'b> {
    clause: Clause,
    ctx: &'a SlotContext<'b>,
    slots: Vec<Slot>,
    types: Vec<DataType>,
}

fn at(ident: &Ident) -> Option<Location> {
    Location::from_parser(ident.span.start)
}

impl Rewriter<'_, '_> {
    fn slot(&mut self, slot: Slot, data_type: DataType) -> ast::Expr {
        let i = match self.slots.iter().position(|s| *s == slot) {
            Some(i) => i,
            None => {
                self.slots.push(slot);
                self.types.push(data_type);
                self.slots.len() - 1
            }
        };
        ast::Expr::Identifier(Ident::new(slot_name(i)))
    }

    fn column(&self, ident: &Ident) -> std::result::Result<usize, SqlError> {
        let name = ident_name(ident);
        self.ctx
            .input
            .fields()
            .iter()
            .position(|f| f.name() == &name)
            .ok_or_else(|| {
                SqlError::unsupported(
                    format!(
                        "'{}' is not a column of the MATCH_RECOGNIZE input",
                        ident.value
                    ),
                    at(ident),
                )
            })
    }

    fn var(&self, ident: &Ident) -> Option<VarId> {
        self.ctx.pattern.var(&ident_name(ident))
    }

    /// A column reference (`col`, `v.col`, `t.col`): the variable it names (`None`: all rows
    /// or, in DEFINE, the current row) and the column.
    fn reference(
        &self,
        e: &ast::Expr,
    ) -> std::result::Result<Option<(Option<VarId>, usize, Ident)>, SqlError> {
        match e {
            ast::Expr::Identifier(ident) => Ok(Some((None, self.column(ident)?, ident.clone()))),
            ast::Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                let column = self.column(&parts[1])?;
                Ok(Some((self.var(&parts[0]), column, parts[1].clone())))
            }
            _ => Ok(None),
        }
    }

    /// The value slot of a plain column reference where it stands.
    fn plain(&self, var: Option<VarId>, column: usize) -> Slot {
        let row = match (self.clause, var) {
            (Clause::Define(defined), Some(v)) if v != defined => RowNav::Last(Rows::Var(v), 0),
            (Clause::Define(_), _) => RowNav::Current,
            (Clause::Measures, Some(v)) => RowNav::Last(Rows::Var(v), 0),
            (Clause::Measures, None) => RowNav::Last(Rows::All, 0),
        };
        Slot::Value { row, column }
    }

    fn function(&mut self, f: &ast::Function) -> std::result::Result<Option<ast::Expr>, SqlError> {
        let Some(name_ident) = f.name.0.last().and_then(|p| p.as_ident()) else {
            return Ok(None);
        };
        let name = name_ident.value.to_ascii_uppercase();
        let location = at(name_ident);
        let args: Vec<&FunctionArgExpr> = match &f.args {
            FunctionArguments::List(list) => list
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(e) => e,
                    FunctionArg::Named { arg, .. } | FunctionArg::ExprNamed { arg, .. } => arg,
                })
                .collect(),
            _ => Vec::new(),
        };
        let distinct = matches!(&f.args, FunctionArguments::List(l) if l.duplicate_treatment == Some(ast::DuplicateTreatment::Distinct));
        let unsupported = |what: String| SqlError::unsupported(what, location);
        match name.as_str() {
            "MATCH_ROWTIME" => {
                if !args.is_empty() {
                    return Err(unsupported("MATCH_ROWTIME takes no argument".into()));
                }
                if let Clause::Define(_) = self.clause {
                    return Err(unsupported("MATCH_ROWTIME() in DEFINE (it is a measure)".into()));
                }
                Ok(Some(self.slot(
                    Slot::MatchRowtime,
                    DataType::Timestamp(TimeUnit::Millisecond, None),
                )))
            }
            "PREV" | "FIRST" | "LAST" => {
                let (var, column, _) = match args.first() {
                    Some(FunctionArgExpr::Expr(e)) => self.reference(e)?,
                    _ => None,
                }
                .ok_or_else(|| {
                    unsupported(format!(
                        "{name} takes a column, optionally of a pattern variable (v.col), and an offset"
                    ))
                })?;
                let offset = match args.get(1) {
                    None => if name == "PREV" { 1 } else { 0 },
                    Some(FunctionArgExpr::Expr(ast::Expr::Value(v))) => match &v.value {
                        Value::Number(n, _) => n.parse::<usize>().map_err(|_| {
                            unsupported(format!("the offset of {name} must be a non-negative integer, not {n}"))
                        })?,
                        other => {
                            return Err(unsupported(format!(
                                "the offset of {name} must be a non-negative integer, not {other}"
                            )));
                        }
                    },
                    Some(other) => {
                        return Err(unsupported(format!(
                            "the offset of {name} must be a non-negative integer literal, not {other}"
                        )));
                    }
                };
                if args.len() > 2 {
                    return Err(unsupported(format!("{name} takes at most two arguments")));
                }
                let rows = var.map(Rows::Var).unwrap_or(Rows::All);
                let row = match name.as_str() {
                    "PREV" => match self.clause {
                        Clause::Measures => {
                            return Err(unsupported(
                                "PREV in MEASURES (as in Flink; use LAST(v.col, n))".into(),
                            ));
                        }
                        // As Flink reads it: the n-th row before the current one among the
                        // match's rows (of `w`, for PREV(w.col) of another variable w).
                        Clause::Define(defined) if var == Some(defined) => {
                            if offset > 0 {
                                return Err(unsupported(format!(
                                    "PREV({}.{}, {offset}) in the DEFINE of {}: physical offsets within the partition are not supported (as in Flink); LAST({}.{}, {offset}) is the {offset}-th earlier row of {}",
                                    self.ctx.pattern.name(defined),
                                    self.ctx.input.field(column).name(),
                                    self.ctx.pattern.name(defined),
                                    self.ctx.pattern.name(defined),
                                    self.ctx.input.field(column).name(),
                                    self.ctx.pattern.name(defined),
                                )));
                            }
                            RowNav::Current
                        }
                        Clause::Define(_) => RowNav::Last(rows, offset),
                    },
                    "FIRST" => RowNav::First(rows, offset),
                    _ => RowNav::Last(rows, offset),
                };
                let data_type = self.ctx.input.field(column).data_type().clone();
                Ok(Some(self.slot(Slot::Value { row, column }, data_type)))
            }
            "NEXT" => Err(unsupported(
                "NEXT in MATCH_RECOGNIZE (Flink does not run it either; rows after the current one are not known yet)".into(),
            )),
            "CLASSIFIER" | "MATCH_NUMBER" | "MATCH_PROCTIME" => Err(unsupported(format!(
                "{name}() in MATCH_RECOGNIZE is not supported"
            ))),
            "COUNT" | "SUM" | "AVG" | "MIN" | "MAX" => {
                if distinct {
                    return Err(unsupported(format!("{name}(DISTINCT ...) in MATCH_RECOGNIZE")));
                }
                if f.filter.is_some() || f.over.is_some() {
                    return Err(unsupported(format!(
                        "{name} with FILTER or OVER in MATCH_RECOGNIZE"
                    )));
                }
                let function = match name.as_str() {
                    "COUNT" => MatchAggregate::Count,
                    "SUM" => MatchAggregate::Sum,
                    "AVG" => MatchAggregate::Avg,
                    "MIN" => MatchAggregate::Min,
                    _ => MatchAggregate::Max,
                };
                let (rows, column) = match args.as_slice() {
                    [FunctionArgExpr::Wildcard] if function == MatchAggregate::Count => {
                        (Rows::All, None)
                    }
                    [FunctionArgExpr::QualifiedWildcard(obj)] if function == MatchAggregate::Count => {
                        let var = obj
                            .0
                            .last()
                            .and_then(|p| p.as_ident())
                            .and_then(|i| self.var(i))
                            .ok_or_else(|| {
                                unsupported(format!("{obj}.* names no pattern variable"))
                            })?;
                        (Rows::Var(var), None)
                    }
                    [FunctionArgExpr::Expr(e)] => match self.reference(e)? {
                        Some((var, column, _)) => {
                            (var.map(Rows::Var).unwrap_or(Rows::All), Some(column))
                        }
                        None => {
                            return Err(unsupported(format!(
                                "{name} over an expression in MATCH_RECOGNIZE (aggregate a column, v.col)"
                            )));
                        }
                    },
                    _ => return Err(unsupported(format!("{name} takes one column"))),
                };
                let input = column.map(|c| self.ctx.input.field(c).data_type().clone());
                let data_type = aggregate_type(function, input.as_ref())
                    .ok_or_else(|| {
                        unsupported(format!(
                            "{name} of {} in MATCH_RECOGNIZE",
                            input.map(|t| t.to_string()).unwrap_or_default()
                        ))
                    })?;
                Ok(Some(self.slot(
                    Slot::Aggregate {
                        function,
                        rows,
                        column,
                    },
                    data_type,
                )))
            }
            _ => Ok(None),
        }
    }
}

/// The type of an aggregate over a column of type `input` (`None`: `COUNT(*)`), as Flink
/// types it; `None` when it is not supported.
pub fn aggregate_type(function: MatchAggregate, input: Option<&DataType>) -> Option<DataType> {
    use DataType::*;
    match function {
        MatchAggregate::Count => Some(Int64),
        MatchAggregate::Min | MatchAggregate::Max => input.cloned(),
        MatchAggregate::Sum => match input? {
            Int8 | Int16 | Int32 | Int64 => Some(Int64),
            UInt8 | UInt16 | UInt32 | UInt64 => Some(UInt64),
            Float32 | Float64 => Some(Float64),
            _ => None,
        },
        MatchAggregate::Avg => match input? {
            t @ (Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64) => {
                Some(t.clone())
            }
            Float32 | Float64 => Some(Float64),
            _ => None,
        },
    }
}

impl VisitorMut for Rewriter<'_, '_> {
    type Break = SqlError;

    fn pre_visit_expr(&mut self, e: &mut ast::Expr) -> ControlFlow<SqlError> {
        let replaced = match &*e {
            ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_) => {
                match self.reference(e) {
                    Ok(Some((var, column, _))) => {
                        let data_type = self.ctx.input.field(column).data_type().clone();
                        Some(self.slot(self.plain(var, column), data_type))
                    }
                    Ok(None) => None,
                    Err(err) => return ControlFlow::Break(err),
                }
            }
            ast::Expr::Function(f) => match self.function(f) {
                Ok(r) => r,
                Err(err) => return ControlFlow::Break(err),
            },
            _ => None,
        };
        if let Some(r) = replaced {
            *e = r;
        }
        ControlFlow::Continue(())
    }
}
