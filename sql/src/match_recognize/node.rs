//! The logical plan node of a `MATCH_RECOGNIZE`: one row per match, the partition columns
//! then the measures.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::common::{DFSchemaRef, Result as DFResult};
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};

use super::pattern::{Pattern, VarId};
use super::slots::SlotExpr;
use crate::window::Millis;

/// `AFTER MATCH SKIP ...`: where matching resumes after a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipTo {
    /// `PAST LAST ROW`.
    PastLastRow,
    /// `TO NEXT ROW` (Flink's default): at the row after the match's first.
    NextRow,
    /// `TO FIRST v`: at the first row mapped to `v`.
    FirstOf(VarId),
    /// `TO LAST v`: at the last row mapped to `v`.
    LastOf(VarId),
}

/// A variable's condition, split into the part that looks at the row alone (computed for a
/// whole batch at once) and the part that looks at the match so far.
#[derive(Clone, Debug, Default)]
pub struct Define {
    /// Conjuncts over the current row only.
    pub row: Option<SlotExpr>,
    /// Conjuncts that need the match (other variables, PREV, FIRST/LAST, aggregates).
    pub matched: Option<SlotExpr>,
    /// As written (empty: no DEFINE, the variable matches any row).
    pub text: String,
}

/// Everything a `MATCH_RECOGNIZE` says, resolved against its input.
#[derive(Clone, Debug)]
pub struct MatchSpec {
    /// PARTITION BY columns (input indices).
    pub partition: Vec<usize>,
    /// The event-time column the rows are ordered by (input index).
    pub time_index: usize,
    /// Further ORDER BY columns for rows of equal time: input index, descending, NULLs first.
    pub order: Vec<(usize, bool, bool)>,
    /// The pattern.
    pub pattern: Pattern,
    /// AFTER MATCH SKIP.
    pub skip: SkipTo,
    /// `WITHIN`: a match's last row is less than this after its first.
    pub within: Option<Millis>,
    /// Per variable (by [`VarId`]).
    pub defines: Vec<Define>,
    /// MEASURES: output name and expression.
    pub measures: Vec<(String, SlotExpr)>,
    /// The input's column names the indices above refer to.
    pub input_columns: Vec<String>,
}

impl MatchSpec {
    /// One line for plans: the pattern, the skip mode and `WITHIN`.
    pub fn summary(&self) -> String {
        let skip = match self.skip {
            SkipTo::PastLastRow => "PAST LAST ROW".to_string(),
            SkipTo::NextRow => "TO NEXT ROW".to_string(),
            SkipTo::FirstOf(v) => format!("TO FIRST {}", self.pattern.name(v)),
            SkipTo::LastOf(v) => format!("TO LAST {}", self.pattern.name(v)),
        };
        let mut line = format!("pattern=({}) skip={skip}", self.pattern);
        if let Some(w) = self.within {
            line.push_str(&format!(" within={w}ms"));
        }
        let partition: Vec<&str> = self
            .partition
            .iter()
            .map(|&i| self.input_columns[i].as_str())
            .collect();
        line.push_str(&format!(
            " partition=[{}] order={}",
            partition.join(", "),
            self.input_columns[self.time_index]
        ));
        line
    }
}

/// `t MATCH_RECOGNIZE (...)` in a logical plan.
#[derive(Clone, Debug)]
pub struct MatchRecognizeRelation {
    /// The input.
    pub input: LogicalPlan,
    /// The clause.
    pub spec: Arc<MatchSpec>,
    /// Partition columns then measures.
    pub schema: DFSchemaRef,
}

impl PartialEq for MatchRecognizeRelation {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.spec, &other.spec) && self.input == other.input
    }
}

impl Eq for MatchRecognizeRelation {}

impl Hash for MatchRecognizeRelation {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.spec.summary().hash(state);
        self.input.hash(state);
    }
}

impl PartialOrd for MatchRecognizeRelation {
    fn partial_cmp(&self, _other: &Self) -> Option<Ordering> {
        None
    }
}

impl fmt::Display for MatchRecognizeRelation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MatchRecognize: {}", self.spec.summary())
    }
}

impl UserDefinedLogicalNodeCore for MatchRecognizeRelation {
    fn name(&self) -> &str {
        "MatchRecognize"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    /// None: the clause's expressions are over slots, not over the input, so no optimizer
    /// rule may rewrite them against the input's schema.
    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{self}")
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> DFResult<Self> {
        Ok(Self {
            input: inputs.swap_remove(0),
            spec: self.spec.clone(),
            schema: self.schema.clone(),
        })
    }
}
