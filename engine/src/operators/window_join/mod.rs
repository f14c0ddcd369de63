//! Window joins (see `magnetar_sql::plan::WindowJoinNode`): each open window's rows of both
//! sides, joined when the watermark closes the window.

mod operator;
mod snapshot;

pub use operator::WindowJoinOperator;
