//! Reading topic schemas from Pulsar's Schema Registry over the admin REST API
//! (`GET /admin/v2/schemas/{tenant}/{namespace}/{topic}/schema[/{version}]`), with a cache:
//! a schema version never changes once registered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::info::{SchemaInfo, SchemaVersion};
use crate::error::{ConnectorError, Result};
use crate::pulsar::{Authentication, ClientSecurity, TopicName};

/// Schema versions already fetched, by base topic (`tenant/namespace/topic`) and version.
type VersionCache = HashMap<(String, SchemaVersion), Arc<SchemaInfo>>;

/// A client of one cluster's schema registry.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    admin_url: reqwest::Url,
    http: reqwest::Client,
    versions: Arc<Mutex<VersionCache>>,
    /// Sent as `Authorization: Bearer <token>`, as Pulsar's admin API takes tokens.
    auth: Option<Authentication>,
}

impl SchemaRegistry {
    /// A client of the admin API at `admin_url` (`http://host:8080`).
    pub fn new(admin_url: &str) -> Result<SchemaRegistry> {
        Self::with_security(admin_url, &ClientSecurity::default())
    }

    /// A client of the admin API at `admin_url` with the table's TLS trust and credentials
    /// (a token goes as a bearer token; a client certificate is presented over https).
    pub fn with_security(admin_url: &str, security: &ClientSecurity) -> Result<SchemaRegistry> {
        let invalid = |reason: String| ConnectorError::Registry {
            topic: String::new(),
            reason: crate::redact::text(&format!("invalid admin URL '{admin_url}': {reason}")),
        };
        let admin_url = reqwest::Url::parse(admin_url).map_err(|e| invalid(e.to_string()))?;
        let http = crate::admin::http_client(&admin_url, security).map_err(invalid)?;
        Ok(SchemaRegistry {
            admin_url,
            http,
            versions: Arc::default(),
            auth: security.auth.clone(),
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
        // Reasons quote the URL (and reqwest's errors may too): never its user info.
        let failed = |reason: String| ConnectorError::Registry {
            topic: topic.to_string(),
            reason: crate::redact::text(&reason),
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
        let Some(body) = crate::admin::get_text(&self.http, &url, self.auth.as_ref())
            .await
            .map_err(failed)?
        else {
            return Ok(None);
        };
        let info =
            SchemaInfo::from_rest_json(&body).map_err(|e| failed(format!("GET {url}: {e}")))?;
        Ok(Some(Arc::new(info)))
    }
}

fn schema_key(topic: &TopicName) -> String {
    let (tenant, namespace) = topic.tenant_and_namespace();
    format!("{tenant}/{namespace}/{}", topic.base_local_name())
}
