//! Magnetar: a streaming SQL engine over Apache Pulsar topics, embeddable as a library.
//!
//! Open an [`Engine`], run statements with [`Engine::execute`], read query results as a
//! stream of Arrow record batches with [`Engine::query`], and manage `INSERT INTO` jobs
//! with [`Engine::jobs`] and [`Engine::stop_job`].

pub mod checkpoint;
pub mod custom;
pub mod docs;
mod engine;
pub mod error;
mod execute;
mod flink_functions;
mod jobs;
pub mod memory_limit;
pub mod operators;
pub mod runtime;
pub mod settings;
pub mod sinks;
pub mod sources;

pub use engine::{Engine, EngineConfig, StatementError, StatementOutput};
pub use error::{EngineError, Result};
pub use jobs::{JobInfo, JobState};
pub use runtime::{Clock, ManualClock, QueryStream, ReadStatsHandle};
pub use sources::ReadStats;

/// Re-exports for embedders: Arrow and the SQL layer's public types.
pub use datafusion::arrow;
pub use magnetar_connectors as connectors;
pub use magnetar_sql as sql;

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
