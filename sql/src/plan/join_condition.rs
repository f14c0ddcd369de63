//! What the streaming joins share in planning: their equality keys compiled for each side
//! (one type for both, as they hash and compare as one), the rest of the condition compiled
//! over a pair, and how EXPLAIN shows the keys.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{Expr, Join};
use datafusion::physical_expr::expressions::CastExpr;

use super::PhysicalExprRef;
use crate::error::{Result, SqlError};

/// A join's equality keys, per side (left, right).
pub struct CompiledKeys {
    /// The key expressions over each side's input.
    pub exprs: [Vec<PhysicalExprRef>; 2],
    /// How EXPLAIN shows them.
    pub text: [Vec<String>; 2],
}

/// Compiles `(left, right)` equality pairs of `join`, whose inputs lower to `schemas`; a
/// right key of another type than its left one is cast to it.
pub fn compile_keys(
    pairs: &[(Expr, Expr)],
    join: &Join,
    schemas: [&SchemaRef; 2],
    state: &SessionState,
) -> Result<CompiledKeys> {
    let mut keys = CompiledKeys {
        exprs: [Vec::new(), Vec::new()],
        text: [Vec::new(), Vec::new()],
    };
    for (l, r) in pairs {
        let left = state.create_physical_expr(l.clone(), join.left.schema())?;
        let mut right = state.create_physical_expr(r.clone(), join.right.schema())?;
        let lt = left.data_type(schemas[0])?;
        if matches!(lt, DataType::Null) {
            return Err(SqlError::unsupported(
                format!("the join key {l} has type NULL"),
                None,
            ));
        }
        if right.data_type(schemas[1])? != lt {
            right = Arc::new(CastExpr::new(right, lt, None));
        }
        keys.exprs[0].push(left);
        keys.exprs[1].push(right);
        keys.text[0].push(l.to_string());
        keys.text[1].push(r.to_string());
    }
    Ok(keys)
}

/// The conjuncts `rest` of `join`'s condition as one predicate over a pair (left columns
/// then right ones), with its text; `None` when there are none.
pub fn compile_residual(
    rest: Vec<Expr>,
    join: &Join,
    state: &SessionState,
) -> Result<Option<(PhysicalExprRef, String)>> {
    match rest.into_iter().reduce(Expr::and) {
        Some(e) => {
            let pair: DFSchema = join.left.schema().join(join.right.schema())?;
            Ok(Some((
                state.create_physical_expr(e.clone(), &pair)?,
                e.to_string(),
            )))
        }
        None => Ok(None),
    }
}

/// `l = r` for each key pair, as EXPLAIN shows them.
pub fn on_text(text: &[Vec<String>; 2]) -> Vec<String> {
    text[0]
        .iter()
        .zip(&text[1])
        .map(|(l, r)| format!("{l} = {r}"))
        .collect()
}
