//! The embedded broker dies with the shell that started it; a broker an earlier shell left
//! running on the data directory is stopped, with a message, instead of failing the start; one
//! whose shell still runs is that shell's, and the new start says how to share it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use magnetar_connectors::pulsar::lite::{PID_FILE, find_binary};
use magnetar_tests::terminal::Terminal;
use magnetar_tests::*;

/// A child process killed when the test ends, also when it fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A script that reads a topic of the default broker.
const NEEDS_BROKER: &str = "CREATE TABLE t (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = 'embedded-check', 'source.stop.at-message-id' = 'latest'); SELECT count(*) FROM t";

/// Whether process `pid` has ended (gone, or a zombie waiting for its reaper).
fn has_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// The pid an embedded broker wrote into `data_dir/broker`.
fn broker_pid(data_dir: &Path) -> Option<u32> {
    // The file holds the broker's pid, its starter's pid and its port.
    std::fs::read_to_string(data_dir.join("broker").join(PID_FILE))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `magnetar` with no service URL, keeping its data (and embedded broker) in `dir`.
fn shell_without_broker(dir: &Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(magnetar_binary());
    command
        .args(["--data-dir", &dir.display().to_string()])
        .args(args)
        .env_remove("MAGNETAR_SERVICE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn run_to_end(mut command: tokio::process::Command) -> std::process::Output {
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("magnetar finished in time")
        .expect("run magnetar")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_shell_takes_its_embedded_broker_with_it() {
    let dir = tempfile::tempdir().expect("dir");
    let dir_text = dir.path().display().to_string();
    // The interactive shell starts its broker before the first prompt.
    let mut shell = Terminal::spawn(
        &["--data-dir", &dir_text],
        &[("MAGNETAR_SERVICE_URL", "")],
        dir.path(),
    );
    shell.wait_for_text("magnetar>", Duration::from_secs(60));
    let pid = broker_pid(dir.path()).expect("the embedded broker's pid file");
    assert!(!has_ended(pid), "the broker runs");
    shell.kill_9();
    eventually(
        "the broker to end with its shell",
        Duration::from_secs(30),
        || has_ended(pid),
    )
    .await;

    // The next shell on the same directory starts its own broker and works.
    let out = run_to_end(shell_without_broker(dir.path(), &["-e", NEEDS_BROKER])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Started an embedded pulsar-lite broker"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_left_running_on_the_data_directory_is_stopped_with_a_message() {
    let dir = tempfile::tempdir().expect("dir");
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir_all(&broker_dir).expect("broker dir");
    // A pulsar-lite as an older magnetar left it: not our child, holding the database.
    let port = magnetar_connectors::pulsar::lite::free_port().expect("port");
    let mut stale = KillOnDrop(
        std::process::Command::new(find_binary().expect("pulsar-lite"))
            .arg("--addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--db-path")
            .arg(broker_dir.join("db"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a stale broker"),
    );
    let stale = &mut stale.0;
    eventually("the stale broker listens", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    // While the shell that started it runs (here: this test), it is that shell's: refused.
    std::fs::write(
        broker_dir.join(PID_FILE),
        format!("{} {} {port}", stale.id(), std::process::id()),
    )
    .expect("pid file");
    let out = run_to_end(shell_without_broker(dir.path(), &["-e", NEEDS_BROKER])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("is in use by the embedded broker")
            && stderr.contains(&format!("--service-url pulsar://127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stale.try_wait().expect("status").is_none(), "not stopped");
    // Once that shell is gone (a pid that has exited), the broker is stale: stopped.
    let mut gone = std::process::Command::new("true").spawn().expect("true");
    let gone_pid = gone.id();
    gone.wait().expect("true ends");
    std::fs::write(
        broker_dir.join(PID_FILE),
        format!("{} {gone_pid} {port}", stale.id()),
    )
    .expect("pid file");

    let out = run_to_end(shell_without_broker(dir.path(), &["-e", NEEDS_BROKER])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let mut reaped = None;
    eventually("the stale broker to end", Duration::from_secs(10), || {
        reaped = stale.try_wait().expect("status");
        reaped.is_some()
    })
    .await;
    let reaped = reaped.expect("ended");
    assert!(
        stderr.contains(&format!("Stopping an embedded broker (pid {})", stale.id())),
        "{stderr}"
    );
    assert!(!reaped.success(), "it was killed: {reaped}");
    assert!(
        stderr.contains("Started an embedded pulsar-lite broker"),
        "{stderr}"
    );
}
