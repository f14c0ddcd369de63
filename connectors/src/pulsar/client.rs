//! A Pulsar client for the consumer side: service URL, topic lookup (following redirects),
//! partitioned-topic metadata and a pool of broker connections.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pulsar::proto::{
    self, BaseCommand, base_command::Type, command_lookup_topic_response::LookupType,
    command_partitioned_topic_metadata_response::LookupType as MetadataLookupType,
};
use tokio::sync::Mutex;

use super::connection::{
    BrokerAddress, ClientSecurity, Connection, Timeouts, broker_address, server_error_name,
};
use super::topic::TopicName;
use crate::error::{ConnectorError, Result};

/// How many lookup redirects we follow before giving up.
const MAX_REDIRECTS: usize = 20;

/// Settings of a [`PulsarClient`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientConfig {
    /// `pulsar://host:port`, or several comma-separated hosts `pulsar://h1:6650,h2:6650`.
    pub service_url: String,
    /// TLS settings and credentials.
    pub security: ClientSecurity,
    /// How long a request may wait for its answer.
    pub operation_timeout: Duration,
    /// How long opening a connection (TCP and TLS) may take.
    pub connection_timeout: Duration,
}

impl ClientConfig {
    /// Defaults for `service_url`.
    pub fn new(service_url: impl Into<String>) -> Self {
        Self {
            service_url: service_url.into(),
            security: ClientSecurity::default(),
            operation_timeout: Duration::from_secs(30),
            connection_timeout: Duration::from_secs(10),
        }
    }
}

/// A pooled connection's key: the address connected to, and through a proxy there, the
/// broker behind it.
type PoolKey = (BrokerAddress, Option<String>);

/// A client: resolves topics to brokers and hands out connections.
#[derive(Debug)]
pub struct PulsarClient {
    config: ClientConfig,
    /// Candidate service addresses, as `pulsar://host:port` URLs.
    service_urls: Vec<String>,
    /// Open connections by broker (and, through a proxy, the broker behind it).
    pool: Mutex<HashMap<PoolKey, Arc<Connection>>>,
}

impl PulsarClient {
    /// Parses the service URL and connects to the first reachable service address.
    pub async fn connect(config: ClientConfig) -> Result<Arc<PulsarClient>> {
        let service_urls = split_service_url(&config.service_url)?;
        let client = Arc::new(PulsarClient {
            config,
            service_urls,
            pool: Mutex::new(HashMap::new()),
        });
        client.service_connection().await?;
        Ok(client)
    }

    /// The configuration this client was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// A connection to the broker at `url`, reused while it stays open.
    pub async fn connection(&self, url: &str) -> Result<Arc<Connection>> {
        self.connection_via(url, None).await
    }

    /// A connection to `url`; through a proxy there, to the broker `proxy_to` behind it.
    async fn connection_via(&self, url: &str, proxy_to: Option<&str>) -> Result<Arc<Connection>> {
        let key = (broker_address(url)?, proxy_to.map(str::to_string));
        let mut pool = self.pool.lock().await;
        if let Some(conn) = pool.get(&key).filter(|c| c.is_open()) {
            return Ok(conn.clone());
        }
        let conn = Connection::connect(
            url,
            proxy_to,
            &self.config.security,
            Timeouts {
                connect: self.config.connection_timeout,
                operation: self.config.operation_timeout,
            },
        )
        .await?;
        pool.insert(key, conn.clone());
        Ok(conn)
    }

