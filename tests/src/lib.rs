//! Test support: a real pulsar-lite broker per test, unique topic names, and the official
//! Python client (from the project's `.venv`) to produce input and read output, so that
//! Magnetar is never only tested against itself.
//!
//! A missing broker binary or Python client fails the test with the set-up command; a test
//! never passes without the broker it needs.

pub mod clicks;
pub mod crash;
pub mod job_output;
pub mod moto;
pub mod offloader;
pub mod secure_proxy;
pub mod terminal;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use magnetar_connectors::pulsar::lite::{self, LiteOptions, PulsarLite};
use serde_json::Value;

/// A pulsar-lite broker started for one test, with its own data directory.
pub struct TestBroker {
    broker: PulsarLite,
    _dir: tempfile::TempDir,
}

impl TestBroker {
    /// Starts a broker with non-partitioned auto-created topics.
    pub async fn start() -> TestBroker {
        Self::start_with(0).await
    }

    /// Starts a broker whose auto-created topics have `partitions` partitions.
    pub async fn start_with(partitions: u32) -> TestBroker {
        Self::start_options(partitions, Vec::new()).await
    }

    /// Starts a broker where only `topics` are partitioned (name, partition count).
    pub async fn start_partitioned(topics: &[(&str, u32)]) -> TestBroker {
        let topics = topics.iter().map(|(t, n)| (t.to_string(), *n)).collect();
        Self::start_options(0, topics).await
    }

    async fn start_options(partitions: u32, partitioned_topics: Vec<(String, u32)>) -> TestBroker {
        let dir = tempfile::Builder::new()
            .prefix("magnetar-broker-")
            .tempdir()
            .expect("temporary directory for the broker");
        let broker = PulsarLite::start(LiteOptions {
            data_dir: dir.path().to_path_buf(),
            port: None,
            default_partitions: partitions,
            partitioned_topics,
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot start pulsar-lite for this test: {e}\n{}",
                lite::INSTALL_HINT
            )
        });
        TestBroker { broker, _dir: dir }
    }

    /// `pulsar://127.0.0.1:PORT`.
    pub fn service_url(&self) -> String {
        self.broker.service_url()
    }

    /// The process, to kill or restart it.
    pub fn process(&mut self) -> &mut PulsarLite {
        &mut self.broker
    }
}

/// A topic name no other test uses: `persistent://public/default/{prefix}-{random}`.
pub fn unique_topic(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("persistent://public/default/{prefix}-{}", &id[..10])
}

/// The repository root (where `.venv` and `tests/python` are).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The venv's Python; fails loudly when set-up has not run.
pub fn python() -> PathBuf {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} not found: run ./scripts/setup.sh first",
        python.display()
    );
    python
}

