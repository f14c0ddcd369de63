//! Exactly-once output to Pulsar without transactions.
//!
//! A checkpoint records, per partition of the output topic, the last entry the broker
//! confirmed before its barrier. After a crash the job restarts from that checkpoint and
//! emits again the results it had produced between the checkpoint and the crash. Before it
//! writes anything, the sink reads the output topic from the recorded entries to its end,
//! keeps a fingerprint (payload, key, event time, properties) of every message its own
//! producer wrote there, and drops each re-emitted message whose fingerprint is still
//! pending, once per copy written. Results are deterministic per input (a window's result for
//! a key is the same whenever it is computed), so the re-emitted ones match exactly.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use magnetar_connectors::EntryPosition;
use magnetar_connectors::pulsar::{PulsarClient, PulsarSource, SourceConfig, TopicName};

use crate::checkpoint::SinkProgress;
use crate::error::{EngineError, Result};

/// A message's identity for replay detection.
pub fn fingerprint<'a>(
    payload: &[u8],
    key: Option<&str>,
    event_time: Option<u64>,
    properties: impl Iterator<Item = (&'a str, &'a str)>,
) -> u64 {
    let mut hasher = DefaultHasher::new();
    payload.hash(&mut hasher);
    key.hash(&mut hasher);
    event_time.filter(|t| *t > 0).hash(&mut hasher);
    let sorted: BTreeMap<&str, &str> = properties.collect();
    sorted.hash(&mut hasher);
    hasher.finish()
}

/// What the crashed run wrote after the restored checkpoint, not yet re-emitted.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    pending: HashMap<u64, u32>,
    remaining: usize,
    /// Where the output ended when it was read: once every pending message was re-emitted,
    /// the output is accounted for up to here (the next checkpoints record it).
    pub tail_end: HashMap<String, EntryPosition>,
    /// Messages dropped because the crashed run had written them.
    pub suppressed: u64,
}

/// Parses a sink progress into entries.
pub fn progress_entries(progress: &SinkProgress) -> Result<HashMap<String, EntryPosition>> {
    progress
        .iter()
        .map(|(topic, text)| {
            let entry =
                text.parse::<EntryPosition>()
                    .map_err(|reason| EngineError::Checkpoint {
                        object: format!("sink progress of '{topic}'"),
                        reason,
                    })?;
            Ok((topic.clone(), entry))
        })
        .collect()
}

fn reader_config(topic: &TopicName, resume: HashMap<String, EntryPosition>) -> SourceConfig {
    SourceConfig {
        resume,
        ..SourceConfig::reading(vec![topic.clone()])
    }
}

/// Where each partition of `topic` ends now (`None`: empty), so a fresh job's first
/// checkpoint knows where its own output begins.
pub async fn topic_ends(
    client: Arc<PulsarClient>,
    topic: &TopicName,
) -> Result<HashMap<String, EntryPosition>> {
    let source = PulsarSource::open(client, reader_config(topic, HashMap::new())).await?;
    let ends = source
        .stop_entries()
        .into_iter()
        .filter_map(|(t, e)| Some((t.to_string(), e?)))
        .collect();
    source.close().await;
    Ok(ends)
}

impl ReplayGuard {
    /// Reads what `producer` wrote to `topic` after `progress`.
    pub async fn read_tail(
        client: Arc<PulsarClient>,
        topic: &TopicName,
        progress: &SinkProgress,
        producer: &str,
    ) -> Result<ReplayGuard> {
        let mut source =
            PulsarSource::open(client, reader_config(topic, progress_entries(progress)?)).await?;
        let mut guard = ReplayGuard {
            tail_end: source
                .stop_entries()
                .into_iter()
                .filter_map(|(t, e)| Some((t.to_string(), e?)))
                .collect(),
            ..ReplayGuard::default()
        };
        let read = async {
            while let Some(chunk) = source.next_chunk(1000).await? {
                for m in chunk
                    .messages
                    .iter()
                    .filter(|m| &*m.producer_name == producer)
                {
                    let fp = fingerprint(
                        &m.payload,
                        m.key.as_deref(),
                        m.event_time.map(|t| t.0),
                        m.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    );
                    *guard.pending.entry(fp).or_default() += 1;
                    guard.remaining += 1;
                }
            }
            Ok::<(), EngineError>(())
        }
        .await;
        source.close().await;
        read?;
        tracing::info!(%topic, messages = guard.remaining, "output written after the checkpoint; re-emitted copies will be dropped");
        Ok(guard)
    }

    /// True (and forgets one copy) when a message with this fingerprint was already written.
    pub fn take(&mut self, fingerprint: u64) -> bool {
        if self.remaining == 0 {
            return false;
        }
        match self.pending.get_mut(&fingerprint) {
            Some(n) if *n > 0 => {
                *n -= 1;
                self.remaining -= 1;
                self.suppressed += 1;
                true
            }
            _ => false,
        }
    }

    /// Messages of the crashed run not (yet) re-emitted.
    pub fn remaining(&self) -> usize {
        self.remaining
    }
}
