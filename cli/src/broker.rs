//! The embedded broker: a pulsar-lite process started when no service URL is given.

use std::path::Path;

use anyhow::{Context, Result};
use magnetar_connectors::pulsar::{LiteOptions, PulsarLite};

/// Starts pulsar-lite with its data under `data_dir/broker`; says so in one line on stderr.
pub async fn start_embedded(data_dir: &Path) -> Result<PulsarLite> {
    let dir = data_dir.join("broker");
    let broker = PulsarLite::start(LiteOptions {
        data_dir: dir.clone(),
        ..LiteOptions::default()
    })
    .await
    .context("no --service-url given and the embedded broker could not start")?;
    eprintln!(
        "Started an embedded pulsar-lite broker at {} (data in {}).",
        broker.service_url(),
        dir.display()
    );
    Ok(broker)
}
