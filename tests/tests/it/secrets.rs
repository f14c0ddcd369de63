//! Secrets (tokens, secret keys, URL passwords) never appear in what Magnetar prints or keeps:
//! errors and the statement line they quote, `SET`'s echo, `SHOW SET`, `EXPLAIN`, `DESCRIBE`,
//! `SHOW CREATE TABLE`, `SHOW JOBS`, a failed job's error, the log at its most verbose, the
//! checkpoint metadata and the shell's history file.

use std::time::Duration;

use futures::StreamExt;
use magnetar_connectors::object_url::object_store_for;
use magnetar_tests::moto::MotoS3;
use magnetar_tests::terminal::Terminal;
use magnetar_tests::*;
use object_store::ObjectStoreExt;

const SECRETS: &[&str] = &["S3CR3T-one", "S3CR3T-two", "S3CR3T-three", "S3CR3T-four"];

#[tokio::test(flavor = "multi_thread")]
async fn no_output_of_a_script_shows_a_secret() {
    let broker = TestBroker::start().await;
    let topic = unique_topic("secrets");
    let dir = tempfile::tempdir().expect("dir");
    let script = dir.path().join("secrets.sql");
    std::fs::write(
        &script,
        format!(
            "SET 'execution.checkpointing.dir' = 's3://bucket/cp?region=x&secret_access_key={}';
SHOW SET;
CREATE TABLE t (n BIGINT) WITH (
  'connector' = 'pulsar', 'topics' = '{topic}', 'format' = 'json',
  'source.stop.at-message-id' = 'latest',
  'pulsar.client.authPluginClassName' = 'org.apache.pulsar.client.impl.auth.AuthenticationToken',
  'pulsar.client.authParams' = 'token:{}');
EXPLAIN SELECT n FROM t;
DESCRIBE t;
SHOW CREATE TABLE t;
SHOW JOBS;
SELECT count(*) FROM t;
CREATE TABLE bad (n BIGINT) WITH (
  'connector' = 'pulsar', 'topics' = 'x', 'admin-url' = 'http://admin:{}@127.0.0.1:1',
  'pulsar.client.authParams' = 'token:{}');
",
            SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3]
        ),
    )
    .expect("script");
    let out = run_magnetar(
        &[
            "--service-url",
            &broker.service_url(),
            "-f",
            &script.to_string_lossy(),
        ],
        Duration::from_secs(60),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The script ran to its last statement, which fails (params without a plugin).
    assert!(!out.status.success());
    assert!(stderr.contains("pulsar.client.authParams"), "{stderr}");
    assert!(stdout.contains("Bounded plan"), "EXPLAIN ran: {stdout}");
    assert!(
        stdout.contains("'pulsar.client.authParams' = '******'"),
        "SHOW CREATE TABLE ran: {stdout}"
    );
    // The SET echo and SHOW SET show the setting, masked.
    let all = format!("{stdout}{stderr}");
    assert!(
        all.matches("secret_access_key=******").count() >= 2,
        "{all}"
    );
    for secret in SECRETS {
        assert!(!stdout.contains(secret), "{secret} in stdout:\n{stdout}");
        assert!(!stderr.contains(secret), "{secret} in stderr:\n{stderr}");
    }
}

