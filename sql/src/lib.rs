//! Magnetar's SQL layer: statements (with Flink's DDL), typed `WITH` options, the catalog,
//! and the lowering of DataFusion plans into streaming plans.

pub mod catalog;
pub mod error;
pub mod match_recognize;
pub mod options;
pub mod parser;
pub mod plan;
pub mod redact;
pub mod script;
pub mod statement;
pub mod window;

pub use error::{Location, Result, SqlError};
pub use parser::parse_statement;
pub use script::{ScriptStatement, ends_statement, split_statements};
pub use statement::Statement;
