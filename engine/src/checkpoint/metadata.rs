//! What a checkpoint's manifest says besides its blobs: the statement it belongs to, the
//! number of key groups, and per node of the job graph (named by its stable id) each
//! instance's part: a source's positions and watermark state, the blob and key groups of an
//! operator's state, a sink's progress.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::runtime::KeyGroupRange;

/// Version of the metadata layout (1 was the single-chain layout before the dataflow graph).
pub const METADATA_FORMAT: u32 = 2;

/// A source instance's positions: per partition (or split), the last message sent
/// downstream before the barrier (`ledger:entry` for Pulsar, a row offset for memory tables).
pub type SourcePositions = BTreeMap<String, String>;

/// A sink's progress: per partition topic, the last entry the broker confirmed before the
/// barrier (`ledger:entry`); empty for sinks that keep none.
pub type SinkProgress = BTreeMap<String, String>;

/// A source instance's part of a checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SourceCheckpoint {
    /// Where each of its partitions is.
    pub positions: SourcePositions,
    /// Watermark state per partition, when the source generates watermarks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermarks: Option<serde_json::Value>,
}

/// A sink instance's part of a checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SinkCheckpoint {
    /// The instance's producer, whose messages mark its output (exactly-once sinks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<String>,
    /// What the broker confirmed of that producer.
    pub progress: SinkProgress,
    /// Results of a crashed run not re-emitted yet at this barrier, which the next restore
    /// must still drop (reported by the instance that completed the barrier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replays: Option<CarriedReplays>,
}

/// Results of a crashed run, by fingerprint, still to be dropped when re-emitted.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CarriedReplays {
    /// The epoch (of the run that took the checkpoint) they were counted at; a restore
    /// uses the newest count.
    pub epoch: u64,
    /// Their fingerprints, one per copy.
    pub fingerprints: Vec<u64>,
}

/// Where an operator instance's state is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OperatorBlob {
    /// The instance.
    pub instance: usize,
    /// The key groups it owned.
    pub key_groups: KeyGroupRange,
    /// Its state's blob (`None`: it held none).
    pub blob: Option<String>,
}

/// The job's facts in a checkpoint's manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckpointMetadata {
    /// [`METADATA_FORMAT`].
    pub format: u32,
    /// The job's statement; a checkpoint restores only the same statement.
    pub sql: String,
    /// The number of key groups (`pipeline.max-parallelism`).
    pub max_parallelism: u16,
    /// Each source node's instances' parts.
    pub sources: BTreeMap<String, Vec<SourceCheckpoint>>,
    /// Each operator node's instances' states.
    pub operators: BTreeMap<String, Vec<OperatorBlob>>,
    /// Each sink node's instances' parts.
    pub sinks: BTreeMap<String, Vec<SinkCheckpoint>>,
}

impl CheckpointMetadata {
    /// As stored in the manifest.
    pub fn to_json(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self).map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// From a manifest; `object` names it in errors.
    pub fn from_json(value: &serde_json::Value, object: &str) -> Result<Self> {
        let format = value["format"].as_u64().unwrap_or(1);
        if format != u64::from(METADATA_FORMAT) {
            return Err(EngineError::Checkpoint {
                object: object.to_string(),
                reason: format!(
                    "it was written in layout {format}, this Magnetar reads layout {METADATA_FORMAT} (the dataflow-graph layout); delete the job's checkpoints, or use another 'pipeline.name', to start over"
                ),
            });
        }
        serde_json::from_value(value.clone()).map_err(|e| EngineError::Checkpoint {
            object: object.to_string(),
            reason: format!("unreadable job metadata: {e}"),
        })
    }
}
