//! Exactly-once output to Pulsar without transactions.
//!
//! Every sink instance writes through its own producer (`<job prefix><instance>`), and a
//! checkpoint records, per producer and output partition, the last entry the broker confirmed
//! before the barrier (or, for a partition it has not written, the partition's end when the
//! instance started). After a crash the job restarts from that checkpoint and emits again the
//! results it produced between the checkpoint and the crash. Before anything is written, the
//! sink reads the output topic from the least recorded entry on, keeps a fingerprint
//! (payload, key, event time, properties) of every message the job's producers wrote after
//! their own recorded entry (a producer the checkpoint does not know wrote only after it), and
//! drops each re-emitted message whose fingerprint is still pending, once per copy. Results
//! are deterministic per key (a window's result for a key is the same whenever and wherever it
//! is computed), so the re-emitted ones match exactly, whichever instance emits them.
//!
//! The guard is shared by the sink's instances. Replays still pending at a barrier are
//! carried in the checkpoint (counted once every instance has passed the barrier), so a crash
//! before all of them were re-emitted loses none.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use magnetar_connectors::EntryPosition;
use magnetar_connectors::pulsar::{PulsarClient, PulsarSource, SourceConfig, TopicName};

use crate::checkpoint::{CarriedReplays, SinkCheckpoint, SinkProgress};
use crate::error::{EngineError, Result};
use crate::runtime::Epoch;

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

/// A guard shared by a sink's instances.
pub type SharedReplayGuard = Arc<Mutex<ReplayGuard>>;

/// What a crashed run wrote after the restored checkpoint, not yet re-emitted.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    pending: HashMap<u64, u32>,
    remaining: usize,
    /// Per instance: replays it took since its last barrier.
    taken: Vec<Vec<u64>>,
    /// Barriers not yet passed by every live instance: how many did, and what they took
    /// before it.
    epochs: BTreeMap<Epoch, (usize, Vec<u64>)>,
    /// Replays not re-emitted before the last barrier every instance passed.
    carried: HashMap<u64, u32>,
    /// Instances still running.
    live: usize,
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

/// Where each partition of `topic` ends now (partitions with no message left out), so an
/// instance's first checkpoint knows where its own output begins.
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

fn counts(fingerprints: impl IntoIterator<Item = u64>) -> HashMap<u64, u32> {
    let mut out: HashMap<u64, u32> = HashMap::new();
    for fp in fingerprints {
        *out.entry(fp).or_default() += 1;
    }
    out
}

fn remove(from: &mut HashMap<u64, u32>, fingerprint: u64) {
    if let Some(n) = from.get_mut(&fingerprint) {
        *n -= 1;
        if *n == 0 {
            from.remove(&fingerprint);
        }
    }
}

impl ReplayGuard {
    /// A guard with nothing pending, for `instances` instances.
    pub fn empty(instances: usize) -> ReplayGuard {
        ReplayGuard {
            taken: vec![Vec::new(); instances],
            live: instances,
            ..ReplayGuard::default()
        }
    }

    /// Reads what the job's producers (named `producer_prefix` and an instance number)
    /// wrote to `topic` after the restored checkpoint's `parts` recorded them, and adds the
    /// replays the checkpoint carried.
    pub async fn read_tail(
        client: Arc<PulsarClient>,
        topic: &TopicName,
        parts: &[SinkCheckpoint],
        producer_prefix: &str,
        instances: usize,
    ) -> Result<ReplayGuard> {
        let mut recorded: HashMap<(String, String), EntryPosition> = HashMap::new();
        let mut floor: HashMap<String, EntryPosition> = HashMap::new();
        for part in parts {
            for (partition, entry) in progress_entries(&part.progress)? {
                if let Some(producer) = &part.producer {
                    recorded.insert((producer.clone(), partition.clone()), entry);
                }
                floor
                    .entry(partition)
                    .and_modify(|f| *f = (*f).min(entry))
                    .or_insert(entry);
            }
        }
        let mut source = PulsarSource::open(client, reader_config(topic, floor)).await?;
        let mut tail = Vec::new();
        let read = async {
            while let Some(chunk) = source.next_chunk(1000).await? {
                for m in &chunk.messages {
                    if !m.producer_name.starts_with(producer_prefix) {
                        continue;
                    }
                    let mine = recorded.get(&(m.producer_name.to_string(), m.topic.to_string()));
                    if mine.is_some_and(|at| m.id.entry() <= *at) {
                        continue;
                    }
                    tail.push(fingerprint(
                        &m.payload,
                        m.key.as_deref(),
                        m.event_time.map(|t| t.0),
                        m.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    ));
                }
            }
            Ok::<(), EngineError>(())
        }
        .await;
        source.close().await;
        read?;
        let carried = parts
            .iter()
            .filter_map(|p| p.replays.as_ref())
            .max_by_key(|r| r.epoch)
            .map(|r| r.fingerprints.clone())
            .unwrap_or_default();
        tracing::info!(%topic, written = tail.len(), carried = carried.len(), "output written after the checkpoint; re-emitted copies will be dropped");
        let all: Vec<u64> = tail.into_iter().chain(carried).collect();
        let mut guard = ReplayGuard::empty(instances);
        guard.remaining = all.len();
        guard.pending = counts(all.iter().copied());
        guard.carried = counts(all);
        Ok(guard)
    }

