//! Secrets (tokens, secret keys, URL passwords) never appear in what Magnetar prints: errors and
//! the statement line they quote, `SET`'s echo, `SHOW SET`, `EXPLAIN`, `DESCRIBE`, `SHOW JOBS`
//! and the log.

use std::time::Duration;

use magnetar_tests::*;

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
