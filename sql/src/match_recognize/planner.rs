//! Plans `t MATCH_RECOGNIZE (...)` (a DataFusion relation planner): the input through
//! DataFusion, the clause into a [`MatchRecognizeRelation`].

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, DataFusionError, Result as DFResult};
use datafusion::logical_expr::planner::{
    PlannedRelation, RelationPlanner, RelationPlannerContext, RelationPlanning,
};
use datafusion::logical_expr::{Expr, ExprSchemable, Extension, LogicalPlan};
use datafusion::sql::sqlparser::ast::{self, Ident, RowsPerMatch, Spanned, TableFactor};

use super::node::{Define, MatchRecognizeRelation, MatchSpec, SkipTo};
use super::pattern::{self, Pattern, VarId};
use super::slots::{
    Clause, RowNav, Slot, SlotContext, SlotExpr, conjuncts, extract_slots, slot_schema,
};
use super::within::WITHIN_SYMBOL;
use crate::error::{Location, SqlError};
use crate::parser::ident_name;

/// The relation planner for `MATCH_RECOGNIZE`.
#[derive(Debug, Default)]
pub struct MatchRecognizePlanner;

fn error(e: SqlError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

fn at(ident: &Ident) -> Option<Location> {
    Location::from_parser(ident.span.start)
}

fn expr_at(e: &ast::Expr) -> Option<Location> {
    Location::from_parser(e.span().start)
}

impl RelationPlanner for MatchRecognizePlanner {
    fn plan_relation(
        &self,
        relation: TableFactor,
        context: &mut dyn RelationPlannerContext,
    ) -> DFResult<RelationPlanning> {
        let TableFactor::MatchRecognize {
            table,
            partition_by,
            order_by,
            measures,
            rows_per_match,
            after_match_skip,
            pattern,
            symbols,
            alias,
        } = relation
        else {
            return Ok(RelationPlanning::Original(Box::new(relation)));
        };
        let input = context.plan(*table)?;
        let clause = ClauseAst {
            partition_by,
            order_by,
            measures,
            rows_per_match,
            after_match_skip,
            pattern,
            symbols,
        };
        let node = plan_clause(input, clause, context).map_err(error)?;
        Ok(RelationPlanning::Planned(Box::new(PlannedRelation::new(
            LogicalPlan::Extension(Extension {
                node: Arc::new(node),
            }),
            alias,
        ))))
    }
}

struct ClauseAst {
    partition_by: Vec<ast::Expr>,
    order_by: Vec<ast::OrderByExpr>,
    measures: Vec<ast::Measure>,
    rows_per_match: Option<RowsPerMatch>,
    after_match_skip: Option<ast::AfterMatchSkip>,
    pattern: ast::MatchRecognizePattern,
    symbols: Vec<ast::SymbolDefinition>,
}

/// The input column a PARTITION BY or ORDER BY item names.
fn column_of(e: &ast::Expr, input: &Schema, what: &str) -> Result<usize, SqlError> {
    let ident = match e {
        ast::Expr::Identifier(i) => i,
        ast::Expr::CompoundIdentifier(parts) if !parts.is_empty() => &parts[parts.len() - 1],
        other => {
            return Err(SqlError::unsupported(
                format!("{what} takes columns in MATCH_RECOGNIZE, not the expression {other}"),
                expr_at(other),
            ));
        }
    };
    let name = ident_name(ident);
    input
        .fields()
        .iter()
        .position(|f| f.name() == &name)
        .ok_or_else(|| {
            SqlError::unsupported(
                format!(
                    "{what} column '{}' is not a column of the input",
                    ident.value
                ),
                at(ident),
            )
        })
}

fn plan_clause(
    input: LogicalPlan,
    c: ClauseAst,
    context: &mut dyn RelationPlannerContext,
) -> Result<MatchRecognizeRelation, SqlError> {
    let input_schema: Schema = input.schema().as_arrow().clone();
    let input_columns: Vec<String> = input_schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let location = c.symbols.first().and_then(|s| at(&s.symbol));
    if let Some(RowsPerMatch::AllRows(_)) = c.rows_per_match {
        return Err(SqlError::unsupported(
            "ALL ROWS PER MATCH (Flink does not run it either); use ONE ROW PER MATCH",
            location,
        ));
    }
    let partition = c
        .partition_by
        .iter()
        .map(|e| column_of(e, &input_schema, "PARTITION BY"))
        .collect::<Result<Vec<_>, _>>()?;
    let Some((first, rest)) = c.order_by.split_first() else {
        return Err(SqlError::unsupported(
            "MATCH_RECOGNIZE needs ORDER BY the event-time column (ascending)",
            location,
        ));
    };
    let time_index = column_of(&first.expr, &input_schema, "ORDER BY")?;
    if !matches!(
        input_schema.field(time_index).data_type(),
        DataType::Timestamp(TimeUnit::Millisecond, _)
    ) || first.options.asc == Some(false)
    {
        return Err(SqlError::unsupported(
            format!(
                "MATCH_RECOGNIZE must be ordered first by an event-time column (TIMESTAMP(3) with a WATERMARK), ascending; '{}' is {}",
                input_columns[time_index],
                input_schema.field(time_index).data_type()
            ),
            expr_at(&first.expr),
        ));
    }
    if !crate::plan::is_time_attribute(&input, time_index) {
        return Err(SqlError::unsupported(
            format!(
                "MATCH_RECOGNIZE must be ordered first by an event-time attribute; '{}' is an ordinary timestamp here (event time is a table's WATERMARK column, a window's window_time or MATCH_ROWTIME(), passed on unchanged)",
                input_columns[time_index]
            ),
            expr_at(&first.expr),
        ));
    }
    let order = rest
        .iter()
        .map(|o| {
            let descending = o.options.asc == Some(false);
            Ok((
                column_of(&o.expr, &input_schema, "ORDER BY")?,
                descending,
                // Calcite's default: NULLs first ascending, last descending.
                o.options.nulls_first.unwrap_or(!descending),
            ))
        })
        .collect::<Result<Vec<_>, SqlError>>()?;
    let pattern_location = c.symbols.first().and_then(|s| at(&s.symbol));
    let pattern = pattern::compile(&c.pattern, pattern_location)?;
    let skip = match &c.after_match_skip {
        // Flink's default (the SQL standard's is PAST LAST ROW).
        None | Some(ast::AfterMatchSkip::ToNextRow) => SkipTo::NextRow,
        Some(ast::AfterMatchSkip::PastLastRow) => SkipTo::PastLastRow,
        Some(ast::AfterMatchSkip::ToFirst(v)) => SkipTo::FirstOf(named_var(&pattern, v)?),
        Some(ast::AfterMatchSkip::ToLast(v)) => SkipTo::LastOf(named_var(&pattern, v)?),
    };
    if let SkipTo::FirstOf(v) = skip
        && pattern.elements.first().is_some_and(|e| e.var == v)
    {
        return Err(SqlError::unsupported(
            format!(
                "AFTER MATCH SKIP TO FIRST {}: {} is the pattern's first variable, so matching would resume where the match began and find it again forever",
                pattern.name(v),
                pattern.name(v)
            ),
            location,
        ));
    }
    let ctx = SlotContext {
        pattern: &pattern,
        input: &input_schema,
        time_index,
    };
    let mut within = None;
    let mut defines: Vec<Define> = vec![Define::default(); pattern.variables.len()];
    for symbol in c.symbols {
        if symbol.symbol.value == WITHIN_SYMBOL {
            let e = context
                .sql_to_expr(symbol.definition.clone(), &DFSchema::empty())
                .map_err(SqlError::from)?;
            let ms = crate::window::function::millis("WITHIN", "interval", Some(&e))
                .map_err(|e| SqlError::unsupported(e.to_string(), expr_at(&symbol.definition)))?;
            if ms < 0 {
                return Err(SqlError::unsupported(
                    "the WITHIN interval must not be negative",
                    expr_at(&symbol.definition),
                ));
            }
            // As in Flink, a zero interval is no bound.
            within = (ms > 0).then_some(ms);
            continue;
        }
        let var = named_var(&pattern, &symbol.symbol)?;
        if !defines[var.0].text.is_empty() {
            return Err(SqlError::unsupported(
                format!("{} is defined twice", symbol.symbol.value),
                at(&symbol.symbol),
            ));
        }
        defines[var.0] = define(var, symbol.definition, &ctx, context)?;
    }
    let mut fields: Vec<Field> = partition
        .iter()
        .map(|&i| input_schema.field(i).clone())
        .collect();
    let mut planned_measures = Vec::with_capacity(c.measures.len());
    for m in c.measures {
        let name = ident_name(&m.alias);
        let (expr, slots, types) = extract_slots(m.expr.clone(), Clause::Measures, &ctx)?;
        let slot_expr = plan_slot_expr(
            expr,
            slots,
            &types,
            m.expr.to_string(),
            expr_at(&m.expr),
            context,
        )?;
        let data_type = slot_expr
            .expr
            .to_field(&slot_expr.schema)
            .map(|(_, f)| f.data_type().clone())
            .map_err(SqlError::from)?;
        fields.push(Field::new(&name, data_type, true));
        planned_measures.push((name, slot_expr));
    }
    let schema = Arc::new(DFSchema::try_from(Schema::new(fields)).map_err(SqlError::from)?);
    Ok(MatchRecognizeRelation {
        input,
        spec: Arc::new(MatchSpec {
            partition,
            time_index,
            order,
            pattern,
            skip,
            within,
            defines,
            measures: planned_measures,
            input_columns,
        }),
        schema,
    })
}

fn named_var(pattern: &Pattern, ident: &Ident) -> Result<VarId, SqlError> {
    pattern.var(&ident_name(ident)).ok_or_else(|| {
        SqlError::unsupported(
            format!("{} is not a variable of the PATTERN", ident.value),
            at(ident),
        )
    })
}

/// A DEFINE condition, its conjuncts sorted into those over the row alone and the rest.
fn define(
    var: VarId,
    definition: ast::Expr,
    ctx: &SlotContext<'_>,
    context: &mut dyn RelationPlannerContext,
) -> Result<Define, SqlError> {
    let text = definition.to_string();
    let location = expr_at(&definition);
    let mut row = Vec::new();
    let mut matched = Vec::new();
    for part in conjuncts(definition) {
        let (expr, slots, types) = extract_slots(part, Clause::Define(var), ctx)?;
        let current_only = slots.iter().all(|s| {
            matches!(
                s,
                Slot::Value {
                    row: RowNav::Current,
                    ..
                }
            )
        });
        if current_only {
            row.push((expr, slots, types));
        } else {
            matched.push((expr, slots, types));
        }
    }
    let combine = |parts: Vec<(ast::Expr, Vec<Slot>, Vec<DataType>)>,
                   context: &mut dyn RelationPlannerContext|
     -> Result<Option<SlotExpr>, SqlError> {
        if parts.is_empty() {
            return Ok(None);
        }
        // One slot list for the conjuncts: renumber each part's placeholders.
        let mut slots = Vec::new();
        let mut types = Vec::new();
        let mut exprs = Vec::new();
        let mut texts = Vec::new();
        for (mut e, s, t) in parts {
            let base = slots.len();
            renumber(&mut e, base);
            texts.push(e.to_string());
            exprs.push(e);
            slots.extend(s);
            types.extend(t);
        }
        let joined = exprs
            .into_iter()
            .reduce(|a, b| ast::Expr::BinaryOp {
                left: Box::new(a),
                op: ast::BinaryOperator::And,
                right: Box::new(b),
            })
            .expect("non-empty");
        Ok(Some(plan_slot_expr(
            joined,
            slots,
            &types,
            texts.join(" AND "),
            location,
            context,
        )?))
    };
    let row = combine(row, context)?;
    let matched = combine(matched, context)?;
    for part in row.iter().chain(matched.iter()) {
        let t = part
            .expr
            .to_field(&part.schema)
            .map(|(_, f)| f.data_type().clone())
            .map_err(SqlError::from)?;
        if t != DataType::Boolean && t != DataType::Null {
            return Err(SqlError::unsupported(
                format!("a DEFINE condition must be a boolean, not {t}"),
                location,
            ));
        }
    }
    Ok(Define { row, matched, text })
}

/// Shifts the slot placeholders of `e` by `base`.
fn renumber(e: &mut ast::Expr, base: usize) {
    use std::ops::ControlFlow;
    if base == 0 {
        return;
    }
    let prefix = super::slots::slot_name(0);
    let prefix = &prefix[..prefix.len() - 1];
    let _ = ast::visit_expressions_mut(e, |x| {
        if let ast::Expr::Identifier(i) = x
            && let Some(n) = i
                .value
                .strip_prefix(prefix)
                .and_then(|n| n.parse::<usize>().ok())
        {
            *x = ast::Expr::Identifier(Ident::new(super::slots::slot_name(n + base)));
        }
        ControlFlow::<()>::Continue(())
    });
}

fn plan_slot_expr(
    expr: ast::Expr,
    slots: Vec<Slot>,
    types: &[DataType],
    text: String,
    location: Option<Location>,
    context: &mut dyn RelationPlannerContext,
) -> Result<SlotExpr, SqlError> {
    let schema = slot_schema(types)?;
    let planned = context.sql_to_expr(expr, &schema).map_err(|e| {
        let mut err = SqlError::from(e);
        if let SqlError::Plan { location: l, .. } = &mut err
            && l.is_none()
        {
            *l = location;
        }
        err
    })?;
    let mut aggregate = None;
    let _ = planned.apply(|e| {
        if matches!(e, Expr::AggregateFunction(_) | Expr::WindowFunction(_)) {
            aggregate = Some(e.to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    if let Some(a) = aggregate {
        return Err(SqlError::unsupported(
            format!(
                "{a} in MATCH_RECOGNIZE (the aggregates there are COUNT, SUM, AVG, MIN and MAX over a column)"
            ),
            location,
        ));
    }
    Ok(SlotExpr {
        slots,
        schema,
        expr: planned,
        text,
    })
}