    /// True (and forgets one copy) when a message with this fingerprint was already
    /// written; `instance` is the sink instance asking.
    pub fn take(&mut self, instance: usize, fingerprint: u64) -> bool {
        if self.remaining == 0 {
            return false;
        }
        match self.pending.get_mut(&fingerprint) {
            Some(n) if *n > 0 => {
                *n -= 1;
                self.remaining -= 1;
                self.suppressed += 1;
                if let Some(taken) = self.taken.get_mut(instance) {
                    taken.push(fingerprint);
                }
                true
            }
            _ => false,
        }
    }

    /// Instance `instance` passed barrier `epoch`. When it is the last live instance to
    /// pass it, returns the replays still pending as of that barrier, for the checkpoint.
    pub fn barrier(&mut self, instance: usize, epoch: Epoch) -> Option<CarriedReplays> {
        let taken = self
            .taken
            .get_mut(instance)
            .map(std::mem::take)
            .unwrap_or_default();
        let entry = self.epochs.entry(epoch).or_default();
        entry.0 += 1;
        entry.1.extend(taken);
        self.settle_epochs(Some(epoch))
    }

    /// Instance `instance` ended: later barriers do not wait for it.
    pub fn finished(&mut self, _instance: usize) {
        self.live = self.live.saturating_sub(1);
        self.settle_epochs(None);
    }

    fn settle_epochs(&mut self, report: Option<Epoch>) -> Option<CarriedReplays> {
        let mut out = None;
        while let Some((&epoch, (passed, _))) = self.epochs.first_key_value() {
            if *passed < self.live {
                break;
            }
            let (_, taken) = self.epochs.remove(&epoch).unwrap_or_default();
            for fp in taken {
                remove(&mut self.carried, fp);
            }
            if report == Some(epoch) {
                out = Some(CarriedReplays {
                    epoch: epoch.0,
                    fingerprints: self
                        .carried
                        .iter()
                        .flat_map(|(fp, n)| std::iter::repeat_n(*fp, *n as usize))
                        .collect(),
                });
            }
        }
        out
    }

    /// Messages of the crashed run not (yet) re-emitted.
    pub fn remaining(&self) -> usize {
        self.remaining
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_taken_after_a_barrier_stay_pending_in_its_checkpoint() {
        let mut guard = ReplayGuard::empty(2);
        guard.pending = counts([1, 2, 2, 3]);
        guard.carried = guard.pending.clone();
        guard.remaining = 4;
        assert!(guard.take(0, 1));
        assert!(!guard.take(0, 9), "not a replay");
        // Instance 0 passes barrier 1 having taken 1; instance 1 takes a 2 before it and
        // another 2 after it.
        assert_eq!(
            guard.barrier(0, Epoch(1)),
            None,
            "instance 1 has not passed it"
        );
        assert!(guard.take(1, 2));
        let carried = guard
            .barrier(1, Epoch(1))
            .expect("the last instance reports");
        let mut fps = carried.fingerprints.clone();
        fps.sort();
        assert_eq!(fps, vec![2, 3]);
        assert!(guard.take(1, 2));
        assert!(guard.take(0, 3));
        assert_eq!(guard.remaining(), 0);
        assert!(!guard.take(0, 3), "each copy once");
        assert_eq!(guard.barrier(1, Epoch(2)), None);
        guard.finished(1);
        let carried = guard.barrier(0, Epoch(3));
        assert_eq!(carried.map(|c| c.fingerprints), Some(vec![]));
    }
}
