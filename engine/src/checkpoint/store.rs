//! The checkpoint store: one directory per checkpoint under the job's prefix in an object
//! store (a local directory, or S3/GCS/Azure by URL). A checkpoint writes its blobs first and
//! its `_MANIFEST` last (names, sizes and CRC32C of the blobs, and the checkpoint's metadata).
//! Only a checkpoint whose manifest is present and whose blobs match it is complete, so a
//! process killed while writing one leaves a torn directory that recovery skips.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// The name of the object that completes a checkpoint.
const MANIFEST: &str = "_MANIFEST";
/// Version of the manifest layout.
const MANIFEST_FORMAT: u32 = 1;

/// A checkpoint's number, increasing over a job's life (also across restarts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CheckpointId(pub u64);

impl std::fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl CheckpointId {
    /// The directory name: zero-padded so that names sort as numbers.
    fn dir_name(self) -> String {
        format!("chk-{:020}", self.0)
    }

    fn from_dir_name(name: &str) -> Option<CheckpointId> {
        name.strip_prefix("chk-")?.parse().ok().map(CheckpointId)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct BlobEntry {
    name: String,
    size: u64,
    crc32c: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    job: String,
    id: CheckpointId,
    created_ms: u64,
    blobs: Vec<BlobEntry>,
    metadata: serde_json::Value,
}

/// A complete checkpoint, as recovery reads it.
#[derive(Clone, Debug)]
pub struct CompleteCheckpoint {
    /// Its number.
    pub id: CheckpointId,
    /// What the job stored with it (source positions, sink progress).
    pub metadata: serde_json::Value,
    /// When it completed (milliseconds since the epoch).
    pub created_ms: u64,
    blobs: Vec<BlobEntry>,
    dir: Path,
}

impl CompleteCheckpoint {
    /// Names of the blobs (operator states) it holds.
    pub fn blob_names(&self) -> impl Iterator<Item = &str> {
        self.blobs.iter().map(|b| b.name.as_str())
    }
}

/// The checkpoints of one job in an object store.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    store: Arc<dyn ObjectStore>,
    /// `{root}/{job}`.
    prefix: Path,
    job: String,
    retained: usize,
    /// The job's directory when the store is a local one: emptied checkpoint directories
    /// are removed too (object stores have no directories to leave behind).
    local_dir: Option<std::path::PathBuf>,
}

fn failed(object: impl std::fmt::Display, reason: impl std::fmt::Display) -> EngineError {
    EngineError::Checkpoint {
        object: object.to_string(),
        reason: reason.to_string(),
    }
}

impl CheckpointStore {
    /// The store at `location` (a `file://`, `s3://`… URL, or a local directory path, created if
    /// missing) for job `job`, keeping the newest `retained` complete checkpoints.
    pub fn open(location: &str, job: &str, retained: usize) -> Result<CheckpointStore> {
        let local = match location.split_once("://") {
            Some(("file", _)) => Some(
                url_of(location)?
                    .to_file_path()
                    .map_err(|()| failed(location, "not a local path"))?,
            ),
            Some(_) => None,
            None => Some(std::path::PathBuf::from(location)),
        };
        if let Some(dir) = local {
            std::fs::create_dir_all(&dir).map_err(|e| failed(location, e))?;
            let store = LocalFileSystem::new_with_prefix(&dir).map_err(|e| failed(location, e))?;
            let mut opened = Self::with_store(Arc::new(store), Path::default(), job, retained);
            opened.local_dir = Some(dir.join(job));
            return Ok(opened);
        }
        let (store, root) = magnetar_connectors::object_url::object_store_for(location)
            .map_err(|e| failed(location, e))?;
        Ok(Self::with_store(store, root, job, retained))
    }

    /// A store over any object store, under `root`.
    pub fn with_store(
        store: Arc<dyn ObjectStore>,
        root: Path,
        job: &str,
        retained: usize,
    ) -> CheckpointStore {
        CheckpointStore {
            store,
            prefix: root.clone().join(job),
            job: job.to_string(),
            retained: retained.max(1),
            local_dir: None,
        }
    }

    fn dir(&self, id: CheckpointId) -> Path {
        self.prefix.clone().join(id.dir_name())
    }

    /// Starts writing checkpoint `id`.
    pub fn begin(&self, id: CheckpointId) -> CheckpointWriter<'_> {
        CheckpointWriter {
            store: self,
            id,
            dir: self.dir(id),
            blobs: Vec::new(),
        }
    }

