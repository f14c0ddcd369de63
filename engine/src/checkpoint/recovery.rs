//! Reading a job's latest complete checkpoint back for a restart, at the parallelism the job
//! runs with now: each new instance of an operator gets the key groups it owns from every
//! old instance that held some of them (Flink's rescaling); sources and sinks get the parts
//! of the partitions they read or write.

use std::collections::BTreeMap;

use super::metadata::{CheckpointMetadata, SinkCheckpoint, SourceCheckpoint};
use super::{CheckpointId, CheckpointStore, OperatorState};
use crate::error::{EngineError, Result};
use crate::runtime::KeyGroupRange;

/// A checkpoint as a restarted graph uses it.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Its id; the run's checkpoints count on from it.
    pub id: CheckpointId,
    /// The number of key groups it was taken with.
    pub max_parallelism: u16,
    /// Each source node's instances' parts.
    pub sources: BTreeMap<String, Vec<SourceCheckpoint>>,
    /// Each operator node's instances' states, with the key groups each owned.
    pub operators: BTreeMap<String, Vec<(KeyGroupRange, Option<OperatorState>)>>,
    /// Each sink node's instances' parts.
    pub sinks: BTreeMap<String, Vec<SinkCheckpoint>>,
}

fn normalized(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Restored {
    /// The states an operator instance owning `key_groups` restores: from every old instance
    /// that held some of them, only those key groups' rows.
    pub fn operator_states(
        &self,
        node: &str,
        key_groups: KeyGroupRange,
    ) -> Result<Vec<OperatorState>> {
        let Some(instances) = self.operators.get(node) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (range, state) in instances {
            let Some(state) = state else { continue };
            if !range.overlaps(&key_groups) {
                continue;
            }
            out.push(state.clone().for_key_groups(key_groups)?);
        }
        Ok(out)
    }

    /// Every old instance's part of a source node (each new instance takes the partitions it
    /// reads from them).
    pub fn source_parts(&self, node: &str) -> &[SourceCheckpoint] {
        self.sources
            .get(node)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Every old instance's part of a sink node.
    pub fn sink_parts(&self, node: &str) -> &[SinkCheckpoint] {
        self.sinks.get(node).map(Vec::as_slice).unwrap_or_default()
    }

    /// The checkpoint must have been taken by a graph with these nodes, and the same key
    /// groups.
    pub fn check_shape<'a>(
        &self,
        nodes: impl Iterator<Item = &'a str>,
        max_parallelism: u16,
    ) -> Result<()> {
        let object = format!("checkpoint {}", self.id);
        if self.max_parallelism != max_parallelism {
            return Err(EngineError::Checkpoint {
                object,
                reason: format!(
                    "it was taken with 'pipeline.max-parallelism' = '{}' and the job now has '{max_parallelism}'; key groups cannot be remapped (set it back to {})",
                    self.max_parallelism, self.max_parallelism
                ),
            });
        }
        let nodes: std::collections::BTreeSet<&str> = nodes.collect();
        let unknown: Vec<&String> = self
            .sources
            .keys()
            .chain(self.operators.keys())
            .chain(self.sinks.keys())
            .filter(|n| !nodes.contains(n.as_str()))
            .collect();
        if !unknown.is_empty() {
            return Err(EngineError::Checkpoint {
                object,
                reason: format!(
                    "it holds state of {} that the query's plan does not have; the plan changed (another Magnetar version?)",
                    unknown
                        .iter()
                        .map(|n| format!("'{n}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Ok(())
    }
}

/// The latest complete checkpoint of the job in `store`, if any. It must belong to `sql`
/// (whitespace aside): state of another query would be misread.
pub async fn load_latest(store: &CheckpointStore, sql: &str) -> Result<Option<Restored>> {
    let Some(checkpoint) = store.latest().await? else {
        return Ok(None);
    };
    let object = format!("checkpoint {}", checkpoint.id);
    let metadata = CheckpointMetadata::from_json(&checkpoint.metadata, &object)?;
    if normalized(&metadata.sql) != normalized(&magnetar_sql::redact::statement(sql)) {
        return Err(EngineError::Checkpoint {
            object,
            reason: format!(
                "it belongs to another statement ({}); use another 'pipeline.name', or delete the job's checkpoints to start over",
                metadata.sql.trim()
            ),
        });
    }
    let mut operators = BTreeMap::new();
    for (node, blobs) in &metadata.operators {
        let mut states = Vec::with_capacity(blobs.len());
        for blob in blobs {
            let state = match &blob.blob {
                Some(name) => {
                    let bytes = store.read(&checkpoint, name).await?;
                    Some(
                        OperatorState::decode(&bytes).map_err(|e| EngineError::Checkpoint {
                            object: format!("{object}/{name}"),
                            reason: e.to_string(),
                        })?,
                    )
                }
                None => None,
            };
            states.push((blob.key_groups, state));
        }
        operators.insert(node.clone(), states);
    }
    Ok(Some(Restored {
        id: checkpoint.id,
        max_parallelism: metadata.max_parallelism,
        sources: metadata.sources,
        operators,
        sinks: metadata.sinks,
    }))
}
