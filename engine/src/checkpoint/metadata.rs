//! What a checkpoint's manifest says besides its blobs: the statement it belongs to, every
//! source's positions, which blob holds which operator's state, and the sink's progress.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// A source's positions: per partition, the last message sent downstream before the barrier
/// (`ledger:entry` for Pulsar, a row offset for memory tables).
pub type SourcePositions = BTreeMap<String, String>;

/// A sink's progress: per partition topic, the last entry the broker confirmed before the
/// barrier (`ledger:entry`); empty for sinks that keep none.
pub type SinkProgress = BTreeMap<String, String>;

/// A source's part of a checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SourceCheckpoint {
    /// Where each partition is.
    pub positions: SourcePositions,
    /// The watermark generator's per-partition state, when the source generates watermarks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermarks: Option<serde_json::Value>,
}

/// The job's facts in a checkpoint's manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckpointMetadata {
    /// The job's statement; a checkpoint restores only the same statement.
    pub sql: String,
    /// Each source's part, in pipeline order.
    pub sources: Vec<SourceCheckpoint>,
    /// The blob of each operator's state, in pipeline order (`None`: stateless).
    pub operators: Vec<Option<String>>,
    /// The sink's progress.
    pub sink: SinkProgress,
}

impl CheckpointMetadata {
    /// As stored in the manifest.
    pub fn to_json(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self).map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// From a manifest; `object` names it in errors.
    pub fn from_json(value: &serde_json::Value, object: &str) -> Result<Self> {
        serde_json::from_value(value.clone()).map_err(|e| EngineError::Checkpoint {
            object: object.to_string(),
            reason: format!("unreadable job metadata: {e}"),
        })
    }
}