/// Runs `tests/python/{script}` with `args`; panics with its stderr if it fails.
pub fn run_python(script: &str, args: &[&str]) -> Output {
    let path = repo_root().join("tests/python").join(script);
    let output = Command::new(python())
        .arg(&path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    assert!(
        output.status.success(),
        "{script} {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// One message as the official Python client read it.
#[derive(Debug, Clone, PartialEq)]
pub struct PyMessage {
    /// Message key, if any.
    pub key: Option<String>,
    /// Payload as text.
    pub value: String,
    /// Message id as the client prints it (`(ledger,entry,partition,batch)`).
    pub message_id: String,
    /// Properties.
    pub properties: serde_json::Map<String, Value>,
    /// Producer-set event time (ms), 0 when unset.
    pub event_time: u64,
    /// Broker publish time (ms).
    pub publish_time: u64,
}

impl PyMessage {
    /// The id in Magnetar's `ledger:entry:partition` form (the Python client prints
    /// `(ledger,entry,partition,batch)`).
    pub fn magnetar_id(&self) -> String {
        let parts: Vec<&str> = self
            .message_id
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .map(str::trim)
            .collect();
        format!("{}:{}:{}", parts[0], parts[1], parts[2])
    }
}

/// Reads every message of `topic` with the official Python client, from the earliest to
/// the topic's end as of the call.
pub fn python_read_all(service_url: &str, topic: &str) -> Vec<PyMessage> {
    let output = run_python("read_topic.py", &[service_url, topic]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        // The client's C++ logger also writes to stdout; messages are the JSON lines.
        .filter(|l| l.starts_with('{'))
        .map(|line| {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line}: {e}"));
            PyMessage {
                key: v["key"].as_str().map(str::to_string),
                value: v["value"].as_str().unwrap_or_default().to_string(),
                message_id: v["message_id"].as_str().unwrap_or_default().to_string(),
                properties: v["properties"].as_object().cloned().unwrap_or_default(),
                event_time: v["event_time"].as_u64().unwrap_or(0),
                publish_time: v["publish_time"].as_u64().unwrap_or(0),
            }
        })
        .collect()
}

/// The one value of a `SELECT count(*) ...` query (a bounded read), or the error's text.
pub async fn query_count(engine: &magnetar::Engine, sql: &str) -> Result<i64, String> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    use futures::StreamExt;
    let mut rows = engine.query(sql).await.map_err(|e| e.to_string())?;
    let mut total = None;
    while let Some(batch) = rows.next().await {
        let batch = batch.map_err(|e| e.to_string())?;
        if batch.num_rows() > 0 {
            total = Some(batch.column(0).as_primitive::<Int64Type>().value(0));
        }
    }
    total.ok_or_else(|| "no count".to_string())
}

/// Reads `topic` to its end as of the call with a bare Magnetar consumer (no decoding,
/// acknowledging each chunk): the messages read and how long it took. Benchmarks put it next
/// to what they measure.
pub async fn bare_read(
    url: &str,
    topic: &magnetar_connectors::pulsar::TopicName,
) -> (u64, std::time::Duration) {
    use magnetar_connectors::pulsar::{ClientConfig, PulsarClient, PulsarSource, SourceConfig};
    let clock = std::time::Instant::now();
    let client = PulsarClient::connect(ClientConfig::new(url.to_string()))
        .await
        .expect("connect");
    let mut source = PulsarSource::open(
        client,
        SourceConfig {
            receiver_queue_size: 10_000,
            ..SourceConfig::reading(vec![topic.clone()])
        },
    )
    .await
    .expect("open");
    let mut messages = 0u64;
    while let Some(chunk) = source.next_chunk(10_000).await.expect("read") {
        messages += chunk.messages.len() as u64;
        let token = source.take_ack_token();
        source.ack(token).expect("ack");
    }
    source.close().await;
    (messages, clock.elapsed())
}

/// Produces the lines of a JSON-lines file with the official Python client. Each line is
/// `{"key": ..., "value": ...}`; `value` is sent as the UTF-8 payload.
pub fn python_produce_file(service_url: &str, topic: &str, file: &Path, batching: bool) {
    let file = file.to_string_lossy().to_string();
    let batching = if batching { "batch" } else { "nobatch" };
    run_python("produce_lines.py", &[service_url, topic, &file, batching]);
}

/// Writes `(key, value)` pairs to a JSON-lines file for [`python_produce_file`].
pub fn write_messages_file(dir: &Path, messages: &[(Option<String>, String)]) -> PathBuf {
    let path = dir.join(format!("messages-{}.jsonl", uuid::Uuid::new_v4().simple()));
    let mut text = String::new();
    for (key, value) in messages {
        text.push_str(&serde_json::json!({"key": key, "value": value}).to_string());
        text.push('\n');
    }
    std::fs::write(&path, text).expect("write messages file");
    path
}

/// The built `magnetar` binary (cargo builds it for integration tests of this workspace).
pub fn magnetar_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let exe = std::env::current_exe().expect("test executable path");
    // The test executable sits in target/<profile>/deps; the binary in target/<profile>.
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| target.join("debug"));
    let binary = profile_dir.join("magnetar");
    assert!(
        binary.is_file(),
        "{} not found: build it with `cargo build -p magnetar-cli` (the test command does)",
        binary.display()
    );
    binary
}

/// Runs the `magnetar` binary to completion (failing the test after `timeout`).
pub async fn run_magnetar(args: &[&str], timeout: std::time::Duration) -> Output {
    let child = spawn_magnetar(args);
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(output) => output.expect("magnetar output"),
        Err(_) => panic!("magnetar {args:?} did not finish within {timeout:?}"),
    }
}

/// Starts the `magnetar` binary in the background (killed when dropped).
pub fn spawn_magnetar(args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(magnetar_binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start magnetar")
}

/// Sends SIGTERM to a process (a clean shutdown request).
pub fn terminate(child: &tokio::process::Child) {
    let pid = child.id().expect("process is running");
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {pid} failed");
}

/// Polls `check` with growing pauses until it returns true, failing after `timeout`.
/// For conditions that only an outside process can make true (messages arriving on a topic).
pub async fn eventually(what: &str, timeout: std::time::Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    let mut pause = std::time::Duration::from_millis(50);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(1));
    }
}

