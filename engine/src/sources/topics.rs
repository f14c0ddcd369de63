//! The topics a Pulsar table reads: its named topics and, for its topic patterns, the
//! matching topics of their namespaces as they are when a read starts.

use std::time::Duration;

use std::sync::Arc;

use magnetar_connectors::ConnectorError;
use magnetar_connectors::pulsar::{PulsarClient, TopicDiscovery, TopicName};
use magnetar_sql::catalog::TableDef;

use crate::error::{EngineError, Result};

/// How long a broker may take to list a namespace's topics (GetTopicsOfNamespace).
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// The topics `table` reads now, sorted, without repeats: the named ones and every topic
/// matching its patterns (listed through the admin REST API when the table has an
/// `admin-url`, else through the broker). A pattern that matches nothing is an error.
pub async fn topics_to_read(table: &TableDef, client: &PulsarClient) -> Result<Vec<TopicName>> {
    let Some(options) = table.pulsar() else {
        return Ok(Vec::new());
    };
    let mut topics = options.topics.clone();
    for pattern in &options.topic_patterns {
        let namespace = pattern.namespace();
        let names = match &options.admin_url {
            Some(admin) => {
                magnetar_connectors::admin::namespace_topics(
                    admin,
                    &options.client.security,
                    &namespace,
                )
                .await?
            }
            None => client
                .topics_of_namespace(&namespace, pattern.is_persistent(), LIST_TIMEOUT)
                .await
                .map_err(|e| {
                    EngineError::Pipeline(format!(
                        "table '{}': cannot list the topics of namespace '{namespace}' for pattern '{pattern}': {e}; set 'admin-url' to list them through the admin API",
                        table.name
                    ))
                })?,
        };
        let matching = pattern.matching(&names);
        if matching.is_empty() {
            return Err(EngineError::Pipeline(format!(
                "table '{}': topic pattern '{pattern}' matches no topic of namespace '{namespace}' ({} topics listed)",
                table.name,
                names.len()
            )));
        }
        topics.extend(matching);
    }
    topics.sort();
    topics.dedup();
    Ok(topics)
}

/// Discovery of `table`'s new topics every `every`, for a continuous read of its patterns.
pub fn discovery(table: &TableDef, client: &Arc<PulsarClient>, every: Duration) -> TopicDiscovery {
    let table = Arc::new(table.clone());
    let client = client.clone();
    TopicDiscovery {
        every,
        list: Arc::new(move || {
            let (table, client) = (table.clone(), client.clone());
            Box::pin(async move {
                topics_to_read(&table, &client)
                    .await
                    .map_err(|e| ConnectorError::Discovery(e.to_string()))
            })
        }),
    }
}
