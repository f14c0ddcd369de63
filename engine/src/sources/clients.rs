//! One Pulsar client per service URL, shared by every source of the engine, the engine's
//! in-process (memory) tables, and the connectors registered from Rust.

use std::collections::HashMap;
use std::sync::Arc;

use magnetar_connectors::memory::MemoryStore;
use magnetar_connectors::pulsar::{ClientConfig, PositionStore, PulsarClient};
use tokio::sync::Mutex;

use crate::custom::ConnectorRegistry;
use crate::error::Result;

/// Clients by service URL, the positions their sources acknowledged, memory tables, and
/// registered connectors.
#[derive(Debug)]
pub struct ClientPool {
    clients: Mutex<HashMap<String, Arc<PulsarClient>>>,
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

    /// The client for `service_url`, connecting on first use.
    pub async fn get(&self, service_url: &str) -> Result<Arc<PulsarClient>> {
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(service_url) {
            return Ok(client.clone());
        }
        let client = PulsarClient::connect(ClientConfig::new(service_url)).await?;
        clients.insert(service_url.to_string(), client.clone());
        Ok(client)
    }
}
