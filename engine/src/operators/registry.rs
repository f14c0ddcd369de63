//! The one place that turns a plan node into a running operator.

use std::sync::Arc;

use magnetar_sql::plan::{StreamOp, WindowAggregateNode};

use super::interval_join::IntervalJoinOperator;
use super::match_recognize::MatchRecognizeOperator;
use super::window::{
    AggregateSpec, SessionWindowAggregate, SlicedWindowAggregate, Slicer, WindowAssignOperator,
    WindowMetrics, WindowTopNOperator,
};
use super::window_join::WindowJoinOperator;
use super::{LimitOperator, Operator, StatelessOperator};
use crate::error::{EngineError, Result};
use crate::runtime::KeyHasher;

/// A running operator, and its event-time counters if it has any.
pub type Instantiated = (Box<dyn Operator>, Option<Arc<WindowMetrics>>);

/// What an operator instance is made with.
#[derive(Debug, Default)]
pub struct OperatorContext {
    /// The key groups' hasher of a keyed instance (its snapshots tag rows with them).
    pub key_groups: Option<KeyHasher>,
}

/// An operator running `op`, and its event-time counters if it has any.
pub fn instantiate(op: &StreamOp, ctx: OperatorContext) -> Result<Instantiated> {
    Ok(match op {
        StreamOp::Stateless(stage) => (
            Box::new(StatelessOperator::new(
                stage.predicate.as_ref().map(|(p, _)| p.clone()),
                stage
                    .projection
                    .as_ref()
                    .map(|cols| cols.iter().map(|(e, _)| e.clone()).collect()),
                stage.schema.clone(),
            )),
            None,
        ),
        StreamOp::Limit(limit) => (Box::new(LimitOperator::new(limit.skip, limit.fetch)), None),
        StreamOp::WindowAssign(w) => {
            let metrics = Arc::new(WindowMetrics::default());
            (
                Box::new(WindowAssignOperator::new(
                    &w.spec,
                    w.time_index,
                    w.mode,
                    w.schema.clone(),
                    metrics.clone(),
                )),
                Some(metrics),
            )
        }
        StreamOp::WindowAggregate(w) => window_aggregate(w, ctx)?,
        StreamOp::WindowTopN(w) => {
            let operator = WindowTopNOperator::new(
                w.window_end,
                w.partition.clone(),
                w.order.clone(),
                w.limit,
                w.schema.clone(),
            );
            let operator = match ctx.key_groups {
                Some(hasher) => operator.with_key_groups(hasher),
                None => operator,
            };
            (Box::new(operator), None)
        }
        StreamOp::MatchRecognize(m) => {
            let metrics = Arc::new(WindowMetrics::default());
            let operator = MatchRecognizeOperator::new(m.clone(), metrics.clone())?;
            let operator = match ctx.key_groups {
                Some(hasher) => operator.with_key_groups(hasher),
                None => operator,
            };
            (Box::new(operator), Some(metrics))
        }
        StreamOp::IntervalJoin(j) => {
            let metrics = Arc::new(WindowMetrics::default());
            let operator = IntervalJoinOperator::new(j.clone(), metrics.clone())?;
            let operator = match ctx.key_groups {
                Some(hasher) => operator.with_key_groups(hasher),
                None => operator,
            };
            (Box::new(operator), Some(metrics))
        }
        StreamOp::WindowJoin(j) => {
            let metrics = Arc::new(WindowMetrics::default());
            let operator = WindowJoinOperator::new(j.clone(), metrics.clone())?;
            let operator = match ctx.key_groups {
                Some(hasher) => operator.with_key_groups(hasher),
                None => operator,
            };
            (Box::new(operator), Some(metrics))
        }
        StreamOp::Source(_) | StreamOp::Union(_) => {
            return Err(EngineError::Internal(format!(
                "{} is not an operator",
                op.info().describe()
            )));
        }
    })
}

fn window_aggregate(w: &WindowAggregateNode, ctx: OperatorContext) -> Result<Instantiated> {
    let metrics = Arc::new(WindowMetrics::default());
    let spec = AggregateSpec::new(w.keys(), w.aggregates.clone(), &w.input_schema)?;
    let operator: Box<dyn Operator> = match Slicer::new(&w.spec) {
        Some(slicer) => {
            let operator = SlicedWindowAggregate::new(
                slicer,
                spec,
                w.group.clone(),
                w.schema.clone(),
                w.slice_end,
                metrics.clone(),
            );
            match ctx.key_groups {
                Some(hasher) => Box::new(operator.with_key_groups(hasher)),
                None => Box::new(operator),
            }
        }
        None => {
            let operator = SessionWindowAggregate::new(
                spec,
                w.group.clone(),
                w.schema.clone(),
                w.slice_start,
                w.slice_end,
                metrics.clone(),
            )?;
            match ctx.key_groups {
                Some(hasher) => Box::new(operator.with_key_groups(hasher)),
                None => Box::new(operator),
            }
        }
    };
    Ok((operator, Some(metrics)))
}
