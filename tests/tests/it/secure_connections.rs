//! TLS and token authentication against a secured front for pulsar-lite (see
//! `magnetar_tests::secure_proxy`: pulsar-lite has neither), checked with the official
//! Python client too, so the fixture is not only checked against ourselves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use magnetar::{Engine, EngineConfig};
use magnetar_tests::secure_proxy::{Certificates, SecureProxy, Security, path_text, token};
use magnetar_tests::*;

const SECRET: &[u8] = b"magnetar-test-token-secret-0123456789";

/// Produces `n` messages through the front with the Python client; its exit code.
fn python_produce(url: &str, topic: &str, n: usize, ca: Option<&str>, token: Option<&str>) -> i32 {
    let mut args = vec!["produce", url, topic];
    let count = n.to_string();
    args.extend(["--count", &count]);
    if let Some(ca) = ca {
        args.extend(["--ca", ca]);
    }
    if let Some(t) = token {
        args.extend(["--token", t]);
    }
    python_status("secure_client.py", &args)
}

/// Runs a Python script and returns its exit code (the scripts exit 3 when refused).
fn python_status(script: &str, args: &[&str]) -> i32 {
    let path = repo_root().join("tests/python").join(script);
    let out = std::process::Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .expect("run python");
    out.status.code().unwrap_or(-1)
}

/// `count(*)` of a bounded Pulsar table with `options` (extra WITH entries) over `url`.
async fn count(url: &str, topic: &str, options: &str) -> Result<i64, String> {
    let engine = Engine::new(EngineConfig::default());
    engine
        .execute(&format!(
            "CREATE TABLE t (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{topic}',
               'service-url' = '{url}', 'format' = 'json',
               'source.stop.at-message-id' = 'latest'{options})"
        ))
        .await
        .map_err(|e| e.to_string())?;
    query_count(&engine, "SELECT count(*) FROM t").await
}

/// pulsar-lite behind a front that serves TLS (`Some(true)`: and demands a client
/// certificate) and/or demands a token signed with [`SECRET`].
async fn secured(tls: Option<bool>, token: bool) -> (TestBroker, Arc<Certificates>, SecureProxy) {
    let broker = TestBroker::start().await;
    let backend = broker.service_url().replace("pulsar://", "");
    let certs = Arc::new(Certificates::generate());
    let front = SecureProxy::start(
        &backend,
        Security {
            tls: tls.map(|require_client| (certs.clone(), require_client)),
            token_secret: token.then(|| SECRET.to_vec()),
        },
    )
    .await;
    (broker, certs, front)
}

