//! One partition's matching, step for step as Flink's NFA does it: every row is tried on
//! every live partial match and on a fresh start; completed matches are emitted in the
//! order of their first rows, each held back while a partial match that started earlier
//! is alive (it would win); AFTER MATCH SKIP then discards what the match overlaps.

use std::sync::Arc;

use magnetar_sql::match_recognize::{SkipTo, VarId};
use magnetar_sql::plan::PhysicalDefine;

use super::buffer::{EventId, Node, Row, rows_of};
use super::eval::{MatchView, Positions, holds};
use super::nfa::{Action, Nfa, StateId, Transition};
use crate::error::{EngineError, Result};

/// A partial (or completed, when in [`Nfa::FINAL`]) match.
#[derive(Debug, Clone)]
pub struct Run {
    /// Where it stands.
    pub state: StateId,
    /// Its last taken row.
    pub last: Option<Arc<Node>>,
    /// Its first row.
    pub start: EventId,
}

/// A completed match: its rows with their variables, first to last.
pub type Match = Vec<(VarId, Arc<Row>)>;

/// One partition's matching state.
#[derive(Debug, Default)]
pub struct PartitionState {
    /// Live partial matches.
    pub partial: Vec<Run>,
    /// Completed matches held back behind an earlier-started partial match.
    pub completed: Vec<Run>,
}

impl PartitionState {
    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.partial.is_empty() && self.completed.is_empty()
    }

    /// The earliest start of a live partial match.
    fn earliest_partial(&self) -> Option<EventId> {
        self.partial.iter().map(|r| r.start).min()
    }
}

/// What matching needs of the plan.
pub struct Matcher {
    /// The compiled pattern.
    pub nfa: Nfa,
    /// Per variable.
    pub defines: Vec<PhysicalDefine>,
    /// AFTER MATCH SKIP.
    pub skip: SkipTo,
    /// WITHIN, in ms.
    pub within: Option<i64>,
    /// Where the kept columns sit in a row's values.
    pub positions: Vec<Option<usize>>,
    /// Variable names, for errors.
    pub names: Vec<String>,
}

/// The rows of a partial match, materialised at most once per row tried.
struct Lazy<'a> {
    last: Option<&'a Arc<Node>>,
    rows: Option<Vec<(VarId, Arc<Row>)>>,
}

impl Lazy<'_> {
    fn get(&mut self) -> &[(VarId, Arc<Row>)] {
        let last = self.last;
        self.rows.get_or_insert_with(|| rows_of(last))
    }
}

impl Matcher {
    fn positions(&self) -> &Positions {
        &self.positions
    }

    /// Whether `var`'s DEFINE holds for `row` taken as `var` after the partial match.
    fn define_holds(&self, var: VarId, row: &Row, prior: &mut Lazy<'_>) -> Result<bool> {
        if !row.satisfies(var) {
            return Ok(false);
        }
        match &self.defines[var.0].matched {
            None => Ok(true),
            Some(condition) => {
                let view = MatchView {
                    rows: prior.get(),
                    current: Some((var, row)),
                    rowtime: row.id.ts,
                };
                holds(condition, view, self.positions())
            }
        }
    }