/// A job with a token on both tables and a secret key in its checkpoint URL: it runs, checkpoints
/// into S3 (moto), is listed and stopped, then a second job fails on a missing bucket. Nothing
/// printed at `--log trace` and no checkpoint object holds a secret.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_its_log_and_its_checkpoints_keep_secrets() {
    const TOKEN: &str = "S3CR3T-token";
    const KEY: &str = "S3CR3T-key";
    let broker = TestBroker::start().await;
    let moto = MotoS3::start("checkpoints").await;
    let input = unique_topic("secret-in");
    let output = unique_topic("secret-out");
    let dir = tempfile::tempdir().expect("dir");
    let lines: Vec<(Option<String>, String)> =
        (0..5).map(|n| (None, format!("{{\"n\": {n}}}"))).collect();
    python_produce_file(
        &broker.service_url(),
        &input,
        &write_messages_file(dir.path(), &lines),
        false,
    );
    let checkpoints = moto.url("checkpoints", "jobs").replace(
        "secret_access_key=test",
        &format!("secret_access_key={KEY}"),
    );
    let missing = checkpoints.replace("s3://checkpoints/", "s3://no-such-bucket/");
    let auth = format!(
        "'pulsar.client.authPluginClassName' = 'org.apache.pulsar.client.impl.auth.AuthenticationToken',
         'pulsar.client.authParams' = 'token:{TOKEN}'"
    );
    let script = dir.path().join("job.sql");
    std::fs::write(
        &script,
        format!(
            "SET 'execution.checkpointing.dir' = '{checkpoints}';
SET 'execution.checkpointing.interval' = '1 h';
CREATE TABLE src (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{input}', 'format' = 'json', {auth});
CREATE TABLE out (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{output}', 'format' = 'json', {auth});
SET 'pipeline.name' = 'secretive';
INSERT INTO out SELECT n FROM src;
SHOW JOBS;
STOP JOB 'secretive';
SHOW JOBS;
SET 'execution.checkpointing.dir' = '{missing}';
SET 'pipeline.name' = 'doomed';
SET 'table.dml-sync' = 'true';
INSERT INTO out SELECT n FROM src WHERE n < 0;
"
        ),
    )
    .expect("script");
    let out = run_magnetar(
        &[
            "--service-url",
            &broker.service_url(),
            "--log",
            "trace",
            "-f",
            &script.to_string_lossy(),
        ],
        Duration::from_secs(120),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}{stderr}");
    // The second job failed on the missing bucket, and said so.
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("no-such-bucket"), "{all}");
    assert!(all.contains("secret_access_key=******"), "{all}");
    // The log ran at trace level: it has the engine's own lines.
    assert!(all.contains("TRACE") || all.contains("DEBUG"), "{all}");
    for secret in [TOKEN, KEY] {
        assert!(!all.contains(secret), "{secret} printed:\n{all}");
    }

    // The first job checkpointed when it stopped; no object of it holds a secret.
    let (store, _) = object_store_for(&checkpoints).expect("store");
    let objects: Vec<object_store::path::Path> = store
        .list(Some(&object_store::path::Path::from("jobs")))
        .map(|m| m.expect("listing").location)
        .collect()
        .await;
    assert!(
        objects.iter().any(|o| o.as_ref().contains("secretive")),
        "a checkpoint of the job: {objects:?}"
    );
    let mut sql_seen = false;
    for object in &objects {
        let bytes = store
            .get(object)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        let text = String::from_utf8_lossy(&bytes);
        sql_seen |= text.contains("INSERT INTO out");
        for secret in [TOKEN, KEY] {
            assert!(!text.contains(secret), "{secret} in {object}");
        }
    }
    assert!(
        sql_seen,
        "the metadata keeps the job's statement: {objects:?}"
    );
}

/// The shell shows `SHOW CREATE TABLE` masked and keeps the statement in its history masked.
#[tokio::test(flavor = "multi_thread")]
async fn the_shell_and_its_history_keep_secrets() {
    const TOKEN: &str = "S3CR3T-repl";
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let dir_text = dir.path().display().to_string();
    let mut t = Terminal::spawn(
        &[
            "--service-url",
            &broker.service_url(),
            "--data-dir",
            &dir_text,
        ],
        &[],
        dir.path(),
    );
    let wait = Duration::from_secs(30);
    t.wait_for_text("magnetar>", wait);
    let topic = unique_topic("secret-repl");
    t.send(&format!(
        "CREATE TABLE t (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{topic}', 'pulsar.client.authPluginClassName' = 'org.apache.pulsar.client.impl.auth.AuthenticationToken', 'pulsar.client.authParams' = 'token:{TOKEN}');\r"
    ));
    t.wait_for_text("Table 't' created.", wait);
    t.wait_for("a second prompt", wait, |s| {
        s.matches("magnetar>").count() >= 2
    });
    // The screen holds the typed statement; clear it before looking at what is printed.
    t.send("\x0c");
    t.send("SHOW CREATE TABLE t;\r");
    let screen = t.wait_for_text("'pulsar.client.authParams' = '******'", wait);
    assert!(screen.contains("CREATE TABLE `t` ("), "{screen}");
    assert!(!screen.contains(TOKEN), "{screen}");
    t.send("\\q\r");
    assert_eq!(t.wait_exit(wait), 0);
    let history = std::fs::read_to_string(dir.path().join("history")).expect("history");
    assert!(history.contains("SHOW CREATE TABLE t"), "{history}");
    assert!(history.contains("'pulsar.client.authParams'"), "{history}");
    assert!(!history.contains(TOKEN), "{history}");
}