    /// A connection to one of the service addresses (the first that answers).
    pub async fn service_connection(&self) -> Result<Arc<Connection>> {
        let mut last_error = None;
        for url in &self.service_urls {
            match self.connection(url).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last_error = Some(e),
            }
        }
        Err(
            last_error.unwrap_or_else(|| ConnectorError::InvalidServiceUrl {
                url: self.config.service_url.clone(),
                reason: "no address".into(),
            }),
        )
    }

    /// Number of partitions of `topic`; 0 for a non-partitioned topic.
    pub async fn partitions(&self, topic: &TopicName) -> Result<u32> {
        let conn = self.service_connection().await?;
        let request_id = conn.new_request_id();
        let name = topic.to_string();
        let answer = conn
            .request(
                "PARTITIONED_METADATA",
                &name,
                request_id,
                BaseCommand {
                    r#type: Type::PartitionedMetadata as i32,
                    partition_metadata: Some(proto::CommandPartitionedTopicMetadata {
                        topic: name.clone(),
                        request_id,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                None,
            )
            .await?;
        let response = answer.partition_metadata_response.ok_or_else(|| {
            ConnectorError::Frame("PARTITIONED_METADATA answered with another command".into())
        })?;
        if response.response == Some(MetadataLookupType::Failed as i32) {
            return Err(ConnectorError::Broker {
                request: "PARTITIONED_METADATA",
                topic: Some(name),
                error: response
                    .error
                    .map(server_error_name)
                    .unwrap_or_else(|| "Failed".into()),
                message: response.message.unwrap_or_default(),
            });
        }
        Ok(response.partitions.unwrap_or(0))
    }

    /// The topic's latest schema through the binary protocol's GetSchema; `None` when the
    /// topic has none. A broker that does not answer within `timeout` is an error (pulsar-lite
    /// never answers GetSchema; real brokers do).
    pub async fn get_schema(
        &self,
        topic: &TopicName,
        timeout: Duration,
    ) -> Result<Option<crate::schema::SchemaInfo>> {
        let name = topic.to_string();
        let conn = self.lookup(topic).await?;
        let request_id = conn.new_request_id();
        let answer = conn
            .request(
                "GET_SCHEMA",
                &name,
                request_id,
                BaseCommand {
                    r#type: Type::GetSchema as i32,
                    get_schema: Some(proto::CommandGetSchema {
                        request_id,
                        topic: name.clone(),
                        schema_version: None,
                    }),
                    ..Default::default()
                },
                Some(timeout),
            )
            .await?;
        let response = answer.get_schema_response.ok_or_else(|| {
            ConnectorError::Frame("GET_SCHEMA answered with another command".into())
        })?;
        if let Some(code) = response.error_code {
            let error = server_error_name(code);
            if error == "TopicNotFound" {
                return Ok(None);
            }
            return Err(ConnectorError::Broker {
                request: "GET_SCHEMA",
                topic: Some(name),
                error,
                message: response.error_message.unwrap_or_default(),
            });
        }
        let Some(schema) = response.schema else {
            return Ok(None);
        };
        crate::schema::binary::from_protocol(&schema, response.schema_version.as_deref())
            .map(Some)
            .map_err(|reason| ConnectorError::Registry {
                topic: name,
                reason,
            })
    }

    /// What a read of `topic` subscribes: each partition with its index, or the topic itself
    /// (index -1) when it is not partitioned.
    pub async fn partition_targets(&self, topic: &TopicName) -> Result<Vec<(TopicName, i32)>> {
        let partitions = self.partitions(topic).await?;
        Ok(if partitions == 0 {
            vec![(topic.clone(), -1)]
        } else {
            (0..partitions)
                .map(|i| (topic.partition(i), i as i32))
                .collect()
        })
    }

    /// The topics of `namespace` (`tenant/namespace`), full names with partitions, through
    /// the binary protocol's GetTopicsOfNamespace. A broker that does not answer within
    /// `timeout` is an error (pulsar-lite never answers it; real brokers do).
    pub async fn topics_of_namespace(
        &self,
        namespace: &str,
        persistent: bool,
        timeout: Duration,
    ) -> Result<Vec<String>> {
        use proto::command_get_topics_of_namespace::Mode;
        let conn = self.service_connection().await?;
        let request_id = conn.new_request_id();
        let answer = conn
            .request(
                "GET_TOPICS_OF_NAMESPACE",
                namespace,
                request_id,
                BaseCommand {
                    r#type: Type::GetTopicsOfNamespace as i32,
                    get_topics_of_namespace: Some(proto::CommandGetTopicsOfNamespace {
                        request_id,
                        namespace: namespace.to_string(),
                        mode: Some(if persistent {
                            Mode::Persistent
                        } else {
                            Mode::NonPersistent
                        } as i32),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Some(timeout),
            )
            .await?;
        let response = answer.get_topics_of_namespace_response.ok_or_else(|| {
            ConnectorError::Frame("GET_TOPICS_OF_NAMESPACE answered with another command".into())
        })?;
        Ok(response.topics)
    }

    /// A connection to the broker that serves `topic` (one partition or a non-partitioned topic).
    pub async fn lookup(&self, topic: &TopicName) -> Result<Arc<Connection>> {
        let name = topic.to_string();
        let mut conn = self.service_connection().await?;
        let mut authoritative = false;
        for _ in 0..MAX_REDIRECTS {
            let request_id = conn.new_request_id();
            let answer = conn
                .request(
                    "LOOKUP",
                    &name,
                    request_id,
                    BaseCommand {
                        r#type: Type::Lookup as i32,
                        lookup_topic: Some(proto::CommandLookupTopic {
                            topic: name.clone(),
                            request_id,
                            authoritative: Some(authoritative),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    None,
                )
                .await?;
            let response = answer.lookup_topic_response.ok_or_else(|| {
                ConnectorError::Frame("LOOKUP answered with another command".into())
            })?;
            // Over TLS, the broker's TLS URL (as the Java client picks it).
            let tls = self
                .service_urls
                .first()
                .is_some_and(|u| u.starts_with("pulsar+ssl://"));
            let broker_url = if tls {
                response.broker_service_url_tls.clone()
            } else {
                response.broker_service_url.clone()
            }
            .unwrap_or_default();
            match LookupType::try_from(response.response.unwrap_or(LookupType::Failed as i32)) {
                Ok(LookupType::Connect) => {
                    if broker_url.is_empty() {
                        return if tls && response.broker_service_url.is_some() {
                            Err(ConnectorError::Tls(format!(
                                "the broker for '{name}' has no TLS address (brokerServiceUrlTls); enable TLS on the broker"
                            )))
                        } else {
                            Ok(conn)
                        };
                    }
                    if response.proxy_through_service_url.unwrap_or(false) {
                        // A Pulsar proxy: connect to it, naming the broker behind it by
                        // `host:port`, as the Java client does.
                        let proxy_to = broker_address(&broker_url)?.address;
                        let service = self.service_urls.first().cloned().unwrap_or_default();
                        return self.connection_via(&service, Some(&proxy_to)).await;
                    }
                    return self.connection(&broker_url).await;
                }
                Ok(LookupType::Redirect) => {
                    authoritative = response.authoritative.unwrap_or(false);
                    conn = self.connection(&broker_url).await?;
                }
                _ => {
                    return Err(ConnectorError::Broker {
                        request: "LOOKUP",
                        topic: Some(name),
                        error: response
                            .error
                            .map(server_error_name)
                            .unwrap_or_else(|| "Failed".into()),
                        message: response.message.unwrap_or_default(),
                    });
                }
            }
        }
        Err(ConnectorError::Broker {
            request: "LOOKUP",
            topic: Some(name),
            error: "TooManyRedirects".into(),
            message: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }
}

/// `pulsar://h1:6650,h2:6650` → `["pulsar://h1:6650", "pulsar://h2:6650"]`, validated.
fn split_service_url(url: &str) -> Result<Vec<String>> {
    let invalid = |reason: &str| ConnectorError::InvalidServiceUrl {
        url: crate::redact::url(url),
        reason: reason.to_string(),
    };
    let (scheme, hosts) = url
        .trim()
        .split_once("://")
        .ok_or_else(|| invalid("expected pulsar://host:port"))?;
    let urls: Vec<String> = hosts
        .trim_end_matches('/')
        .split(',')
        .map(|h| format!("{scheme}://{}", h.trim()))
        .collect();
    for u in &urls {
        broker_address(u)?;
    }
    Ok(urls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_multi_host_service_urls() {
        assert_eq!(
            split_service_url("pulsar://a:1,b:2/").expect("ok"),
            vec!["pulsar://a:1", "pulsar://b:2"]
        );
        assert!(split_service_url("a:1").is_err());
        assert!(split_service_url("pulsar://a:1,").is_err());
    }
}
