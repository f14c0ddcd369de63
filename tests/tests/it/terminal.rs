//! The shell as a user sees it: the real binary in a pseudo-terminal, the screen read
//! through a terminal emulator. Multi-line input, completion, Ctrl-C, the live table view,
//! history; and the embedded broker started with no configuration at all.

use std::path::Path;
use std::time::Duration;

use magnetar_tests::terminal::Terminal;
use magnetar_tests::*;

const WAIT: Duration = Duration::from_secs(30);

/// The shell against `url`, keeping its history in `dir`.
fn shell(url: &str, dir: &Path) -> Terminal {
    let dir_text = dir.display().to_string();
    let t = Terminal::spawn(&["--service-url", url, "--data-dir", &dir_text], &[], dir);
    t.wait_for_text("magnetar>", WAIT);
    t
}

/// Waits until the screen shows `n` prompts.
fn wait_for_prompts(t: &Terminal, n: usize) -> String {
    t.wait_for(&format!("{n} prompts"), WAIT, |s| {
        s.matches("magnetar>").count() >= n
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_semicolon_inside_a_string_or_comment_does_not_end_a_multi_line_statement() {
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut t = shell(&broker.service_url(), dir.path());
    t.send("SELECT 'x;y' AS s, -- a comment; still the same statement\r");
    t.send("  42 AS n;\r");
    let screen = t.wait_for_text("1 row(s)", WAIT);
    assert!(
        screen.lines().any(|l| l.contains("| x;y | 42 |")),
        "{screen}"
    );
    assert!(!screen.contains("Error"), "{screen}");
    // One statement, one prompt after it: the first line did not run on its own.
    let screen = wait_for_prompts(&t, 2);
    assert_eq!(screen.matches("magnetar>").count(), 2, "{screen}");

    t.send("\\q\r");
    assert_eq!(t.wait_exit(WAIT), 0);
    // The statement is in the history, which only its owner can read.
    let history = dir.path().join("history");
    let text = std::fs::read_to_string(&history).expect("history file");
    assert!(text.contains("SELECT 'x;y' AS s"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&history)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "history mode {mode:o}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tab_completes_table_names_option_keys_and_option_values() {
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut t = shell(&broker.service_url(), dir.path());
    let topic = unique_topic("completion");
    t.send(&format!(
        "CREATE TABLE clicks (user_id STRING, url STRING) WITH ('connector' = 'pulsar', 'topics' = '{topic}');\r"
    ));
    t.wait_for_text("Table 'clicks' created.", WAIT);
    // Type only at a prompt: keys typed earlier are not the editor's yet.
    wait_for_prompts(&t, 2);

    // A table name.
    t.send("DESCRIBE cli\t");
    t.wait_for_text("DESCRIBE clicks", WAIT);
    t.send(";\r");
    let screen = wait_for_prompts(&t, 3);
    assert!(screen.contains("| user_id |"), "{screen}");

    // An option key (the connector's, completed with ` = '`), then one of its values.
    t.send("CREATE TABLE t2 (a INT) WITH ('connector' = 'pulsar', 'topics' = 'x', 'source.subscription-ty\t");
    t.wait_for_text("'source.subscription-type' = '", WAIT);
    t.send("Fail\t");
    t.wait_for_text("'source.subscription-type' = 'Failover'", WAIT);
    t.send(");\r");
    t.wait_for_text("Table 't2' created.", WAIT);
    let screen = wait_for_prompts(&t, 4);
    assert!(!screen.contains("Error"), "{screen}");
    t.send("\x04");
    assert_eq!(t.wait_exit(WAIT), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_cancels_an_unbounded_select_and_the_prompt_comes_back() {
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut t = shell(&broker.service_url(), dir.path());
    let topic = unique_topic("cancel");
    t.send(&format!(
        "CREATE TABLE live (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{topic}');\r"
    ));
    t.wait_for_text("Table 'live' created.", WAIT);
    wait_for_prompts(&t, 2);
    t.send("SELECT n FROM live;\r");
    // The live table is drawn and waits for rows that never come.
    t.wait_for_text("updating as results arrive", WAIT);
    t.send("\x03");
    t.wait_for_text("Cancelled.", WAIT);
    wait_for_prompts(&t, 3);
    // The shell works after the cancel.
    t.send("SELECT 'alive' AS s;\r");
    t.wait_for_text("| alive |", WAIT);
    let screen = wait_for_prompts(&t, 4);
    assert!(!screen.contains("Error"), "{screen}");
    t.send("\x04");
    assert_eq!(t.wait_exit(WAIT), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_table_view_updates_in_place_as_windows_close() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut t = shell(&url, dir.path());
    let topic = unique_topic("live-windows");
    t.send(&format!(
        "CREATE TABLE ev (k STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'pulsar', 'topics' = '{topic}');\r"
    ));
    t.wait_for_text("Table 'ev' created.", WAIT);
    wait_for_prompts(&t, 2);
    t.send("SET 'sql-client.execution.result-mode' = 'table';\r");
    wait_for_prompts(&t, 3);
    t.send("SELECT window_start, window_end, count(*) AS n FROM TABLE(TUMBLE(TABLE ev, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end;\r");
    t.wait_for_text("updating as results arrive", WAIT);

    let produce = |seconds: &[u32]| {
        let messages: Vec<(Option<String>, String)> = seconds
            .iter()
            .map(|s| {
                (
                    None,
                    format!(r#"{{"k": "a", "ts": "2025-11-24 10:00:{s:02}.000"}}"#),
                )
            })
            .collect();
        let file = write_messages_file(dir.path(), &messages);
        python_produce_file(&url, &topic, &file, false);
    };
    // Three events in [10:00:00, 10:00:10), then one at 10:00:12 that closes that window.
    produce(&[1, 2, 5, 12]);
    let screen = t.wait_for_text("1 row(s)", WAIT);
    assert_eq!(
        rows(&screen),
        [["2025-11-24T10:00:00", "2025-11-24T10:00:10", "3"]],
        "{screen}"
    );

    // Three more in [10:00:10, 10:00:20) and one at 10:00:25 that closes it.
    produce(&[13, 15, 17, 25]);
    let screen = t.wait_for_text("2 row(s)", WAIT);
    assert_eq!(
        rows(&screen),
        [
            ["2025-11-24T10:00:00", "2025-11-24T10:00:10", "3"],
            ["2025-11-24T10:00:10", "2025-11-24T10:00:20", "4"]
        ],
        "{screen}"
    );
    // Redrawn in place: one header, and the earlier status line is gone.
    assert_eq!(screen.matches("| window_start").count(), 1, "{screen}");
    assert!(!screen.contains("1 row(s)"), "{screen}");

    t.send("\x03");
    t.wait_for_text("Cancelled.", WAIT);
    wait_for_prompts(&t, 4);
    t.send("\x04");
    assert_eq!(t.wait_exit(WAIT), 0);
}

/// The cells of the window rows on the screen (lines `| 2025-… | … |`).
fn rows(screen: &str) -> Vec<[String; 3]> {
    screen
        .lines()
        .filter(|l| l.starts_with("| 20"))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            [cells[0].clone(), cells[1].clone(), cells[2].clone()]
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_configuration_an_embedded_broker_starts_and_the_demo_table_works() {
    let home = tempfile::tempdir().expect("temp dir");
    let home_text = home.path().display().to_string();
    let sql = std::fs::read_to_string(repo_root().join("cli/examples/clickstream.sql"))
        .expect("clickstream.sql");
    // The demo's first statement: CREATE TABLE clicks.
    let statements = magnetar::sql::split_statements(&sql).expect("clickstream.sql splits");
    let create = &statements
        .iter()
        .find(|s| s.text.contains("CREATE TABLE clicks"))
        .expect("CREATE TABLE clicks")
        .text;
    let script = format!(
        "{create};
         SET 'table.dml-sync' = 'true';
         INSERT INTO clicks (event_id, user_id, ts) VALUES ('e1', 'u1', TIMESTAMP '2025-11-24 10:00:00');
         CREATE TABLE seen (event_id STRING, user_id STRING) WITH ('connector' = 'pulsar',
           'topics' = 'persistent://public/default/click-events', 'source.stop.at-message-id' = 'latest');
         SELECT event_id, user_id FROM seen;"
    );
    let out = tokio::process::Command::new(magnetar_binary())
        .args(["--format", "csv", "-e", &script])
        .env_remove("MAGNETAR_SERVICE_URL")
        .env("HOME", &home_text)
        .env("XDG_DATA_HOME", &home_text)
        .current_dir(home.path())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("magnetar finished in time")
        .expect("run magnetar");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let broker_dir = home.path().join("magnetar").join("broker");
    let said = stderr
        .lines()
        .filter(|l| l.starts_with("Started an embedded pulsar-lite broker at pulsar://127.0.0.1:"))
        .collect::<Vec<_>>();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].contains(&broker_dir.display().to_string()),
        "{stderr}"
    );
    assert!(broker_dir.is_dir());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "event_id,user_id\ne1,u1\n",
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_broker_binary_gives_the_install_command() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("no-pulsar-lite-here");
    let run = |script: &str| {
        tokio::process::Command::new(magnetar_binary())
            .args(["-e", script])
            .env_remove("MAGNETAR_SERVICE_URL")
            .env("MAGNETAR_PULSAR_LITE", &missing)
            .env("XDG_DATA_HOME", dir.path())
            .kill_on_drop(true)
            .output()
    };
    let out = run("CREATE TABLE t (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = 't')")
        .await
        .expect("run magnetar");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pip install pulsar-lite==0.2.0") && stderr.contains("./scripts/setup.sh"),
        "{stderr}"
    );
    // A script without a Pulsar table needs no broker, so none is looked for.
    let out = run("SHOW TABLES; SELECT 1 AS one")
        .await
        .expect("run magnetar");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("embedded"), "{stderr}");
}
