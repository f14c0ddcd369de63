//! One Pulsar client per service URL, shared by every source of the engine, the engine's
//! in-process (memory) tables, and the connectors registered from Rust.

use std::collections::HashMap;
use std::sync::Arc;

use magnetar_connectors::memory::MemoryStore;
use magnetar_connectors::pulsar::{ClientConfig, PositionStore, PulsarClient};
use tokio::sync::Mutex;

use crate::custom::ConnectorRegistry;
use crate::error::{EngineError, Result};
use magnetar_sql::catalog::TableDef;

/// Clients by service URL, the positions their sources acknowledged, memory tables, and
/// registered connectors.
#[derive(Debug)]
pub struct ClientPool {
    /// By service URL and connection settings (tables may differ in credentials or TLS).
    clients: Mutex<HashMap<ClientConfig, Arc<PulsarClient>>>,
    positions: Arc<dyn PositionStore>,
    memory: Arc<MemoryStore>,
    custom: ConnectorRegistry,
}

impl ClientPool {
    /// A pool whose sources remember acknowledged positions in `positions`.
    pub fn new(positions: Arc<dyn PositionStore>) -> Self {
        Self {
            clients: Mutex::new(HashMap::new()),
            positions,
            memory: Arc::new(MemoryStore::default()),
            custom: ConnectorRegistry::default(),
        }
    }

    /// The connectors registered from Rust.
    pub(crate) fn custom(&self) -> &ConnectorRegistry {
        &self.custom
    }

    /// Acknowledged positions of durable subscriptions.
    pub fn positions(&self) -> Arc<dyn PositionStore> {
        self.positions.clone()
    }

    /// The engine's memory tables.
    pub fn memory(&self) -> Arc<MemoryStore> {
        self.memory.clone()
    }

    /// The client for `service_url` with default settings, connecting on first use.
    pub async fn get(&self, service_url: &str) -> Result<Arc<PulsarClient>> {
        self.get_with(ClientConfig::new(service_url)).await
    }

    /// The client for `table` (its service URL, or `default`, and its `pulsar.client.*`
    /// settings), connecting on first use.
    pub async fn for_table(
        &self,
        table: &TableDef,
        default: Option<&str>,
    ) -> Result<Arc<PulsarClient>> {
        self.get_with(client_config_for(table, default)?)
            .await
            .map_err(|e| match e {
                EngineError::Connector(source) => EngineError::TableConnection {
                    table: table.name.clone(),
                    source,
                },
                other => other,
            })
    }

    /// The client with `config`, connecting on first use.
    pub async fn get_with(&self, config: ClientConfig) -> Result<Arc<PulsarClient>> {
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(&config) {
            return Ok(client.clone());
        }
        let client = PulsarClient::connect(config.clone()).await?;
        clients.insert(config, client.clone());
        Ok(client)
    }
}

/// The client settings of `table`: its service URL (or `default`) and its
/// `pulsar.client.*` options.
pub fn client_config_for(table: &TableDef, default: Option<&str>) -> Result<ClientConfig> {
    let url = crate::runtime::service_url_for(table, default)?;
    Ok(match table.pulsar() {
        Some(options) => options.client.client_config(&url),
        None => ClientConfig::new(url),
    })
}
