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

/// The file in the data directory naming the broker process that holds it.
pub const PID_FILE: &str = "pulsar-lite.pid";

/// Makes the broker die with the process that starts it (Linux: a parent-death signal, sent
/// when the starting thread ends: a main thread or a runtime worker, never a short-lived
/// blocking thread), so that a killed shell never leaves a broker holding its data directory.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn dies_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec only async-signal-safe calls are made (prctl, getppid,
    // _exit), and nothing is allocated.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before the signal was armed: do not outlive it.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn dies_with_parent(_command: &mut Command) {}

/// What the pid file says: the broker's pid, the pid of the process that started it, and
/// the broker's port.
struct PidFile {
    broker: u32,
    owner: Option<u32>,
    port: Option<u16>,
}

impl PidFile {
    fn read(dir: &Path) -> Option<PidFile> {
        let text = fs::read_to_string(dir.join(PID_FILE)).ok()?;
        let mut fields = text.split_whitespace();
        Some(PidFile {
            broker: fields.next()?.parse().ok()?,
            owner: fields.next().and_then(|f| f.parse().ok()),
            port: fields.next().and_then(|f| f.parse().ok()),
        })
    }

    fn text(broker: u32, port: u16) -> String {
        format!("{broker} {} {port}\n", std::process::id())
    }
}

/// Whether process `pid` runs (exists and has not exited).
fn is_alive(pid: u32) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    proc_dir.exists() && !is_zombie(&proc_dir)
}

/// Stops a broker an earlier process left running on `dir` (its pid file names it, it is still
/// `binary` on that directory, and the process that started it is gone), so that the new one
/// can take the directory. One whose starter still runs is another shell's: a clear error.
async fn stop_stale(dir: &Path, binary: &Path) -> Result<()> {
    let Some(file) = PidFile::read(dir) else {
        return Ok(());
    };
    let pid = file.broker;
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let holds_dir = fs::read(proc_dir.join("cmdline")).is_ok_and(|cmdline| {
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let db = dir.join("db");
        args.first().is_some_and(|a| {
            Path::new(&*String::from_utf8_lossy(a)).file_name() == binary.file_name()
        }) && args
            .iter()
            .any(|a| Path::new(&*String::from_utf8_lossy(a)) == db)
    });
    if !holds_dir || is_zombie(&proc_dir) {
        return Ok(());
    }
    if let Some(owner) = file
        .owner
        .filter(|o| *o != std::process::id() && is_alive(*o))
    {
        let share = file
            .port
            .map(|p| format!("pass --service-url pulsar://127.0.0.1:{p} to use it too, or "))
            .unwrap_or_default();
        return Err(ConnectorError::EmbeddedBroker(format!(
            "the data directory {} is in use by the embedded broker (pid {pid}) of another magnetar (pid {owner}); {share}give --data-dir another directory",
            dir.display()
        )));
    }
    tracing::warn!(pid, dir = %dir.display(), "stopping a pulsar-lite an earlier Magnetar left running on this data directory");
    eprintln!(
        "Stopping an embedded broker (pid {pid}) that an earlier magnetar left running on {}.",
        dir.display()
    );
    let stuck = || {
        ConnectorError::EmbeddedBroker(format!(
            "a pulsar-lite (pid {pid}) left running by an earlier magnetar holds {}; stop it (kill {pid}) and start again",
            dir.display()
        ))
    };
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !killed {
        return Err(stuck());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_alive(pid) {
        if Instant::now() > deadline {
            return Err(stuck());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Whether the process of `/proc/<pid>` has exited and waits to be reaped.
fn is_zombie(proc_dir: &Path) -> bool {
    fs::read_to_string(proc_dir.join("stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl PulsarLite {
    /// Starts a broker and waits until it completes a CONNECT handshake. On Linux the broker
    /// gets a parent-death signal: it ends when the thread that started it ends, so start it
    /// from a thread that lives as long as it should (a main thread, a runtime worker), not a
    /// short-lived blocking thread.
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
        stop_stale(dir, &self.binary).await?;
        let mut command = Command::new(&self.binary);
        dies_with_parent(&mut command);
        let child = command
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
        // Who holds the directory, for a later start to find if this process is killed
        // without its parent-death signal (another OS, or an older Magnetar).
        let pid = child.id();
        self.child = Some(child);
        fs::write(dir.join(PID_FILE), PidFile::text(pid, self.port))?;
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
            // Only our own: a later broker on the directory may have written its file since.
            let ours =
                PidFile::read(&self.options.data_dir).is_some_and(|f| f.broker == child.id());
            if ours {
                let _ = fs::remove_file(self.options.data_dir.join(PID_FILE));
            }
        }
    }

    /// The broker's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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
