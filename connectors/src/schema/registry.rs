//! Reading topic schemas from Pulsar's Schema Registry over the admin REST API
//! (`GET /admin/v2/schemas/{tenant}/{namespace}/{topic}/schema[/{version}]`), with a cache:
//! a schema version never changes once registered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::info::{SchemaInfo, SchemaVersion};
use crate::error::{ConnectorError, Result};
use crate::pulsar::TopicName;

/// How long one registry request may take (redirects to the owner broker included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Schema versions already fetched, by base topic (`tenant/namespace/topic`) and version.
type VersionCache = HashMap<(String, SchemaVersion), Arc<SchemaInfo>>;

/// A client of one cluster's schema registry.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    admin_url: reqwest::Url,
    http: reqwest::Client,
    versions: Arc<Mutex<VersionCache>>,
}

impl SchemaRegistry {
    /// A client of the admin API at `admin_url` (`http://host:8080`).
    pub fn new(admin_url: &str) -> Result<SchemaRegistry> {
        let invalid = |reason: String| ConnectorError::Registry {
            topic: String::new(),
            reason: format!("invalid admin URL '{admin_url}': {reason}"),
        };
        let admin_url = reqwest::Url::parse(admin_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(admin_url.scheme(), "http" | "https") {
            return Err(invalid("expected http:// or https://".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(SchemaRegistry {
            admin_url,
            http,
            versions: Arc::default(),
        })
    }

    /// The topic's latest schema; `None` when the topic has none (404).
    pub async fn latest(&self, topic: &TopicName) -> Result<Option<Arc<SchemaInfo>>> {
        let info = self.fetch(topic, None).await?;
        if let Some(info) = &info
            && let Some(version) = info.version
        {
            self.cache()
                .insert((schema_key(topic), version), info.clone());
        }
        Ok(info)
    }

    /// One version of the topic's schema (cached); `None` when the registry lacks it (404).
    pub async fn version(
        &self,
        topic: &TopicName,
        version: SchemaVersion,
    ) -> Result<Option<Arc<SchemaInfo>>> {
        let key = (schema_key(topic), version);
        if let Some(info) = self.cache().get(&key) {
            return Ok(Some(info.clone()));
        }
        let info = self.fetch(topic, Some(version)).await?;
        if let Some(info) = &info {
            self.cache().insert(key, info.clone());
        }
        Ok(info)
    }

    /// The admin URL this client reads from.
    pub fn admin_url(&self) -> &str {
        self.admin_url.as_str()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, VersionCache> {
        self.versions.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn fetch(
        &self,
        topic: &TopicName,
        version: Option<SchemaVersion>,
    ) -> Result<Option<Arc<SchemaInfo>>> {
        let failed = |reason: String| ConnectorError::Registry {
            topic: topic.to_string(),
            reason,
        };
        let mut url = self.admin_url.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| failed("the admin URL cannot take a path".into()))?;
            segments.pop_if_empty();
            let (tenant, namespace) = topic.tenant_and_namespace();
            // All partitions share the base topic's schema.
            segments.extend([
                "admin",
                "v2",
                "schemas",
                tenant,
                namespace,
                topic.base_local_name(),
                "schema",
            ]);
            if let Some(v) = version {
                segments.push(&v.0.to_string());
            }
        }
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| failed(format!("GET {url}: {e}")))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body = response
            .text()
            .await
            .map_err(|e| failed(format!("GET {url}: {e}")))?;
        if !status.is_success() {
            return Err(failed(format!("GET {url}: HTTP {status}: {}", body.trim())));
        }
        let info =
            SchemaInfo::from_rest_json(&body).map_err(|e| failed(format!("GET {url}: {e}")))?;
        Ok(Some(Arc::new(info)))
    }
}

fn schema_key(topic: &TopicName) -> String {
    let (tenant, namespace) = topic.tenant_and_namespace();
    format!("{tenant}/{namespace}/{}", topic.base_local_name())
}
