//! Interval joins (see `magnetar_sql::plan::IntervalJoinNode`): each side's rows kept by
//! key in Arrow batches until the watermark passes their last possible partner.

mod operator;
mod side;
mod snapshot;

pub use operator::IntervalJoinOperator;