/// Starts `tests/python/{script}` with `args`, a fixture that prints `listening on PORT` and
/// serves until its stdin closes: the child and the port.
pub fn start_python_fixture(script: &str, args: &[&str]) -> (std::process::Child, u16) {
    use std::io::BufRead;
    let path = repo_root().join("tests/python").join(script);
    let mut child = Command::new(python())
        .arg(&path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the fixture prints its port");
    let port = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected fixture output: {line:?}"));
    (child, port)
}

/// The test admin REST API (`tests/python/admin_rest.py`): Pulsar's schema registry
/// endpoints and a topic's offloaded-ledger views, with real response shapes, since
/// pulsar-lite has no admin API. Stops when dropped.
pub struct AdminRestFixture {
    child: std::process::Child,
    port: u16,
}

impl AdminRestFixture {
    /// Starts the fixture on a free loopback port.
    pub fn start() -> AdminRestFixture {
        let (child, port) = start_python_fixture("admin_rest.py", &[]);
        AdminRestFixture { child, port }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Registers a schema version of `topic` as a broker would for a new producer schema
    /// (`POST .../schema`); returns its version.
    pub async fn register(&self, topic: &str, kind: &str, definition: &str) -> i64 {
        let (tenant, rest) = topic
            .split_once("://")
            .map(|(_, r)| r.split_once('/').expect("tenant/namespace/topic"))
            .expect("a full topic name");
        let url = format!(
            "{}/admin/v2/schemas/{tenant}/{rest}/schema?authoritative=false",
            self.admin_url()
        );
        let body = serde_json::json!({"type": kind, "schema": definition, "properties": {}});
        let text = reqwest::Client::new()
            .post(url)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("registry reachable")
            .text()
            .await
            .expect("an answer");
        let answer: Value = serde_json::from_str(&text).expect("JSON answer");
        answer["version"].as_i64().expect("a version")
    }
}

impl AdminRestFixture {
    /// Tells the fixture which ledgers of `topic` (a partition's full name) are offloaded,
    /// as a broker knows from its managed ledger; `complete: false` marks an offload that
    /// has not finished.
    pub async fn set_offloaded(
        &self,
        topic: &str,
        ledgers: &[(offloader::OffloadedLedgerInfo, bool)],
    ) {
        self.set_ledgers(topic, ledgers, &[]).await;
    }

    /// Tells the fixture `topic`'s offloaded ledgers (each with whether its offload
    /// completed) and the later ledgers the broker still holds (ids).
    pub async fn set_ledgers(
        &self,
        topic: &str,
        ledgers: &[(offloader::OffloadedLedgerInfo, bool)],
        on_the_broker: &[u64],
    ) {
        let rest = topic.split_once("://").map_or(topic, |(_, r)| r);
        let mut listed: Vec<serde_json::Value> = ledgers
            .iter()
            .map(|(l, complete)| {
                serde_json::json!({
                    "ledgerId": l.ledger_id,
                    "entries": l.entries,
                    "size": l.size,
                    "uuid": l.uuid,
                    "complete": complete,
                })
            })
            .collect();
        listed.extend(on_the_broker.iter().map(|id| {
            serde_json::json!({"ledgerId": id, "entries": 0, "size": 0, "uuid": null, "complete": false})
        }));
        let body = serde_json::json!({ "ledgers": listed });
        let status = reqwest::Client::new()
            .put(format!(
                "{}/test/offloaded-ledgers/{rest}",
                self.admin_url()
            ))
            .body(body.to_string())
            .send()
            .await
            .expect("fixture reachable")
            .status();
        assert!(status.is_success(), "fixture answered {status}");
    }
}

impl AdminRestFixture {
    /// The `Authorization` header of the last admin request the fixture answered.
    pub async fn last_authorization(&self) -> Option<String> {
        let text = reqwest::get(format!("{}/test/last-authorization", self.admin_url()))
            .await
            .expect("fixture reachable")
            .text()
            .await
            .expect("an answer");
        let answer: Value = serde_json::from_str(&text).expect("JSON answer");
        answer["authorization"].as_str().map(str::to_string)
    }

    /// Tells the fixture the topics of `namespace` (`tenant/namespace`), full names with
    /// partitions, as a broker knows them.
    pub async fn set_namespace_topics(&self, namespace: &str, topics: &[String]) {
        let status = reqwest::Client::new()
            .put(format!(
                "{}/test/namespace-topics/{namespace}",
                self.admin_url()
            ))
            .body(serde_json::json!({ "topics": topics }).to_string())
            .send()
            .await
            .expect("fixture reachable")
            .status();
        assert!(status.is_success(), "fixture answered {status}");
    }
}

impl Drop for AdminRestFixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produces `records` (JSON lines for `tests/python/produce_typed.py`) with the official
/// client's typed schema `kind`, registering the schema in `registry` first; returns each
/// message's id in Magnetar's `ledger:entry:partition` form.
pub fn python_produce_typed(
    service_url: &str,
    registry: &AdminRestFixture,
    topic: &str,
    kind: &str,
    records: &[Value],
) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("records.jsonl");
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&file, text).expect("write records");
    let output = run_python(
        "produce_typed.py",
        &[
            service_url,
            &registry.admin_url(),
            topic,
            kind,
            file.to_str().expect("utf-8 path"),
        ],
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        // The client's C++ logger also writes to stdout; ids are the `(l,e,p,b)` lines.
        .filter(|l| l.starts_with('('))
        .map(|id| {
            PyMessage {
                key: None,
                value: String::new(),
                message_id: id.to_string(),
                properties: Default::default(),
                event_time: 0,
                publish_time: 0,
            }
            .magnetar_id()
        })
        .collect()
}
