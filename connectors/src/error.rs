//! Errors of the connectors crate.

use crate::message_id::MessageId;

/// Everything that can go wrong while talking to Pulsar or converting messages.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The service URL could not be parsed.
    #[error("invalid Pulsar service URL '{url}': {reason}")]
    InvalidServiceUrl { url: String, reason: String },

    /// A topic name could not be parsed.
    #[error("invalid topic name '{topic}': {reason}")]
    InvalidTopic { topic: String, reason: String },

    /// A message id string could not be parsed.
    #[error("invalid message id '{text}': {reason}")]
    InvalidMessageId { text: String, reason: String },

    /// No broker answered at the address.
    #[error("cannot connect to Pulsar at {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },

    /// The topics a read should follow could not be listed.
    #[error("cannot list the topics to read: {0}")]
    Discovery(String),

    /// A TLS connection could not be set up or was refused.
    #[error("TLS: {0}")]
    Tls(String),

    /// The broker refused our credentials (or asked for some and we had none).
    #[error("authentication failed at {address}: {reason}")]
    Authentication { address: String, reason: String },

    /// The OAuth2 token endpoint could not be reached or had trouble (a network error, a 5xx
    /// or 429 answer): no verdict on the credentials, so worth trying again.
    #[error("the OAuth2 token endpoint at '{}' is unavailable: {}", crate::redact::url(.issuer), crate::redact::text(.reason))]
    TokenEndpointUnavailable { issuer: String, reason: String },

    /// A bounded read got nothing more from a partition that should have more, however often
    /// it asked again.
    #[error("no progress reading '{topic}': {reason}")]
    NoProgress { topic: String, reason: String },

    /// The connection was closed or broke while a request was in flight.
    #[error("connection to {address} lost: {reason}")]
    Disconnected { address: String, reason: String },

    /// A frame from the broker did not follow the Pulsar binary protocol.
    #[error("malformed frame from the broker: {0}")]
    Frame(String),

    /// A stored message did not follow Pulsar's message format.
    #[error("malformed message {id} on topic '{topic}': {reason}")]
    MalformedMessage {
        topic: String,
        id: MessageId,
        reason: String,
    },

    /// The broker answered a request with an error.
    #[error("broker refused {request}{topic}: {error} ({message})", topic = topic_suffix(.topic))]
    Broker {
        request: &'static str,
        topic: Option<String>,
        error: String,
        message: String,
    },

    /// The broker did not answer a request in time.
    #[error("broker did not answer {request} for '{topic}' within {timeout_ms} ms")]
    Timeout {
        request: &'static str,
        topic: String,
        timeout_ms: u64,
    },

    /// A message payload could not be decoded into the table's columns.
    #[error("cannot decode message {id} on topic '{topic}' as {format}: {reason}")]
    Decode {
        topic: String,
        id: MessageId,
        format: &'static str,
        reason: String,
    },

    /// Rows could not be encoded into message payloads.
    #[error("cannot encode rows for topic '{topic}' as {format}: {reason}")]
    Encode {
        topic: String,
        format: &'static str,
        reason: String,
    },

    /// The producer side (pulsar-rs) failed.
    #[error("cannot produce to topic '{topic}': {reason}")]
    Produce { topic: String, reason: String },

    /// The schema registry could not give a topic's schema.
    #[error("schema of topic '{topic}': {reason}")]
    Registry { topic: String, reason: String },

    /// An object store URL is wrong or its store cannot be made.
    #[error("object store '{}': {}", crate::redact::url(.url), crate::redact::text(.reason))]
    ObjectStore { url: String, reason: String },

    /// An in-process (memory) table was misused.
    #[error("{0}")]
    Memory(String),

    /// The embedded pulsar-lite broker could not be found or started.
    #[error("{0}")]
    EmbeddedBroker(String),

    /// An Arrow error while building batches.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),

    /// Corrupt or inconsistent offloaded ledger data.
    #[error(transparent)]
    TieredStorage(#[from] crate::tiered::TieredError),

    /// The admin REST API could not be used.
    #[error("Pulsar admin API at '{}': {}", crate::redact::url(.url), crate::redact::text(.reason))]
    Admin { url: String, reason: String },

    /// An I/O error outside of a connection.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn topic_suffix(topic: &Option<String>) -> String {
    match topic {
        Some(t) => format!(" for '{t}'"),
        None => String::new(),
    }
}

/// Result alias for this crate.
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

impl ConnectorError {
    /// Whether the broker (or its TLS endpoint) refused us: wrong credentials, an untrusted
    /// certificate. Trying again with the same settings gets the same answer.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ConnectorError::Authentication { .. } | ConnectorError::Tls(_)
        )
    }
}
