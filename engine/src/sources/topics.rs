//! The topics a Pulsar table reads: its named topics and, for its topic patterns, the
//! matching topics of their namespaces, listed when a read starts and, for continuous reads,
//! again every discovery interval.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use magnetar_connectors::ConnectorError;
use magnetar_connectors::pulsar::{PulsarClient, TopicDiscovery, TopicName};
use magnetar_sql::catalog::TableDef;

use crate::error::{EngineError, Result};

/// How long a broker may take to list a namespace's topics (GetTopicsOfNamespace).
const LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// The topics a table's read found: its named topics and the matches of its patterns, sorted,
/// without repeats, and a note for each pattern that matched nothing.
#[derive(Debug, Default)]
pub struct ListedTopics {
    /// The topics to read.
    pub topics: Vec<TopicName>,
    /// One line per pattern that matched no topic (naming it and its namespace).
    pub unmatched: Vec<String>,
}

impl ListedTopics {
    /// The topics, when every pattern matched something; a bounded read of a pattern that
    /// matches nothing would be a silent zero, so it is an error.
    pub fn all_matched(self, table: &TableDef) -> Result<Vec<TopicName>> {
        if self.unmatched.is_empty() {
            Ok(self.topics)
        } else {
            Err(EngineError::Pipeline(format!(
                "table '{}': {}",
                table.name,
                self.unmatched.join("; ")
            )))
        }
    }

    /// What `SHOW JOBS` says while a continuous read waits for its patterns to match.
    pub fn warning(&self, table: &TableDef) -> Option<String> {
        (!self.unmatched.is_empty()).then(|| {
            format!(
                "table '{}': {}; waiting for such a topic",
                table.name,
                self.unmatched.join("; ")
            )
        })
    }
}

/// The topics `table` reads now: the named ones and every topic matching its patterns
/// (listed through the admin REST API when the table has an `admin-url`, else through the
/// broker).
pub async fn topics_to_read(table: &TableDef, client: &PulsarClient) -> Result<ListedTopics> {
    let Some(options) = table.pulsar() else {
        return Ok(ListedTopics::default());
    };
    let mut listed = ListedTopics {
        topics: options.topics.clone(),
        unmatched: Vec::new(),
    };
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
            listed.unmatched.push(format!(
                "topic pattern '{pattern}' matches no topic of namespace '{namespace}' ({} topics listed)",
                names.len()
            ));
        }
        listed.topics.extend(matching);
    }
    listed.topics.sort();
    listed.topics.dedup();
    Ok(listed)
}

/// The topics a read of `table` starts with: for a bounded read every pattern must match;
/// a continuous one may wait for its first topics, with `warning` saying so meanwhile.
pub async fn topics_to_start(
    table: &TableDef,
    client: &PulsarClient,
    warning: &SourceWarning,
) -> Result<Vec<TopicName>> {
    let listed = topics_to_read(table, client).await?;
    let rediscovered = table
        .pulsar()
        .is_some_and(|o| o.partition_discovery.is_some());
    // Without discovery nothing would ever be listed again: waiting would be forever.
    if table.is_bounded() || !rediscovered {
        return listed.all_matched(table);
    }
    warning.set(listed.warning(table));
    Ok(listed.topics)
}

/// A source's standing warning (a topic pattern that matches nothing yet), for `SHOW JOBS`.
#[derive(Debug, Default)]
pub struct SourceWarning(Mutex<Option<String>>);

impl SourceWarning {
    /// Replaces the warning (`None` clears it).
    pub fn set(&self, warning: Option<String>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = warning;
    }

    /// The warning, if any.
    pub fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Discovery of `table`'s new topics every `every`, for a continuous read of its patterns.
/// Each listing also sets or clears `warning` (patterns that match nothing yet).
pub fn discovery(
    table: &TableDef,
    client: &Arc<PulsarClient>,
    every: Duration,
    warning: Arc<SourceWarning>,
) -> TopicDiscovery {
    let table = Arc::new(table.clone());
    let client = client.clone();
    TopicDiscovery {
        every,
        list: Arc::new(move || {
            let (table, client, warning) = (table.clone(), client.clone(), warning.clone());
            Box::pin(async move {
                let listed = topics_to_read(&table, &client)
                    .await
                    .map_err(|e| ConnectorError::Discovery(e.to_string()))?;
                warning.set(listed.warning(&table));
                Ok(listed.topics)
            })
        }),
    }
}