    /// Every checkpoint directory's id, complete or not, ascending.
    async fn ids(&self) -> Result<Vec<CheckpointId>> {
        let listing = self
            .store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map_err(|e| failed(&self.prefix, e))?;
        let mut ids: Vec<CheckpointId> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().and_then(CheckpointId::from_dir_name))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The checkpoint `id` if it is complete: its manifest reads, and every blob it names
    /// is there with the recorded size. `None` for a torn checkpoint.
    async fn complete(&self, id: CheckpointId) -> Result<Option<CompleteCheckpoint>> {
        let dir = self.dir(id);
        let manifest_path = dir.clone().join(MANIFEST);
        let bytes = match self.store.get(&manifest_path).await {
            Ok(r) => r.bytes().await.map_err(|e| failed(&manifest_path, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(failed(&manifest_path, e)),
        };
        let manifest: Manifest = match serde_json::from_slice(&bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%manifest_path, error = %e, "ignoring a checkpoint with an unreadable manifest");
                return Ok(None);
            }
        };
        if manifest.format != MANIFEST_FORMAT || manifest.id != id {
            tracing::warn!(%manifest_path, "ignoring a checkpoint whose manifest does not match it");
            return Ok(None);
        }
        for blob in &manifest.blobs {
            let path = dir.clone().join(blob.name.as_str());
            match self.store.head(&path).await {
                Ok(meta) if meta.size == blob.size => {}
                Ok(meta) => {
                    tracing::warn!(%path, size = meta.size, expected = blob.size, "ignoring a checkpoint with a blob of the wrong size");
                    return Ok(None);
                }
                Err(object_store::Error::NotFound { .. }) => {
                    tracing::warn!(%path, "ignoring a checkpoint with a missing blob");
                    return Ok(None);
                }
                Err(e) => return Err(failed(&path, e)),
            }
        }
        Ok(Some(CompleteCheckpoint {
            id,
            metadata: manifest.metadata,
            created_ms: manifest.created_ms,
            blobs: manifest.blobs,
            dir,
        }))
    }

    /// The newest complete checkpoint; torn ones (no manifest, missing or short blobs) are
    /// skipped.
    pub async fn latest(&self) -> Result<Option<CompleteCheckpoint>> {
        for id in self.ids().await?.into_iter().rev() {
            if let Some(c) = self.complete(id).await? {
                return Ok(Some(c));
            }
            tracing::info!(job = %self.job, %id, "skipping a torn checkpoint");
        }
        Ok(None)
    }

    /// A blob of a complete checkpoint, checked against its manifest's size and CRC32C.
    pub async fn read(&self, checkpoint: &CompleteCheckpoint, name: &str) -> Result<Bytes> {
        let entry = checkpoint
            .blobs
            .iter()
            .find(|b| b.name == name)
            .ok_or_else(|| {
                failed(
                    &checkpoint.dir,
                    format!("checkpoint {} has no blob '{name}'", checkpoint.id),
                )
            })?;
        let path = checkpoint.dir.clone().join(name);
        let bytes = self
            .store
            .get(&path)
            .await
            .map_err(|e| failed(&path, e))?
            .bytes()
            .await
            .map_err(|e| failed(&path, e))?;
        if bytes.len() as u64 != entry.size || crc32c::crc32c(&bytes) != entry.crc32c {
            return Err(failed(
                &path,
                format!(
                    "{} bytes with CRC32C {:08x}; the manifest recorded {} bytes with CRC32C {:08x}",
                    bytes.len(),
                    crc32c::crc32c(&bytes),
                    entry.size,
                    entry.crc32c
                ),
            ));
        }
        Ok(bytes)
    }

    /// Deletes every checkpoint older than the newest `retained` complete ones (torn ones
    /// among them too).
    async fn prune(&self) -> Result<()> {
        let ids = self.ids().await?;
        let mut complete = Vec::new();
        for &id in ids.iter().rev() {
            if complete.len() == self.retained {
                break;
            }
            if self.complete(id).await?.is_some() {
                complete.push(id);
            }
        }
        let Some(&oldest_kept) = complete.last() else {
            return Ok(());
        };
        for id in ids.into_iter().filter(|id| *id < oldest_kept) {
            let dir = self.dir(id);
            let objects: Vec<Path> = self
                .store
                .list(Some(&dir))
                .map_ok(|m| m.location)
                .try_collect()
                .await
                .map_err(|e| failed(&dir, e))?;
            // The manifest first: a half-deleted checkpoint must not look complete.
            let mut ordered: Vec<&Path> = objects
                .iter()
                .filter(|p| p.filename() == Some(MANIFEST))
                .collect();
            ordered.extend(objects.iter().filter(|p| p.filename() != Some(MANIFEST)));
            for path in ordered {
                match self.store.delete(path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(failed(path, e)),
                }
            }
            if let Some(local) = &self.local_dir {
                // Best effort: an empty directory left behind is harmless.
                let _ = std::fs::remove_dir(local.join(id.dir_name()));
            }
        }
        Ok(())
    }
}

fn url_of(location: &str) -> Result<url::Url> {
    url::Url::parse(location).map_err(|e| failed(location, format!("not a URL: {e}")))
}

/// Writes one checkpoint: blobs, then the manifest.
#[derive(Debug)]
pub struct CheckpointWriter<'a> {
    store: &'a CheckpointStore,
    id: CheckpointId,
    dir: Path,
    blobs: Vec<BlobEntry>,
}

