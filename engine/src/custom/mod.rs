//! Connectors written in Rust by an embedding program: register one with
//! [`Engine::register_connector`](crate::Engine::register_connector) and tables name it in
//! `'connector' = '...'`. Their sources feed queries and jobs as topics do (watermarks,
//! checkpoints, positions); their sinks receive what `INSERT INTO` writes.

mod connector;
mod reader;
mod registry;

/// The attribute the traits' implementations take (`#[magnetar::custom::async_trait]`).
pub use async_trait::async_trait;
pub use connector::{BoxError, CustomConnector, CustomSink, CustomSource, TableContext};
pub use magnetar_sql::options::{OptionKind, OptionScope, OptionSpec};
pub use reader::CustomReader;
pub(crate) use registry::ConnectorRegistry;
