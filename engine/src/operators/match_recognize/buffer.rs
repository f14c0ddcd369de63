//! The shared buffer: each row a partial match took is kept once, and a partial match is a
//! pointer to its last taken row, whose node points back to the one before. Runs that branch
//! from one partial match share its prefix.

use std::sync::Arc;

use datafusion::common::ScalarValue;
use magnetar_sql::match_recognize::VarId;

/// Where a row stands in a partition's processing order: its event time, then the order in
/// which rows of equal time were processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    /// Event time, ms since the epoch.
    pub ts: i64,
    /// Processing order among the operator's rows.
    pub seq: u64,
}

/// A row as the matcher keeps it: the columns the pattern reads, and which variables'
/// row conditions it satisfies.
#[derive(Debug, Clone)]
pub struct Row {
    /// Its place in the partition's order.
    pub id: EventId,
    /// The values of the columns the pattern reads (see `Matcher::column_position`).
    pub values: Vec<ScalarValue>,
    /// Bit `v`: the row-only part of variable `v`'s DEFINE holds.
    pub row_ok: u64,
}

impl Row {
    /// Whether the row-only part of `var`'s condition holds.
    pub fn satisfies(&self, var: VarId) -> bool {
        self.row_ok & (1 << var.0) != 0
    }
}

/// A row taken by a partial match, as `var`, after `prev`.
#[derive(Debug)]
pub struct Node {
    /// The row.
    pub row: Arc<Row>,
    /// The variable it was mapped to.
    pub var: VarId,
    /// The row taken before it.
    pub prev: Option<Arc<Node>>,
}

impl Drop for Node {
    /// Unlinks a long chain iteratively (the default would recurse once per row).
    fn drop(&mut self) {
        let mut next = self.prev.take();
        while let Some(node) = next {
            match Arc::try_unwrap(node) {
                Ok(mut owned) => next = owned.prev.take(),
                Err(_) => break,
            }
        }
    }
}

/// The rows of the match ending at `last`, first to last.
pub fn rows_of(last: Option<&Arc<Node>>) -> Vec<(VarId, Arc<Row>)> {
    let mut out = Vec::new();
    let mut at = last;
    while let Some(node) = at {
        out.push((node.var, node.row.clone()));
        at = node.prev.as_ref();
    }
    out.reverse();
    out
}
