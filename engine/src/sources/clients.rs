//! One Pulsar client per service URL, shared by every source of the engine.

use std::collections::HashMap;
use std::sync::Arc;

use magnetar_connectors::pulsar::{ClientConfig, PulsarClient};
use tokio::sync::Mutex;

use crate::error::Result;

/// Clients by service URL.
#[derive(Debug, Default)]
pub struct ClientPool {
    clients: Mutex<HashMap<String, Arc<PulsarClient>>>,
}

impl ClientPool {
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