impl CheckpointWriter<'_> {
    /// Writes a blob (an operator's state, a source's positions).
    pub async fn put(&mut self, name: &str, bytes: Bytes) -> Result<()> {
        if name.is_empty() || name.contains('/') || name == MANIFEST {
            return Err(EngineError::Internal(format!(
                "invalid checkpoint blob name '{name}'"
            )));
        }
        let path = self.dir.clone().join(name);
        let entry = BlobEntry {
            name: name.to_string(),
            size: bytes.len() as u64,
            crc32c: crc32c::crc32c(&bytes),
        };
        self.store
            .store
            .put(&path, PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| failed(&path, e))?;
        self.blobs.retain(|b| b.name != name);
        self.blobs.push(entry);
        Ok(())
    }

    /// Writes the manifest, which makes the checkpoint complete, then deletes checkpoints
    /// beyond the retained count.
    pub async fn commit(self, metadata: serde_json::Value) -> Result<CompleteCheckpoint> {
        let created_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            job: self.store.job.clone(),
            id: self.id,
            created_ms,
            blobs: self.blobs.clone(),
            metadata: metadata.clone(),
        };
        let path = self.dir.clone().join(MANIFEST);
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| failed(&path, e))?;
        self.store
            .store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| failed(&path, e))?;
        self.store.prune().await?;
        Ok(CompleteCheckpoint {
            id: self.id,
            metadata,
            created_ms,
            blobs: self.blobs,
            dir: self.dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    async fn commit(store: &CheckpointStore, id: u64, state: &str) -> CompleteCheckpoint {
        let mut w = store.begin(CheckpointId(id));
        w.put("window-0", Bytes::from(state.to_string()))
            .await
            .expect("put");
        w.put("source-0", Bytes::from(format!("positions of {id}")))
            .await
            .expect("put");
        w.commit(json!({"positions": {"clicks-partition-0": format!("7:{id}:0")}}))
            .await
            .expect("commit")
    }

    fn chk_dir(root: &std::path::Path, id: u64) -> std::path::PathBuf {
        root.join("job").join(CheckpointId(id).dir_name())
    }

    #[tokio::test]
    async fn the_newest_complete_checkpoint_is_restored_and_torn_ones_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            CheckpointStore::open(dir.path().to_str().expect("utf-8"), "job", 3).expect("store");
        assert!(store.latest().await.expect("list").is_none());
        commit(&store, 1, "state one").await;
        commit(&store, 2, "state two").await;

        // Killed while writing checkpoint 3: its blob is there, its manifest is not.
        let mut torn = store.begin(CheckpointId(3));
        torn.put("window-0", Bytes::from_static(b"half"))
            .await
            .expect("put");
        drop(torn);
        let latest = store.latest().await.expect("list").expect("a checkpoint");
        assert_eq!(latest.id, CheckpointId(2));
        assert_eq!(latest.metadata["positions"]["clicks-partition-0"], "7:2:0");
        let state = store.read(&latest, "window-0").await.expect("read");
        assert_eq!(&state[..], b"state two");
        assert_eq!(
            latest.blob_names().collect::<Vec<_>>(),
            ["window-0", "source-0"]
        );

        // A blob cut short after the manifest was written: checkpoint 2 is torn too.
        std::fs::write(chk_dir(dir.path(), 2).join("window-0"), b"state").expect("truncate");
        let latest = store.latest().await.expect("list").expect("a checkpoint");
        assert_eq!(latest.id, CheckpointId(1));

        // Same size, other bytes: found when read, naming the object.
        std::fs::write(chk_dir(dir.path(), 1).join("window-0"), b"STATE ONE").expect("flip");
        let err = store
            .read(&latest, "window-0")
            .await
            .expect_err("checksum")
            .to_string();
        assert!(err.contains("chk-00000000000000000001/window-0"), "{err}");
        assert!(err.contains("CRC32C"), "{err}");
    }

    #[tokio::test]
    async fn old_checkpoints_are_deleted_beyond_the_retained_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            CheckpointStore::open(dir.path().to_str().expect("utf-8"), "job", 2).expect("store");
        for id in 1..=3 {
            commit(&store, id, "s").await;
        }
        // A torn checkpoint older than the retained ones goes too.
        let mut torn = store.begin(CheckpointId(4));
        torn.put("window-0", Bytes::from_static(b"x"))
            .await
            .expect("put");
        drop(torn);
        commit(&store, 5, "s").await;
        commit(&store, 6, "s").await;
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("job"))
            .expect("job dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [CheckpointId(5).dir_name(), CheckpointId(6).dir_name()]
        );
    }

    #[tokio::test]
    async fn object_store_urls_work_the_same() {
        let store = CheckpointStore::open("memory:///checkpoints", "job", 2).expect("store");
        commit(&store, 7, "in memory").await;
        let latest = store.latest().await.expect("list").expect("a checkpoint");
        assert_eq!(latest.id, CheckpointId(7));
        assert_eq!(
            &store.read(&latest, "window-0").await.expect("read")[..],
            b"in memory"
        );
        let err = CheckpointStore::open("nope://x", "job", 2)
            .expect_err("unknown scheme")
            .to_string();
        assert!(err.contains("nope://x"), "{err}");
    }
}
