//! `MATCH_RECOGNIZE`: pattern detection over event time, with Flink's syntax and
//! semantics. `WITHIN` is carried past sqlparser ([`within`]), the pattern is checked and
//! flattened ([`pattern`]), `DEFINE` and `MEASURES` become expressions over slots the
//! operator fills from a match ([`slots`]), and a DataFusion relation planner builds the
//! logical node ([`planner`], [`node`]).

mod lower;
mod node;
pub mod pattern;
mod planner;
pub mod slots;
mod within;

pub use lower::lower;
pub use node::{Define, MatchRecognizeRelation, MatchSpec, SkipTo};
pub use pattern::{Pattern, Quantified, VarId};
pub use planner::MatchRecognizePlanner;
pub use slots::{MatchAggregate, RowNav, Rows, Slot, SlotExpr};
pub use within::{WITHIN_SYMBOL, rewrite_within};
