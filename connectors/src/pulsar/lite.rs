//! Starts and stops a pulsar-lite broker: for tests, the demo, and the REPL's embedded broker.
//!
//! pulsar-lite speaks Pulsar's binary protocol but has no schema registry, admin REST,
//! transactions or tiered storage (see `connectors/README.md` for what we work around).

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::connection::{ClientSecurity, Connection, Timeouts};
use crate::error::{ConnectorError, Result};

/// Environment variable naming the pulsar-lite binary explicitly.
pub const BINARY_ENV: &str = "MAGNETAR_PULSAR_LITE";

/// The command that installs pulsar-lite the way this project does.
pub const INSTALL_HINT: &str = "run ./scripts/setup.sh (it installs pulsar-lite into .venv), or: pip install pulsar-lite==0.2.0";

/// How to start a broker.
#[derive(Clone, Debug, Default)]
pub struct LiteOptions {
    /// Data directory (the broker's database lives in `db/` below it).
    pub data_dir: PathBuf,
    /// Listen port; a free loopback port is picked when `None`.
    pub port: Option<u16>,
    /// Partitions of auto-created topics (`default_partitions`); 0 = non-partitioned.
    pub default_partitions: u32,
    /// Topics created partitioned (full names, partition counts), whatever
    /// `default_partitions` says; applied when the data directory is new.
    pub partitioned_topics: Vec<(String, u32)>,
}

/// A running pulsar-lite process; killed when dropped.
#[derive(Debug)]
pub struct PulsarLite {
    child: Option<Child>,
    binary: PathBuf,
    options: LiteOptions,
    port: u16,
}

/// Finds the pulsar-lite binary: `$MAGNETAR_PULSAR_LITE`, a `.venv` in the current directory,
/// the executable's directory or one of their parents, then `PATH`.
pub fn find_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(BINARY_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(ConnectorError::EmbeddedBroker(format!(
                "{BINARY_ENV}={} is not a file; {INSTALL_HINT}",
                path.display()
            )))
        };
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    for root in roots {
        let lib = root.join(".venv").join("lib");
        let Ok(entries) = fs::read_dir(&lib) else {
            continue;
        };
        for entry in entries.flatten() {
            let candidate = entry
                .path()
                .join("site-packages/pulsar_lite/bin/pulsar-lite");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("pulsar-lite");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(ConnectorError::EmbeddedBroker(format!(
        "pulsar-lite not found (looked at ${BINARY_ENV}, .venv/lib/python*/site-packages/pulsar_lite/bin and PATH); {INSTALL_HINT}"
    )))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl PulsarLite {
    /// Starts a broker and waits until it completes a CONNECT handshake.
    pub async fn start(options: LiteOptions) -> Result<PulsarLite> {
        let binary = find_binary()?;
        let mut last_error = None;
        // A port picked free can be taken before the broker binds it: try a few.
        for _ in 0..3 {
            let port = match options.port {
                Some(p) => p,
                None => free_port()?,
            };
            let mut broker = PulsarLite {
                child: None,
                binary: binary.clone(),
                options: options.clone(),
                port,
            };
            match broker.spawn_and_wait().await {
                Ok(()) => return Ok(broker),
                Err(e) => last_error = Some(e),
            }
            if options.port.is_some() {
                break;
            }
        }
        Err(last_error.unwrap_or_else(|| ConnectorError::EmbeddedBroker("not started".into())))
    }

    async fn spawn_and_wait(&mut self) -> Result<()> {
        let dir = &self.options.data_dir;
        fs::create_dir_all(dir)?;
        let config = dir.join("pulsar-lite.toml");
        // Metrics off: they would take port 8080, which may be in use.
        fs::write(
            &config,
            format!(
                "default_partitions = {}\n\n[metrics]\nenabled = false\n",
                self.options.default_partitions
            ),
        )?;
        // pulsar-lite reads partitioned topics from `<db-path>.metadata.json` at start-up and
        // rewrites that file with its state later, so only a new directory gets ours.
        let metadata = dir.join("db.metadata.json");
        if !self.options.partitioned_topics.is_empty() && !metadata.exists() {
            let topics: serde_json::Map<String, serde_json::Value> = self
                .options
                .partitioned_topics
                .iter()
                .map(|(topic, n)| (topic.clone(), serde_json::json!({ "partitions": n })))
                .collect();
            let doc = serde_json::json!({ "version": 2, "partitioned_topics": topics });
            fs::write(&metadata, doc.to_string())?;
        }
        let log_path = dir.join("pulsar-lite.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(&config)
            .arg("--addr")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--db-path")
            .arg(dir.join("db"))
            .arg("--log-level")
            .arg("warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                ConnectorError::EmbeddedBroker(format!(
                    "cannot start {}: {e}",
                    self.binary.display()
                ))
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut delay = Duration::from_millis(10);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let tail = fs::read_to_string(&log_path).unwrap_or_default();
                let tail: String = tail.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                return Err(ConnectorError::EmbeddedBroker(format!(
                    "pulsar-lite exited ({status}) while starting on port {}: {tail}",
                    self.port
                )));
            }
            // Ready means a full CONNECT handshake, not only an open port.
            if Connection::connect(
                &self.service_url(),
                None,
                &ClientSecurity::default(),
                Timeouts::both(Duration::from_secs(2)),
            )
            .await
            .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(ConnectorError::EmbeddedBroker(format!(
                    "pulsar-lite did not accept connections on port {} within 30 s (log: {})",
                    self.port,
                    log_path.display()
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(200));
        }
    }

    /// `pulsar://127.0.0.1:PORT`.
    pub fn service_url(&self) -> String {
        format!("pulsar://127.0.0.1:{}", self.port)
    }

    /// The listen port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.options.data_dir
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts the broker again on the same port and data directory.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn_and_wait().await
    }
}

impl Drop for PulsarLite {
    fn drop(&mut self) {
        self.kill();
    }
}
