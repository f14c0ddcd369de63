//! `MATCH_RECOGNIZE`: the pattern compiled to Flink's state machine ([`nfa`]), partial
//! matches as pointers into a shared buffer of rows ([`buffer`]), slots filled from a match
//! ([`eval`]), one partition's matching ([`matcher`]), the operator that orders rows by
//! event time and runs partitions ([`operator`]), and its checkpointed state ([`snapshot`]).

mod buffer;
mod eval;
mod matcher;
mod nfa;
mod operator;
mod snapshot;

pub use operator::MatchRecognizeOperator;
