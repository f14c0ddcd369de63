//! Errors of the engine, and where in the SQL they point.

use datafusion::error::DataFusionError;
use magnetar_connectors::ConnectorError;
use magnetar_sql::{Location, SqlError};

/// Everything the engine can report.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The SQL is wrong or not supported; carries a location when known.
    #[error(transparent)]
    Sql(#[from] SqlError),

    /// Pulsar or a message format failed.
    #[error(transparent)]
    Connector(#[from] ConnectorError),

    /// DataFusion failed while executing.
    #[error("{}", .0.strip_backtrace())]
    DataFusion(#[from] DataFusionError),

    /// Arrow failed on a batch.
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),

    /// A setting key that does not exist.
    #[error("unknown setting '{key}'{}", suggestion_text(.suggestion))]
    UnknownSetting {
        /// The key.
        key: String,
        /// The nearest valid key.
        suggestion: Option<String>,
    },

    /// A setting value that is not valid.
    #[error("invalid value '{value}' for setting '{key}': {reason}")]
    InvalidSetting {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },

    /// No job with this id or name.
    #[error("no job '{id}'{}", suggestion_text(.suggestion))]
    UnknownJob {
        /// What was asked for.
        id: String,
        /// The nearest known job id.
        suggestion: Option<String>,
    },

    /// A table has no `service-url` and the engine has no default.
    #[error(
        "table '{table}' has no 'service-url' and no default is set; add 'service-url' = 'pulsar://host:6650' to its WITH options or SET 'pulsar.service-url'"
    )]
    NoServiceUrl {
        /// The table.
        table: String,
    },

    /// A message could not be decoded and the policy is to fail.
    #[error("{0}")]
    BadMessage(String),

    /// The query or job was stopped.
    #[error("cancelled")]
    Cancelled,

    /// An error raised in another task of the same pipeline.
    #[error("{0}")]
    Pipeline(String),

    /// The checkpoint store could not be read or written.
    #[error("checkpoint store: {object}: {reason}")]
    Checkpoint {
        /// The object (or prefix) concerned.
        object: String,
        /// What went wrong.
        reason: String,
    },

    /// A connector could not be registered.
    #[error("cannot register connector '{name}': {reason}")]
    InvalidConnector {
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },

    /// A connector registered from Rust failed.
    #[error("table '{table}' ({connector} connector): {source}")]
    CustomConnector {
        /// The connector's name.
        connector: String,
        /// The table.
        table: String,
        /// What the connector said.
        source: crate::custom::BoxError,
    },

    /// Connecting a table's client failed (refused credentials, TLS, no broker).
    #[error("table '{table}': {source}")]
    TableConnection {
        /// The table.
        table: String,
        /// What went wrong.
        #[source]
        source: ConnectorError,
    },

    /// A broken invariant (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

fn suggestion_text(s: &Option<String>) -> String {
    match s {
        Some(s) => format!("; did you mean '{s}'?"),
        None => String::new(),
    }
}

impl EngineError {
    /// Where in the statement the error points, when known.
    pub fn location(&self) -> Option<Location> {
        match self {
            EngineError::Sql(e) => e.location(),
            _ => None,
        }
    }

    /// Moves a statement-relative location to the script's coordinates.
    pub fn offset_by(self, base: Location) -> Self {
        match self {
            EngineError::Sql(e) => EngineError::Sql(e.offset_by(base)),
            other => other,
        }
    }
}

impl EngineError {
    /// Whether the error is broker trouble that a restart may get past (a lost or refused
    /// connection, a timeout, a failed send), not a problem of the query or its data.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Connector(e) | EngineError::TableConnection { source: e, .. } => {
                connector_error_is_transient(e)
            }
            _ => false,
        }
    }

    /// Takes an error shared between pipeline tasks back out of its `Arc`.
    pub fn from_shared(e: std::sync::Arc<EngineError>) -> EngineError {
        std::sync::Arc::try_unwrap(e)
            .unwrap_or_else(|shared| EngineError::Pipeline(shared.to_string()))
    }
}

/// See [`EngineError::is_transient`]. Refused credentials and TLS failures are not: retrying
/// them only hammers the broker.
fn connector_error_is_transient(e: &ConnectorError) -> bool {
    match e {
        ConnectorError::Connect { .. }
        | ConnectorError::Disconnected { .. }
        | ConnectorError::Timeout { .. }
        | ConnectorError::Produce { .. }
        | ConnectorError::TokenEndpointUnavailable { .. }
        | ConnectorError::Io(_) => true,
        // A restarted broker is not ready yet, or still holds the consumer or producer of a
        // connection that died.
        ConnectorError::Broker { error, .. } => matches!(
            error.as_str(),
            "ServiceNotReady" | "TooManyRequests" | "ConsumerBusy" | "ProducerBusy"
        ),
        _ => false,
    }
}

impl From<EngineError> for DataFusionError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::DataFusion(e) => e,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

/// Result alias for the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
