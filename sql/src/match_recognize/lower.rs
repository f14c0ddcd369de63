//! From the logical node to the streaming plan's: the slot expressions compiled.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::session_state::SessionState;

use super::node::MatchRecognizeRelation;
use super::slots::SlotExpr;
use crate::error::{Result, SqlError};
use crate::plan::{MatchRecognizeNode, PhysicalDefine, PhysicalSlotExpr};

fn compile(e: &SlotExpr, state: &SessionState) -> Result<PhysicalSlotExpr> {
    Ok(PhysicalSlotExpr {
        slots: e.slots.clone(),
        schema: Arc::new(e.schema.as_arrow().clone()),
        expr: state.create_physical_expr(e.expr.clone(), &e.schema)?,
        text: e.text.clone(),
    })
}

/// The streaming node of `node`, over an input that produces `input_schema`.
pub fn lower(
    node: &MatchRecognizeRelation,
    input_schema: SchemaRef,
    state: &SessionState,
) -> Result<MatchRecognizeNode> {
    let spec = &node.spec;
    let names: Vec<&String> = input_schema.fields().iter().map(|f| f.name()).collect();
    if names.len() != spec.input_columns.len()
        || names.iter().zip(&spec.input_columns).any(|(a, b)| *a != b)
    {
        return Err(SqlError::unsupported(
            format!(
                "the MATCH_RECOGNIZE input changed its columns while planning ({} became {})",
                spec.input_columns.join(", "),
                names
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None,
        ));
    }
    let defines = spec
        .defines
        .iter()
        .map(|d| {
            Ok(PhysicalDefine {
                row: d.row.as_ref().map(|e| compile(e, state)).transpose()?,
                matched: d.matched.as_ref().map(|e| compile(e, state)).transpose()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let measures = spec
        .measures
        .iter()
        .map(|(_, e)| compile(e, state))
        .collect::<Result<Vec<_>>>()?;
    Ok(MatchRecognizeNode {
        spec: spec.clone(),
        defines,
        measures,
        input_schema,
        schema: Arc::new(node.schema.as_arrow().clone()),
    })
}