fn tls_options(certs: &Certificates) -> String {
    format!(
        ", 'pulsar.client.tlsTrustCertsFilePath' = '{}'",
        path_text(&certs.ca)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_over_tls_with_the_host_name_verified() {
    let (_broker, certs, front) = secured(Some(false), false).await;
    let topic = unique_topic("tls");
    let url = front.url("pulsar+ssl", "localhost");
    let ca = path_text(&certs.ca);
    // The Python client trusts the fixture with the same CA, and checks the host name.
    assert_eq!(python_produce(&url, &topic, 25, Some(&ca), None), 0);
    assert_eq!(count(&url, &topic, &tls_options(&certs)).await, Ok(25));

    // Without the CA, the certificate is not trusted.
    let err = count(&url, &topic, "").await.expect_err("untrusted");
    assert!(err.contains("TLS") && err.contains("table 't'"), "{err}");
    // The certificate names `localhost`, not `127.0.0.1`: refused, by both clients.
    let by_ip = front.url("pulsar+ssl", "127.0.0.1");
    let err = count(&by_ip, &topic, &tls_options(&certs))
        .await
        .expect_err("wrong host name");
    assert!(err.contains("TLS"), "{err}");
    assert!(
        err.contains("NotValidForName") || err.contains("not valid for"),
        "{err}"
    );
    assert_ne!(python_produce(&by_ip, &topic, 1, Some(&ca), None), 0);
    // Unless hostname verification is turned off.
    let lenient = format!(
        "{}, 'pulsar.client.tlsHostnameVerificationEnable' = 'false'",
        tls_options(&certs)
    );
    assert_eq!(count(&by_ip, &topic, &lenient).await, Ok(25));
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_needs_the_client_certificate() {
    let (broker, certs, front) = secured(Some(true), false).await;
    let plain_topic = unique_topic("mtls");
    // Produce straight to the broker: the Python client here has no client certificate.
    python_produce(&broker.service_url(), &plain_topic, 7, None, None);
    let url = front.url("pulsar+ssl", "localhost");
    let err = count(&url, &plain_topic, &tls_options(&certs))
        .await
        .expect_err("no client certificate");
    assert!(err.contains("table 't'"), "{err}");
    let with_cert = format!(
        "{}, 'pulsar.client.tlsCertificateFilePath' = '{}', 'pulsar.client.tlsKeyFilePath' = '{}'",
        tls_options(&certs),
        path_text(&certs.client_cert),
        path_text(&certs.client_key)
    );
    assert_eq!(count(&url, &plain_topic, &with_cert).await, Ok(7));
    // The same through Flink's AuthenticationTls plugin.
    let plugin = format!(
        "{}, 'pulsar.client.authPluginClassName' = 'org.apache.pulsar.client.impl.auth.AuthenticationTls',
           'pulsar.client.authParams' = 'tlsCertFile:{},tlsKeyFile:{}'",
        tls_options(&certs),
        path_text(&certs.client_cert),
        path_text(&certs.client_key)
    );
    assert_eq!(count(&url, &plain_topic, &plugin).await, Ok(7));
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_from_a_value_or_a_file_are_accepted_and_a_wrong_one_is_refused_at_once() {
    let (_broker, _certs, front) = secured(None, true).await;
    let url = front.url("pulsar", "127.0.0.1");
    let topic = unique_topic("token");
    let good = token(SECRET, "magnetar", 3600);
    // The fixture refuses the Python client's wrong token and accepts the right one.
    assert_eq!(python_produce(&url, &topic, 1, None, Some("not-a-jwt")), 3);
    assert_eq!(python_produce(&url, &topic, 12, None, Some(&good)), 0);

    let plugin = "'pulsar.client.authPluginClassName' = 'org.apache.pulsar.client.impl.auth.AuthenticationToken'";
    let by_value = format!(", {plugin}, 'pulsar.client.authParams' = 'token:{good}'");
    assert_eq!(count(&url, &topic, &by_value).await, Ok(12));
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{good}\n")).expect("token file");
    let by_file = format!(
        ", {plugin}, 'pulsar.client.authParams' = 'file://{}'",
        file.display()
    );
    assert_eq!(count(&url, &topic, &by_file).await, Ok(12));

    let refused_before = front.refused();
    let started = Instant::now();
    let wrong = token(b"another-secret-entirely-0123456789", "magnetar", 3600);
    let err = count(
        &url,
        &topic,
        &format!(", {plugin}, 'pulsar.client.authParams' = 'token:{wrong}'"),
    )
    .await
    .expect_err("wrong token");
    assert!(
        err.contains("table 't'") && err.contains("authentication failed"),
        "{err}"
    );
    assert!(!err.contains(&wrong), "the token is not shown: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    // One refusal, not a retry storm.
    assert_eq!(front.refused() - refused_before, 1);
    let expired = token(SECRET, "magnetar", -120);
    let err = count(
        &url,
        &topic,
        &format!(", {plugin}, 'pulsar.client.authParams' = 'token:{expired}'"),
    )
    .await
    .expect_err("expired token");
    assert!(err.contains("authentication failed"), "{err}");
    // No credentials at all: refused the same way.
    let err = count(&url, &topic, "").await.expect_err("no token");
    assert!(err.contains("authentication failed"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_reads_and_writes_over_tls_with_a_token() {
    let (_broker, certs, front) = secured(Some(false), true).await;
    let url = front.url("pulsar+ssl", "localhost");
    let ca = path_text(&certs.ca);
    let good = token(SECRET, "magnetar", 3600);
    let input = unique_topic("secure-in");
    let output = unique_topic("secure-out");
    assert_eq!(python_produce(&url, &input, 30, Some(&ca), Some(&good)), 0);
    let security = format!(
        "'service-url' = '{url}', 'pulsar.client.tlsTrustCertsFilePath' = '{ca}',
         'pulsar.client.authPluginClassName' = 'org.apache.pulsar.client.impl.auth.AuthenticationToken',
         'pulsar.client.authParams' = 'token:{good}'"
    );
    let engine = Engine::new(EngineConfig::default());
    engine
        .execute(&format!(
            "CREATE TABLE input (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{input}',
               'format' = 'json', 'source.stop.at-message-id' = 'latest', {security});
             CREATE TABLE output (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{output}',
               'format' = 'json', {security});
             INSERT INTO output SELECT n * 2 FROM input WHERE n % 3 = 0"
        ))
        .await
        .expect("job starts");
    let jobs = engine.wait_for_jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].messages_written, 10, "{:?}", jobs[0]);
    // The Python client reads the output over TLS with the token.
    let out = run_python(
        "secure_client.py",
        &["read", &url, &output, "--ca", &ca, "--token", &good],
    );
    let mut values: Vec<i64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["n"]
                .as_i64()
                .expect("n")
        })
        .collect();
    values.sort();
    assert_eq!(
        values,
        (0..30)
            .filter(|n| n % 3 == 0)
            .map(|n| n * 2)
            .collect::<Vec<_>>()
    );
    assert!(
        front.accepted() >= 3,
        "every connection went through the front"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_takes_a_token_file_or_pulsar_client_conf() {
    let (_broker, certs, front) = secured(Some(false), true).await;
    let url = front.url("pulsar+ssl", "localhost");
    let ca = path_text(&certs.ca);
    let good = token(SECRET, "magnetar", 3600);
    let topic = unique_topic("cli-secure");
    assert_eq!(python_produce(&url, &topic, 9, Some(&ca), Some(&good)), 0);
    let dir = tempfile::tempdir().expect("dir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &good).expect("token file");
    let sql = format!(
        "CREATE TABLE t (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{topic}',
           'format' = 'json', 'source.stop.at-message-id' = 'latest');
         SELECT count(*) AS c FROM t"
    );
    // client.conf as Pulsar ships it: broker URL, TLS trust, token plugin.
    let conf = dir.path().join("client.conf");
    std::fs::write(
        &conf,
        format!(
            "webServiceUrl=https://localhost:8443/\nbrokerServiceUrl={url}/\n\
             authPlugin=org.apache.pulsar.client.impl.auth.AuthenticationToken\n\
             authParams=file://{}\nuseTls=true\ntlsAllowInsecureConnection=false\n\
             tlsEnableHostnameVerification=true\ntlsTrustCertsFilePath={ca}\n",
            token_file.display()
        ),
    )
    .expect("client.conf");
    let out = run_magnetar(
        &[
            "--pulsar-conf",
            &conf.to_string_lossy(),
            "--format",
            "csv",
            "-e",
            &sql,
        ],
        Duration::from_secs(60),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.lines().any(|l| l.trim() == "9"), "{stdout}");

    // --auth-token-file alone, with the TLS trust from SET in the script.
    let with_set = format!("SET 'pulsar.client.tlsTrustCertsFilePath' = '{ca}';\n{sql}");
    let out = run_magnetar(
        &[
            "--service-url",
            &url,
            "--auth-token-file",
            &token_file.to_string_lossy(),
            "--format",
            "csv",
            "-e",
            &with_set,
        ],
        Duration::from_secs(60),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.trim() == "9"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the token: refused, and said so.
    let out = run_magnetar(
        &["--service-url", &url, "--format", "csv", "-e", &with_set],
        Duration::from_secs(60),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("authentication failed"), "{stderr}");
    assert!(!stderr.contains(&good));
}

/// `tests/python/oauth2_server.py`: an OAuth2 server granting JWTs signed with [`SECRET`]
/// that live `lifetime_s` seconds. Stops when dropped.
struct OAuth2Server {
    child: std::process::Child,
    port: u16,
}

impl OAuth2Server {
    fn start(client_secret: &str, lifetime_s: u64) -> OAuth2Server {
        let secret = String::from_utf8_lossy(SECRET).to_string();
        let lifetime = lifetime_s.to_string();
        let (child, port) = start_python_fixture(
            "oauth2_server.py",
            &[&secret, "magnetar-client", client_secret, &lifetime],
        );
        OAuth2Server { child, port }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The next `count` token requests answer 503.
    async fn make_unavailable(&self, count: u32) {
        let answer = reqwest::Client::new()
            .post(format!("{}/test/unavailable?count={count}", self.issuer()))
            .send()
            .await
            .expect("fixture");
        assert!(answer.status().is_success());
    }

    async fn grants(&self) -> u64 {
        let text = reqwest::get(format!("{}/test/grants", self.issuer()))
            .await
            .expect("fixture")
            .text()
            .await
            .expect("answer");
        serde_json::from_str::<serde_json::Value>(&text).expect("json")["grants"]
            .as_u64()
            .expect("grants")
    }
}

impl Drop for OAuth2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth2_client_credentials_are_exchanged_for_tokens_refetched_before_they_expire() {
    let (_broker, _certs, front) = secured(None, true).await;
    let url = front.url("pulsar", "127.0.0.1");
    let topic = unique_topic("oauth2");
    let good = token(SECRET, "producer", 3600);
    assert_eq!(python_produce(&url, &topic, 6, None, Some(&good)), 0);
    let dir = tempfile::tempdir().expect("dir");
    let write_credentials = |name: &str, secret: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            serde_json::json!({
                "type": "client_credentials",
                "client_id": "magnetar-client",
                "client_secret": secret,
            })
            .to_string(),
        )
        .expect("credentials");
        path
    };
    let options = |issuer: &str, credentials: &std::path::Path| {
        format!(
            ", 'pulsar.client.authPluginClassName' = 'org.apache.pulsar.client.impl.auth.oauth2.AuthenticationOAuth2',
               'pulsar.client.authParams' = '{{\"issuerUrl\": \"{issuer}\", \"privateKey\": \"file://{}\", \"audience\": \"urn:pulsar\"}}'",
            credentials.display()
        )
    };
    // Long-lived tokens are granted once and reused by later connections.
    let long = OAuth2Server::start("client-secret-1", 3600);
    let credentials = write_credentials("long.json", "client-secret-1");
    assert_eq!(
        count(&url, &topic, &options(&long.issuer(), &credentials)).await,
        Ok(6)
    );
    assert_eq!(
        count(&url, &topic, &options(&long.issuer(), &credentials)).await,
        Ok(6)
    );
    assert_eq!(long.grants().await, 1, "one token for every connection");
    // A token about to expire is not sent again: each connection gets a fresh one.
    let short = OAuth2Server::start("client-secret-2", 5);
    let credentials = write_credentials("short.json", "client-secret-2");
    assert_eq!(
        count(&url, &topic, &options(&short.issuer(), &credentials)).await,
        Ok(6)
    );
    assert_eq!(
        count(&url, &topic, &options(&short.issuer(), &credentials)).await,
        Ok(6)
    );
    // (Each read opens two connections through the front: one for lookups, one proxied.)
    assert!(
        short.grants().await >= 2,
        "a fresh token for each connection"
    );
    // The official client's OAuth2 plugin gets a token from the same server, and the front
    // takes it: the fixtures speak OAuth2 as Pulsar's own clients do.
    let before = long.grants().await;
    let params = serde_json::json!({
        "issuer_url": long.issuer(),
        "private_key": format!("file://{}", dir.path().join("long.json").display()),
        "audience": "urn:pulsar",
    })
    .to_string();
    assert_eq!(
        python_status(
            "secure_client.py",
            &["produce", &url, &topic, "--count", "1", "--oauth2", &params]
        ),
        0
    );
    assert!(
        long.grants().await > before,
        "the Python client asked for a token"
    );
    // Wrong client credentials: a clear error, without the secret.
    let wrong = write_credentials("wrong.json", "not-the-secret");
    let err = count(&url, &topic, &options(&long.issuer(), &wrong))
        .await
        .expect_err("refused");
    assert!(
        err.contains("table 't'") && err.contains("OAuth2") && err.contains("invalid_client"),
        "{err}"
    );
    assert!(!err.contains("not-the-secret"), "{err}");

    // A token endpoint in trouble (503) is asked again, not taken for a refusal ...
    let flaky = OAuth2Server::start("client-secret-3", 3600);
    let credentials = write_credentials("flaky.json", "client-secret-3");
    flaky.make_unavailable(2).await;
    // (Six messages, and the one the Python client produced above.)
    assert_eq!(
        count(&url, &topic, &options(&flaky.issuer(), &credentials)).await,
        Ok(7)
    );
    assert_eq!(flaky.grants().await, 1);
    // ... and one that stays in trouble is reported as unavailable, not as wrong credentials.
    let down = OAuth2Server::start("client-secret-4", 3600);
    let credentials = write_credentials("down.json", "client-secret-4");
    down.make_unavailable(1000).await;
    let err = count(&url, &topic, &options(&down.issuer(), &credentials))
        .await
        .expect_err("unavailable");
    assert!(
        err.contains("unavailable")
            && err.contains("503")
            && !err.contains("authentication failed"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_job_answers_the_brokers_challenge_with_fresh_credentials() {
    let (_broker, _certs, front) = secured(None, true).await;
    let url = front.url("pulsar", "127.0.0.1");
    let topic = unique_topic("challenge");
    let first = token(SECRET, "magnetar", 3600);
    assert_eq!(python_produce(&url, &topic, 5, None, Some(&first)), 0);
    // The connections a Python producer opens (for lookups, and proxied to the broker).
    let per_producer = front.accepted();
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("token");
    std::fs::write(&file, &first).expect("token file");
    let engine = Engine::new(EngineConfig::default());
    engine
        .execute(&format!(
            "CREATE TABLE input (n BIGINT) WITH ('connector' = 'pulsar', 'topics' = '{topic}',
               'service-url' = '{url}', 'format' = 'json',
               'pulsar.client.authPluginClassName' = 'token',
               'pulsar.client.authParams' = 'file://{}');
             CREATE TABLE seen (n BIGINT) WITH ('connector' = 'memory');
             INSERT INTO seen SELECT n FROM input",
            file.display()
        ))
        .await
        .expect("job");
    let read = |engine: &Engine| engine.jobs().first().map_or(0, |j| j.messages_read);
    eventually("the first 5 messages read", Duration::from_secs(30), || {
        read(&engine) >= 5
    })
    .await;
    let connections = front.accepted();

    // The token was rotated; the broker's challenge gets the new one, on the same connections.
    std::fs::write(&file, token(SECRET, "rotated", 3600)).expect("rotate");
    front.challenge();
    eventually("the challenge answered", Duration::from_secs(30), || {
        front.refreshed() >= 1
    })
    .await;
    assert_eq!(python_produce(&url, &topic, 5, None, Some(&first)), 0);
    eventually("5 more messages read", Duration::from_secs(30), || {
        read(&engine) >= 10
    })
    .await;
    // The producer's connections were the only new ones: the job kept its own.
    assert_eq!(front.accepted(), connections + per_producer);
    assert_eq!(front.refused(), 0);

    // Credentials that went bad: the broker closes the connection, and the job fails saying
    // so instead of retrying them.
    std::fs::write(&file, "not-a-jwt").expect("spoil");
    front.challenge();
    let info = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(job) = engine.jobs().into_iter().find(|j| j.state.is_terminal()) {
                break job;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the job did not end: {:?}, refused {}",
            engine.jobs(),
            front.refused()
        )
    });
    assert!(
        matches!(&info.state, magnetar::JobState::Failed(e) if e.contains("authentication failed")),
        "{:?}",
        info.state
    );
}
