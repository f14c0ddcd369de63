//! The positions Magnetar acknowledged, per durable subscription and partition.
//!
//! A broker's cursor is not enough: pulsar-lite does not report a subscription's
//! mark-delete position (so a bounded read could not tell that a resumed subscription is
//! already at the end), and it has been seen to lose cursors. Sources use the remembered
//! position as a floor: nothing at or before it is read again.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::message_id::EntryPosition;

/// Identifies one partition of one subscription on one cluster.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PositionKey {
    /// Service URL.
    pub service_url: String,
    /// Subscription name.
    pub subscription: String,
    /// Topic partition name.
    pub topic: String,
}

impl PositionKey {
    fn as_text(&self) -> String {
        format!("{}|{}|{}", self.service_url, self.subscription, self.topic)
    }
}

/// Where acknowledged positions are remembered.
pub trait PositionStore: Debug + Send + Sync {
    /// The last entry acknowledged for `key`.
    fn load(&self, key: &PositionKey) -> Option<EntryPosition>;
    /// Remembers that everything up to `position` was acknowledged.
    fn store(&self, key: &PositionKey, position: EntryPosition);
    /// Makes remembered positions durable (no-op for memory).
    fn flush(&self) {}
}

/// Positions kept in memory, optionally saved to a JSON file (at most once a second, and
/// on [`PositionStore::flush`]).
#[derive(Debug)]
pub struct PositionFile {
    path: Option<PathBuf>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    positions: BTreeMap<String, EntryPosition>,
    dirty: bool,
    saved: Instant,
}

/// How often positions are written to the file at most.
const SAVE_INTERVAL: Duration = Duration::from_secs(1);

impl PositionFile {
    /// Positions in memory only.
    pub fn in_memory() -> Self {
        Self::new(None)
    }

    /// Positions saved to `path` (loaded from it if it exists).
    pub fn at(path: PathBuf) -> Self {
        Self::new(Some(path))
    }

    fn new(path: Option<PathBuf>) -> Self {
        let positions = path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| serde_json::from_str::<BTreeMap<String, String>>(&text).ok())
            .map(|raw| {
                raw.into_iter()
                    .filter_map(|(k, v)| {
                        let (l, e) = v.split_once(':')?;
                        Some((
                            k,
                            EntryPosition {
                                ledger_id: l.parse().ok()?,
                                entry_id: e.parse().ok()?,
                            },
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            path,
            state: Mutex::new(State {
                positions,
                dirty: false,
                saved: Instant::now(),
            }),
        }
    }

    fn save(&self, state: &mut State) {
        let Some(path) = &self.path else {
            state.dirty = false;
            return;
        };
        let raw: BTreeMap<&String, String> = state
            .positions
            .iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        let Ok(text) = serde_json::to_string_pretty(&raw) else {
            return;
        };
        // Write then rename, so a crash leaves the old file or the new one, never half.
        let tmp = path.with_extension("tmp");
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&tmp, text))
            .and_then(|()| std::fs::rename(&tmp, path));
        match written {
            Ok(()) => {
                state.dirty = false;
                state.saved = Instant::now();
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot save subscription positions")
            }
        }
    }
}

impl PositionStore for PositionFile {
    fn load(&self, key: &PositionKey) -> Option<EntryPosition> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .positions
            .get(&key.as_text())
            .copied()
    }

    fn store(&self, key: &PositionKey, position: EntryPosition) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let entry = state.positions.entry(key.as_text()).or_insert(position);
        if *entry < position {
            *entry = position;
        }
        state.dirty = true;
        if state.saved.elapsed() >= SAVE_INTERVAL {
            self.save(&mut state);
        }
    }

    fn flush(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.dirty {
            self.save(&mut state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(topic: &str) -> PositionKey {
        PositionKey {
            service_url: "pulsar://h:6650".into(),
            subscription: "s".into(),
            topic: topic.into(),
        }
    }

    #[test]
    fn keeps_the_highest_position_and_survives_a_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("positions.json");
        let store = PositionFile::at(path.clone());
        let p = |l, e| EntryPosition {
            ledger_id: l,
            entry_id: e,
        };
        store.store(&key("a"), p(1, 5));
        store.store(&key("a"), p(1, 3));
        store.store(&key("b"), p(2, 0));
        assert_eq!(store.load(&key("a")), Some(p(1, 5)));
        store.flush();
        let reloaded = PositionFile::at(path);
        assert_eq!(reloaded.load(&key("a")), Some(p(1, 5)));
        assert_eq!(reloaded.load(&key("b")), Some(p(2, 0)));
        assert_eq!(reloaded.load(&key("c")), None);
    }

    #[test]
    fn a_corrupt_file_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("positions.json");
        std::fs::write(&path, "{ not json").expect("write");
        assert_eq!(PositionFile::at(path).load(&key("a")), None);
    }
}
