//! Finding a topic's offloaded ledgers (storage formats §5.5): through the admin REST API
//! (`internal-info` for the offload UUIDs, `internalStats` for which offloads completed),
//! or with bucket access alone, by listing the bucket and reading each index object's
//! `pulsar/managed-ledger` metadata.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Deserialize;

use super::TieredError;
use super::index::OffloadIndex;
use super::object_keys::{data_object_key, index_object_key, managed_ledger_name, parse_index_key};
use crate::error::{ConnectorError, Result};
use crate::pulsar::TopicName;

/// Index objects fetched at once while listing a bucket.
const INDEX_FETCH_CONCURRENCY: usize = 16;

/// One offloaded ledger: its objects and parsed index.
#[derive(Clone, Debug)]
pub struct OffloadedLedger {
    /// BookKeeper ledger id.
    pub ledger_id: u64,
    /// The offload attempt's UUID.
    pub uuid: String,
    /// The data object.
    pub data_object: Path,
    /// The index object.
    pub index_object: Path,
    /// The parsed index.
    pub index: Arc<OffloadIndex>,
}

/// A bucket (or directory) holding offloaded ledgers, and how to find a topic's ledgers.
#[derive(Debug, Clone)]
pub struct TieredStorage {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    admin_url: Option<reqwest::Url>,
    http: reqwest::Client,
    /// The table's credentials, for the admin API.
    auth: Option<crate::pulsar::Authentication>,
}

#[derive(Deserialize)]
struct InternalInfo {
    #[serde(default)]
    ledgers: Vec<InfoLedger>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InfoLedger {
    ledger_id: u64,
    #[serde(default)]
    offloaded_context_uuid: Option<String>,
}

#[derive(Deserialize)]
struct InternalStats {
    #[serde(default)]
    ledgers: Vec<StatsLedger>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatsLedger {
    ledger_id: u64,
    #[serde(default)]
    offloaded: bool,
}

impl TieredStorage {
    /// Storage at `url` (`s3://bucket?endpoint=...`, `file:///dir`, `gs://...`, `az://...`);
    /// with `admin_url`, ledgers are found through the admin REST API.
    pub fn open(url: &str, admin_url: Option<&str>) -> Result<TieredStorage> {
        Self::open_with_security(url, admin_url, &crate::pulsar::ClientSecurity::default())
    }