    fn transition_holds(
        &self,
        from: StateId,
        t: &Transition,
        row: &Row,
        prior: &mut Lazy<'_>,
    ) -> Result<bool> {
        if t.action == Action::Take {
            let var = self
                .nfa
                .state(from)
                .var
                .ok_or_else(|| EngineError::Internal("a TAKE out of the final state".into()))?;
            if !self.define_holds(var, row, prior)? {
                return Ok(false);
            }
        }
        for &guard in &t.unless {
            if self.define_holds(guard, row, prior)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A final state reachable from `state` by PROCEED steps that hold for `row`.
    fn final_after_proceed(&self, state: StateId, row: &Row, prior: &mut Lazy<'_>) -> Result<bool> {
        let mut stack = vec![state];
        while let Some(s) = stack.pop() {
            for t in &self.nfa.state(s).transitions {
                if t.action == Action::Proceed && self.transition_holds(s, t, row, prior)? {
                    if t.target == Nfa::FINAL {
                        return Ok(true);
                    }
                    stack.push(t.target);
                }
            }
        }
        Ok(false)
    }

    /// The runs `run` (or a fresh start, `None`) becomes with `row`.
    fn next_runs(
        &self,
        run: Option<&Run>,
        row: &Arc<Row>,
        partial: &mut Vec<Run>,
        completed: &mut Vec<Run>,
    ) -> Result<()> {
        let state = run.map(|r| r.state).unwrap_or(self.nfa.start);
        let mut prior = Lazy {
            last: run.and_then(|r| r.last.as_ref()),
            rows: run.is_none().then(Vec::new),
        };
        let mut takes: Vec<(StateId, StateId)> = Vec::new();
        let mut stack = vec![state];
        while let Some(s) = stack.pop() {
            for t in &self.nfa.state(s).transitions {
                if self.transition_holds(s, t, row, &mut prior)? {
                    match t.action {
                        Action::Proceed => stack.push(t.target),
                        Action::Take => takes.push((s, t.target)),
                    }
                }
            }
        }
        for (from, target) in takes {
            let var = self
                .nfa
                .state(from)
                .var
                .ok_or_else(|| EngineError::Internal("a TAKE out of the final state".into()))?;
            let node = Arc::new(Node {
                row: row.clone(),
                var,
                prev: run.and_then(|r| r.last.clone()),
            });
            let next = Run {
                state: target,
                last: Some(node),
                start: run.map(|r| r.start).unwrap_or(row.id),
            };
            if target == Nfa::FINAL {
                completed.push(next);
                continue;
            }
            if self.final_after_proceed(target, row, &mut prior)? {
                completed.push(Run {
                    state: Nfa::FINAL,
                    ..next.clone()
                });
            }
            partial.push(next);
        }
        Ok(())
    }

    /// Tries `row` on the partition's partial matches; returns the matches it releases.
    pub fn process(&self, state: &mut PartitionState, row: &Arc<Row>) -> Result<Vec<Match>> {
        let mut partial = Vec::with_capacity(state.partial.len() + 1);
        let mut completed = Vec::new();
        if row.row_ok == 0 {
            // No variable can take the row: every partial match ends here.
            state.partial.clear();
        } else {
            for run in &state.partial {
                self.next_runs(Some(run), row, &mut partial, &mut completed)?;
            }
            self.next_runs(None, row, &mut partial, &mut completed)?;
            state.partial = partial;
        }
        self.release(state, completed)
    }

    /// Event time reached `ts`: partial matches that can no longer end within WITHIN are
    /// dropped; returns the matches that releases.
    pub fn advance_time(&self, state: &mut PartitionState, ts: i64) -> Result<Vec<Match>> {
        if let Some(within) = self.within {
            state
                .partial
                .retain(|r| ts.saturating_sub(r.start.ts) < within);
        }
        self.release(state, Vec::new())
    }

    /// Emits completed matches in the order of their first rows, while no partial match
    /// started before them, pruning as AFTER MATCH SKIP says.
    fn release(&self, state: &mut PartitionState, new: Vec<Run>) -> Result<Vec<Match>> {
        if new.is_empty() && state.completed.is_empty() {
            return Ok(Vec::new());
        }
        state.completed.extend(new);
        state.completed.sort_by_key(|r| r.start);
        let mut out = Vec::new();
        while let Some(first) = state.completed.first() {
            if state.earliest_partial().is_some_and(|p| first.start > p) {
                break;
            }
            let run = state.completed.remove(0);
            let rows = rows_of(run.last.as_ref());
            let (pruning, inclusive) = self.pruning_id(&rows)?;
            let prune = |r: &Run| {
                if inclusive {
                    r.start <= pruning
                } else {
                    r.start < pruning
                }
            };
            state.partial.retain(|r| !prune(r));
            state.completed.retain(|r| !prune(r));
            out.push(rows);
        }
        Ok(out)
    }

    /// Partial matches starting at or before (inclusive) / before (exclusive) this row are
    /// discarded after the match.
    fn pruning_id(&self, rows: &Match) -> Result<(EventId, bool)> {
        let first = rows
            .first()
            .map(|(_, r)| r.id)
            .ok_or_else(|| EngineError::Internal("an empty match".into()))?;
        let of = |var: VarId, last: bool| -> Result<EventId> {
            let mut ids = rows.iter().filter(|(v, _)| *v == var).map(|(_, r)| r.id);
            let id = if last { ids.next_back() } else { ids.next() };
            let id = id.ok_or_else(|| {
                EngineError::Pipeline(format!(
                    "AFTER MATCH SKIP TO {} {}: the match starting at {} has no row of {} (Flink fails the same way)",
                    if last { "LAST" } else { "FIRST" },
                    self.names[var.0],
                    crate::runtime::EventTime(first.ts),
                    self.names[var.0]
                ))
            })?;
            if id == first {
                return Err(EngineError::Pipeline(format!(
                    "AFTER MATCH SKIP TO {} {}: skipping to the first row of the match starting at {} would find it again forever (Flink fails the same way)",
                    if last { "LAST" } else { "FIRST" },
                    self.names[var.0],
                    crate::runtime::EventTime(first.ts),
                )));
            }
            Ok(id)
        };
        Ok(match self.skip {
            SkipTo::NextRow => (first, true),
            SkipTo::PastLastRow => (rows.last().map(|(_, r)| r.id).unwrap_or(first), true),
            SkipTo::FirstOf(v) => (of(v, false)?, false),
            SkipTo::LastOf(v) => (of(v, true)?, false),
        })
    }
}
