//! How long the shell takes to be ready to type in: from starting `magnetar` in a
//! pseudo-terminal to its prompt on the screen. With a broker URL (nothing else to start)
//! and with the embedded pulsar-lite broker (started, then connected to).
//!
//! `cargo bench -p magnetar-cli --bench startup` (after `./scripts/setup.sh`).

use std::io::Read;
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

const RUNS: usize = 10;

/// Starts the shell with `args` and returns the time until the prompt shows.
fn time_to_prompt(args: &[&str], data_dir: &std::path::Path) -> Duration {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 120,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("open a pseudo-terminal");
    let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_magnetar"));
    command.args(args);
    command.arg("--data-dir");
    command.arg(data_dir);
    command.env("TERM", "xterm-256color");
    let started = Instant::now();
    let mut child = pty.slave.spawn_command(command).expect("start magnetar");
    let mut reader = pty.master.try_clone_reader().expect("reader");
    let mut screen = Vec::new();
    let mut buf = [0u8; 4096];
    let elapsed = loop {
        let n = reader.read(&mut buf).expect("read the terminal");
        assert!(
            n > 0,
            "magnetar exited before its prompt: {}",
            String::from_utf8_lossy(&screen)
        );
        screen.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&screen).contains("magnetar>") {
            break started.elapsed();
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

fn summary(mut times: Vec<Duration>) -> (f64, f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
    )
}

fn main() {
    // A broker for the first case; the shell only connects when a statement needs it.
    let data = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let broker = rt
        .block_on(magnetar_connectors::pulsar::PulsarLite::start(
            magnetar_connectors::pulsar::LiteOptions {
                data_dir: data.path().join("broker"),
                ..Default::default()
            },
        ))
        .expect("start pulsar-lite (run ./scripts/setup.sh)");
    let url = broker.service_url();
    let with_url: Vec<Duration> = (0..RUNS)
        .map(|i| time_to_prompt(&["--service-url", &url], &data.path().join(format!("u{i}"))))
        .collect();
    let embedded: Vec<Duration> = (0..RUNS)
        .map(|i| time_to_prompt(&[], &data.path().join(format!("e{i}"))))
        .collect();
    println!("magnetar shell startup: time from exec to the prompt, {RUNS} runs each");
    println!("| case | min ms | median ms | max ms |");
    println!("|---|---:|---:|---:|");
    for (case, times) in [
        ("--service-url given", with_url),
        ("embedded pulsar-lite started", embedded),
    ] {
        let (min, median, max) = summary(times);
        println!("| {case} | {min:.1} | {median:.1} | {max:.1} |");
    }
}
