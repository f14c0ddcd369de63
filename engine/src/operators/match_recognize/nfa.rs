//! The pattern as a state machine, built the way Flink's CEP compiler builds it for SQL
//! (strict contiguity): so that greedy and reluctant quantifiers, optional elements and
//! bounded repetitions match exactly the rows Flink matches.
//!
//! Each element `X{min,max}` becomes a chain of states that TAKE a row satisfying `X`'s
//! DEFINE; states past the minimum can also PROCEED (an epsilon step, trying the same row
//! on what follows). A greedy element guards every transition of the state after it with
//! NOT X: the next variable may only take a row that X would not take.

use magnetar_sql::match_recognize::pattern::greedy_applies;
use magnetar_sql::match_recognize::{Pattern, Quantified, VarId};

/// A state's index in [`Nfa::states`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateId(pub usize);

/// What a transition does with the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Maps the row to the state's variable and moves on.
    Take,
    /// Moves on without the row, which is then tried on the target's transitions.
    Proceed,
}

/// One edge of a state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// What it does.
    pub action: Action,
    /// Where it leads.
    pub target: StateId,
    /// Variables whose DEFINE must NOT hold for the row (greedy predecessors).
    pub unless: Vec<VarId>,
}

/// A state: the variable it takes rows for (none for the final state) and its edges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// The variable a TAKE maps the row to.
    pub var: Option<VarId>,
    /// Edges, in the order they are tried.
    pub transitions: Vec<Transition>,
}

/// The compiled pattern.
#[derive(Clone, Debug)]
pub struct Nfa {
    /// All states; the final one is [`Nfa::FINAL`].
    pub states: Vec<State>,
    /// Where every match starts.
    pub start: StateId,
}

impl Nfa {
    /// The final state: reaching it completes a match.
    pub const FINAL: StateId = StateId(0);

    /// Builds the machine for `pattern`.
    pub fn compile(pattern: &Pattern) -> Nfa {
        let mut states = vec![State {
            var: None,
            transitions: Vec::new(),
        }];
        let mut sink = Nfa::FINAL;
        for e in pattern.elements.iter().rev() {
            let head = element(&mut states, e, sink);
            if greedy_applies(e) {
                for t in &mut states[sink.0].transitions {
                    t.unless.push(e.var);
                }
            }
            sink = head;
        }
        Nfa {
            states,
            start: sink,
        }
    }

    /// A state.
    pub fn state(&self, id: StateId) -> &State {
        &self.states[id.0]
    }
}

fn push(states: &mut Vec<State>, var: VarId) -> StateId {
    states.push(State {
        var: Some(var),
        transitions: Vec::new(),
    });
    StateId(states.len() - 1)
}

fn edge(states: &mut [State], from: StateId, action: Action, target: StateId) {
    states[from.0].transitions.push(Transition {
        action,
        target,
        unless: Vec::new(),
    });
}

/// The states of one element in front of `sink`; returns its first state.
fn element(states: &mut Vec<State>, e: &Quantified, sink: StateId) -> StateId {
    let mandatory = e.min.max(1) as usize;
    match e.max {
        None => {
            let chain: Vec<StateId> = (0..mandatory).map(|_| push(states, e.var)).collect();
            let looping = push(states, e.var);
            for pair in chain.windows(2) {
                edge(states, pair[0], Action::Take, pair[1]);
            }
            edge(states, chain[mandatory - 1], Action::Take, looping);
            edge(states, looping, Action::Take, looping);
            edge(states, looping, Action::Proceed, sink);
            if e.min == 0 {
                edge(states, chain[0], Action::Proceed, sink);
            }
            chain[0]
        }
        Some(max) => {
            let max = max as usize;
            let chain: Vec<StateId> = (0..max).map(|_| push(states, e.var)).collect();
            for (i, &s) in chain.iter().enumerate() {
                let next = chain.get(i + 1).copied().unwrap_or(sink);
                edge(states, s, Action::Take, next);
                // The state reached after `i` rows may skip the rest once `i >= min`.
                if i >= mandatory || (i == 0 && e.min == 0) {
                    edge(states, s, Action::Proceed, sink);
                }
            }
            chain[0]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(bounds: &[(u32, Option<u32>, bool)]) -> Pattern {
        Pattern::of_bounds(bounds)
    }

    #[test]
    fn a_bounded_repetition_can_leave_after_its_minimum() {
        // A{2,3} B
        let nfa = Nfa::compile(&pattern(&[(2, Some(3), true), (1, Some(1), true)]));
        let a1 = nfa.start;
        let a1_edges = &nfa.state(a1).transitions;
        assert_eq!(a1_edges.len(), 1, "the first A row is needed");
        let a2 = a1_edges[0].target;
        assert_eq!(nfa.state(a2).transitions.len(), 1, "so is the second");
        let a3 = nfa.state(a2).transitions[0].target;
        let kinds: Vec<Action> = nfa.state(a3).transitions.iter().map(|t| t.action).collect();
        assert_eq!(kinds, vec![Action::Take, Action::Proceed]);
        // Greedy: B takes only rows that A would not.
        let b = nfa.state(a3).transitions[1].target;
        assert_eq!(nfa.state(b).transitions[0].unless, vec![VarId(0)]);
        assert_eq!(nfa.state(b).transitions[0].target, Nfa::FINAL);
    }

    #[test]
    fn reluctant_elements_put_no_guard_on_what_follows() {
        let nfa = Nfa::compile(&pattern(&[(1, None, false), (1, Some(1), true)]));
        assert!(
            nfa.states
                .iter()
                .all(|s| s.transitions.iter().all(|t| t.unless.is_empty()))
        );
    }
}