    /// [`Self::open`], calling the admin API with the table's TLS trust and token.
    pub fn open_with_security(
        url: &str,
        admin_url: Option<&str>,
        security: &crate::pulsar::ClientSecurity,
    ) -> Result<TieredStorage> {
        let (store, prefix) = crate::object_url::object_store_for(url)?;
        let admin_url = admin_url
            .map(|a| {
                reqwest::Url::parse(a).map_err(|e| ConnectorError::Admin {
                    url: a.to_string(),
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        let http = match &admin_url {
            Some(a) => {
                crate::admin::http_client(a, security).map_err(|reason| ConnectorError::Admin {
                    url: a.to_string(),
                    reason,
                })?
            }
            None => reqwest::Client::new(),
        };
        Ok(TieredStorage {
            url: url.to_string(),
            store,
            prefix,
            admin_url,
            http,
            auth: security.auth.clone(),
        })
    }

    /// Storage in an already built store (tests, benchmarks, embedding).
    pub fn with_store(url: &str, store: Arc<dyn ObjectStore>, prefix: Path) -> TieredStorage {
        TieredStorage {
            url: url.to_string(),
            store,
            prefix,
            admin_url: None,
            http: reqwest::Client::new(),
            auth: None,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The URL it was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, key: &str) -> Path {
        if self.prefix.as_ref().is_empty() {
            Path::from(key)
        } else {
            self.prefix.clone().join(key)
        }
    }

    fn store_error(&self, e: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::ObjectStore {
            url: self.url.clone(),
            reason: e.to_string(),
        }
    }

    /// The offloaded ledgers of each of `topics` (partitions), ascending by ledger id.
    pub async fn offloaded_ledgers(
        &self,
        topics: &[TopicName],
    ) -> Result<HashMap<TopicName, Vec<OffloadedLedger>>> {
        let mut out = HashMap::new();
        if self.admin_url.is_some() {
            for topic in topics {
                out.insert(topic.clone(), self.find_via_admin(topic).await?);
            }
            return Ok(out);
        }
        let wanted: HashMap<String, &TopicName> =
            topics.iter().map(|t| (managed_ledger_name(t), t)).collect();
        let mut found = self
            .find_in_bucket(&wanted.keys().cloned().collect())
            .await?;
        for (name, topic) in wanted {
            out.insert(topic.clone(), found.remove(&name).unwrap_or_default());
        }
        Ok(out)
    }

    /// The ids of `topic`'s ledgers, offloaded or not, ascending, as the admin API's
    /// `internalStats` lists them; empty without an admin URL (a bucket holds only the
    /// offloaded ones). A backfill hands over to the broker at the first one after the last
    /// offloaded ledger: real brokers roll ledgers over, so the broker's part of a topic
    /// usually continues in a later ledger.
    pub async fn ledger_ids(&self, topic: &TopicName) -> Result<Vec<u64>> {
        if self.admin_url.is_none() {
            return Ok(Vec::new());
        }
        let stats: InternalStats = self.admin_json(topic, "internalStats").await?;
        let mut ids: Vec<u64> = stats.ledgers.iter().map(|l| l.ledger_id).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Reads and parses an index object.
    pub async fn read_index(&self, object: &Path) -> Result<OffloadIndex> {
        let bytes = self
            .store
            .get(object)
            .await
            .map_err(|e| self.store_error(format!("GET {object}: {e}")))?
            .bytes()
            .await
            .map_err(|e| self.store_error(format!("GET {object}: {e}")))?;
        Ok(OffloadIndex::parse(object.as_ref(), bytes)?)
    }

    async fn admin_json<T: for<'de> Deserialize<'de>>(
        &self,
        topic: &TopicName,
        what: &str,
    ) -> Result<T> {
        let base = self
            .admin_url
            .as_ref()
            .ok_or_else(|| ConnectorError::Admin {
                url: String::new(),
                reason: "no admin URL".into(),
            })?;
        let (tenant, namespace) = topic.tenant_and_namespace();
        let mut url = base.clone();
        let fail = |reason: String| ConnectorError::Admin {
            url: base.to_string(),
            reason: format!("{what} of '{topic}': {reason}"),
        };
        url.path_segments_mut()
            .map_err(|_| fail("the admin URL cannot take a path".into()))?
            .pop_if_empty()
            .extend([
                "admin",
                "v2",
                "persistent",
                tenant,
                namespace,
                topic.local_name(),
                what,
            ]);
        let text = crate::admin::get_text(&self.http, &url, self.auth.as_ref())
            .await
            .map_err(fail)?
            .ok_or_else(|| fail(format!("GET {url}: HTTP 404 Not Found")))?;
        serde_json::from_str(&text).map_err(|e| fail(format!("GET {url}: unexpected JSON: {e}")))
    }

    /// `internal-info` names each offload's UUID; `internalStats` says whether it completed
    /// (only completed offloads are read: an attempt's objects may be partial).
    async fn find_via_admin(&self, topic: &TopicName) -> Result<Vec<OffloadedLedger>> {
        let info: InternalInfo = self.admin_json(topic, "internal-info").await?;
        let stats: InternalStats = self.admin_json(topic, "internalStats").await?;
        let complete: HashSet<u64> = stats
            .ledgers
            .iter()
            .filter(|l| l.offloaded)
            .map(|l| l.ledger_id)
            .collect();
        let expected = managed_ledger_name(topic);
        let mut ledgers = Vec::new();
        for ledger in info.ledgers {
            let Some(uuid) = ledger.offloaded_context_uuid else {
                continue;
            };
            if !complete.contains(&ledger.ledger_id) {
                continue;
            }
            let index_object = self.path(&index_object_key(&uuid, ledger.ledger_id));
            let index = self.read_index(&index_object).await?;
            if let Some(name) = index.managed_ledger_name()
                && name != expected
            {
                return Err(TieredError::new(
                    index_object.as_ref(),
                    0,
                    format!("index belongs to managed ledger '{name}', not '{expected}'"),
                )
                .into());
            }
            ledgers.push(OffloadedLedger {
                ledger_id: ledger.ledger_id,
                data_object: self.path(&data_object_key(&uuid, ledger.ledger_id)),
                index_object,
                uuid,
                index: Arc::new(index),
            });
        }
        ledgers.sort_by_key(|l| l.ledger_id);
        Ok(ledgers)
    }

    /// Lists the bucket: every `{uuid}-ledger-{id}-index` whose data object exists too
    /// (the index is written last), mapped to its managed ledger by its own metadata.
    async fn find_in_bucket(
        &self,
        wanted: &HashSet<String>,
    ) -> Result<HashMap<String, Vec<OffloadedLedger>>> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let listed: Vec<object_store::ObjectMeta> = self
            .store
            .list(prefix)
            .try_collect()
            .await
            .map_err(|e| self.store_error(format!("listing: {e}")))?;
        let names: HashSet<String> = listed
            .iter()
            .filter_map(|m| m.location.filename().map(str::to_string))
            .collect();
        let candidates: Vec<(String, u64, Path, Modified)> = listed
            .iter()
            .filter_map(|m| {
                let (uuid, ledger) = parse_index_key(m.location.filename()?)?;
                names
                    .contains(&data_object_key(&uuid, ledger))
                    .then(|| (uuid, ledger, m.location.clone(), modified(m)))
            })
            .collect();
        let parsed: Vec<_> = futures::stream::iter(candidates)
            .map(|(uuid, ledger, path, modified)| async move {
                let index = self.read_index(&path).await?;
                Ok::<_, ConnectorError>((uuid, ledger, path, modified, index))
            })
            .buffer_unordered(INDEX_FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        // Per managed ledger and ledger id, the latest complete attempt (several UUIDs can
        // exist after retried offloads whose cleanup failed; a closed ledger's entries are
        // the same in each).
        let mut chosen: HashMap<String, BTreeMap<u64, (Modified, OffloadedLedger)>> =
            HashMap::new();
        for (uuid, ledger_id, index_object, modified, index) in parsed {
            let Some(name) = index.managed_ledger_name() else {
                continue;
            };
            if !wanted.contains(&name) {
                continue;
            }
            let ledger = OffloadedLedger {
                ledger_id,
                data_object: self.path(&data_object_key(&uuid, ledger_id)),
                index_object,
                uuid,
                index: Arc::new(index),
            };
            let slot = chosen.entry(name).or_default();
            match slot.get(&ledger_id) {
                Some((seen, _)) if *seen >= modified => {}
                _ => {
                    slot.insert(ledger_id, (modified, ledger));
                }
            }
        }
        Ok(chosen
            .into_iter()
            .map(|(name, ledgers)| (name, ledgers.into_values().map(|(_, l)| l).collect()))
            .collect())
    }
}

/// When an object was last written (seconds, nanoseconds since the epoch).
type Modified = (i64, u32);

fn modified(meta: &object_store::ObjectMeta) -> Modified {
    (
        meta.last_modified.timestamp(),
        meta.last_modified.timestamp_subsec_nanos(),
    )
}
