//! Reading a job's latest complete checkpoint back for a restart.

use super::metadata::{CheckpointMetadata, SinkProgress, SourceCheckpoint};
use super::{CheckpointId, CheckpointStore, OperatorState};
use crate::error::{EngineError, Result};

/// A checkpoint as a restarted pipeline uses it.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Its id; the run's checkpoints count on from it.
    pub id: CheckpointId,
    /// Each source's part, in pipeline order.
    pub sources: Vec<SourceCheckpoint>,
    /// Each operator's state, in pipeline order (`None`: nothing to restore).
    pub operators: Vec<Option<OperatorState>>,
    /// The sink's progress.
    pub sink: SinkProgress,
}

fn normalized(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The latest complete checkpoint of the job in `store`, if any. It must belong to `sql`
/// (whitespace aside): state of another query would be misread.
pub async fn load_latest(store: &CheckpointStore, sql: &str) -> Result<Option<Restored>> {
    let Some(checkpoint) = store.latest().await? else {
        return Ok(None);
    };
    let object = format!("checkpoint {}", checkpoint.id);
    let metadata = CheckpointMetadata::from_json(&checkpoint.metadata, &object)?;
    if normalized(&metadata.sql) != normalized(sql) {
        return Err(EngineError::Checkpoint {
            object,
            reason: format!(
                "it belongs to another statement ({}); use another 'pipeline.name', or delete the job's checkpoints to start over",
                metadata.sql.trim()
            ),
        });
    }
    let mut operators = Vec::with_capacity(metadata.operators.len());
    for blob in &metadata.operators {
        operators.push(match blob {
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
        });
    }
    Ok(Some(Restored {
        id: checkpoint.id,
        sources: metadata.sources,
        operators,
        sink: metadata.sink,
    }))
}
