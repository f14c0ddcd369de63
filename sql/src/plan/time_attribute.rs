//! Which columns of a logical plan are event-time attributes: columns whose values the
//! watermarks that reach them bound, so that an event-time operator (a window TVF,
//! MATCH_RECOGNIZE) may hold rows until the watermark passes them. As in Flink, they are a
//! table's `WATERMARK` column, a window TVF's `window_time`, and `MATCH_ROWTIME()`, each
//! passed on unchanged through filters, projections, aliases, unions and interval joins;
//! any computation on them gives an ordinary timestamp.

use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::expr::Alias;
use datafusion::logical_expr::{Expr, LogicalPlan};

use crate::catalog::MagnetarTable;
use crate::match_recognize::MatchRecognizeRelation;
use crate::window::{WINDOW_TIME, WindowTvfNode};

fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(Alias { expr, .. }) => unalias(expr),
        other => other,
    }
}

/// Whether output column `index` of `plan` is an event-time attribute.
pub fn is_time_attribute(plan: &LogicalPlan, index: usize) -> bool {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let column = match &scan.projection {
                Some(p) => p.get(index).copied(),
                None => Some(index),
            };
            let Ok(provider) = source_as_provider(&scan.source) else {
                return false;
            };
            if let Some(table) = provider.downcast_ref::<MagnetarTable>() {
                return column.is_some() && table.def().rowtime_index() == column;
            }
            match (provider.get_logical_plan(), column) {
                (Some(view), Some(column)) => is_time_attribute(&view, column),
                _ => false,
            }
        }
        LogicalPlan::Projection(p) => match p.expr.get(index).map(unalias) {
            Some(Expr::Column(c)) => p
                .input
                .schema()
                .index_of_column(c)
                .is_ok_and(|i| is_time_attribute(&p.input, i)),
            _ => false,
        },
        LogicalPlan::Filter(f) => is_time_attribute(&f.input, index),
        LogicalPlan::SubqueryAlias(a) => is_time_attribute(&a.input, index),
        LogicalPlan::Limit(l) => is_time_attribute(&l.input, index),
        // Both sides' event times stay event time through an interval join (its output
        // watermark is held back so that they are).
        LogicalPlan::Join(join) if super::is_interval_join(plan) => {
            let left = join.left.schema().fields().len();
            if index < left {
                is_time_attribute(&join.left, index)
            } else {
                is_time_attribute(&join.right, index - left)
            }
        }
        LogicalPlan::Union(u) => u.inputs.iter().all(|i| is_time_attribute(i, index)),
        LogicalPlan::Extension(ext) => {
            let node = ext.node.as_any();
            if let Some(tvf) = node.downcast_ref::<WindowTvfNode>() {
                return tvf
                    .schema
                    .fields()
                    .get(index)
                    .is_some_and(|f| f.name() == WINDOW_TIME);
            }
            if let Some(mr) = node.downcast_ref::<MatchRecognizeRelation>() {
                return index
                    .checked_sub(mr.spec.partition.len())
                    .and_then(|m| mr.spec.measures.get(m))
                    .is_some_and(|(_, e)| e.is_match_rowtime());
            }
            false
        }
        _ => false,
    }
}
