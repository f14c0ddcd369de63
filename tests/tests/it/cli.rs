//! The `magnetar` binary: scripts on standard input, output formats, and the demo.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use magnetar_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_script_on_stdin_runs_with_multi_line_statements_and_csv_output() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let topic = unique_topic("stdin");
    let script = format!(
        "CREATE TABLE t (s STRING, n BIGINT) WITH (
           'connector' = 'pulsar',
           'topics' = '{topic}'
         );
         SET 'table.dml-sync' = 'true';
         INSERT INTO t VALUES ('semi;colon', 1),
                              ('two', 2);
         CREATE TABLE r (s STRING, n BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{topic}',
           'source.stop.at-message-id' = 'latest');
         -- a comment; with a semicolon
         SELECT s, n * 10 AS n10
         FROM r ORDER BY n;"
    );
    let mut child = std::process::Command::new(magnetar_binary())
        .args(["--service-url", &url, "--format", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start magnetar");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write script");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // 'table.dml-sync' made the INSERT wait for its bounded job, so the SELECT sees its rows.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout, "s,n10\nsemi;colon,10\ntwo,20\n", "{stderr}");
    assert!(stderr.contains("finished: wrote 2 message(s)"), "{stderr}");
    let again = run_magnetar(
        &[
            "--service-url",
            &url,
            "--format",
            "json",
            "-e",
            &format!("CREATE TABLE r (s STRING, n BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{topic}', 'source.stop.at-message-id' = 'latest'); SELECT s, n FROM r ORDER BY n"),
        ],
        Duration::from_secs(60),
    )
    .await;
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        "{\"s\":\"semi;colon\",\"n\":1}\n{\"s\":\"two\",\"n\":2}\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_runs_and_shows_every_alert() {
    let out = run_magnetar(&["demo", "--events", "3000"], Duration::from_secs(120)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let seen = stderr
        .lines()
        .find_map(|l| l.split("the demo saw ").nth(1))
        .unwrap_or_else(|| panic!("no summary line:\n{stderr}"));
    let numbers: Vec<&str> = seen
        .trim_end_matches(" expected alerts.")
        .split(" of ")
        .collect();
    assert_eq!(numbers.len(), 2, "{seen}");
    assert_eq!(
        numbers[0], numbers[1],
        "every expected alert arrived: {seen}"
    );
    assert_ne!(numbers[0], "0", "{seen}");
    assert!(
        stderr.contains("Demo complete; broker stopped."),
        "{stderr}"
    );
    let patterns = stderr
        .lines()
        .find_map(|l| l.strip_prefix("Pattern alerts: "))
        .unwrap_or_else(|| panic!("no pattern summary:\n{stderr}"));
    let numbers: Vec<&str> = patterns
        .trim_end_matches(" expected.")
        .split(" of ")
        .collect();
    assert_eq!(numbers.len(), 2, "{patterns}");
    assert_eq!(
        numbers[0], numbers[1],
        "every pattern alert arrived: {patterns}"
    );
    assert_ne!(numbers[0], "0", "{patterns}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| user_id | window_start"), "{stdout}");
    assert!(stdout.contains("| user_id | first_failure"), "{stdout}");
    assert!(stdout.contains("u-9001"), "{stdout}");
}
