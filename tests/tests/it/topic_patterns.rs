//! Topic patterns: a table reads every topic of a namespace that matches, exactly, and a
//! pattern that matches nothing is an error, never an empty answer.

use std::time::Duration;

use magnetar::{Engine, EngineConfig};
use magnetar_tests::*;

fn produce(url: &str, topic: &str, n: usize) {
    let dir = tempfile::tempdir().expect("dir");
    let messages: Vec<(Option<String>, String)> =
        (0..n).map(|i| (None, format!("{{\"n\": {i}}}"))).collect();
    let file = write_messages_file(dir.path(), &messages);
    python_produce_file(url, topic, &file, false);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pattern_reads_every_matching_topic_and_nothing_else() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let admin = AdminRestFixture::start();
    let prefix = unique_topic("click")
        .rsplit('/')
        .next()
        .expect("a local name")
        .to_string();
    let names: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|s| format!("persistent://public/default/{prefix}-{s}"))
        .collect();
    let other = format!("persistent://public/default/view-{prefix}");
    for (i, name) in names.iter().enumerate() {
        produce(&url, name, 10 + i);
    }
    produce(&url, &other, 50);
    let mut listed = names.clone();
    listed.push(other.clone());
    admin.set_namespace_topics("public/default", &listed).await;

    let engine = Engine::new(EngineConfig::with_service_url(&url));
    engine
        .execute(&format!(
            "CREATE TABLE clicks (n BIGINT) WITH ('connector' = 'pulsar', 'format' = 'json',
               'topic-pattern' = 'persistent://public/default/{prefix}-.*',
               'admin-url' = '{}', 'source.stop.at-message-id' = 'latest');
             CREATE TABLE clicks2 (n BIGINT) WITH ('connector' = 'pulsar', 'format' = 'json',
               'topics' = '{prefix}-[ab]', 'admin-url' = '{}',
               'source.stop.at-message-id' = 'latest',
               'pulsar.client.authPluginClassName' = 'token',
               'pulsar.client.authParams' = 'token:admin-token-1');
             CREATE TABLE nothing (n BIGINT) WITH ('connector' = 'pulsar', 'format' = 'json',
               'topics' = 'no-such-{prefix}-.*', 'admin-url' = '{}',
               'source.stop.at-message-id' = 'latest')",
            admin.admin_url(),
            admin.admin_url(),
            admin.admin_url()
        ))
        .await
        .expect("create");
    assert_eq!(
        query_count(&engine, "SELECT count(*) FROM clicks").await,
        Ok(33)
    );
    // A regex in 'topics' is a pattern too (short: in public/default).
    assert_eq!(
        query_count(&engine, "SELECT count(*) FROM clicks2").await,
        Ok(21)
    );
    // The namespace was listed with the table's token (pulsar-lite accepts any token).
    assert_eq!(
        admin.last_authorization().await.as_deref(),
        Some("Bearer admin-token-1")
    );
    let err = query_count(&engine, "SELECT count(*) FROM nothing")
        .await
        .expect_err("matches nothing");
    assert!(
        err.contains("matches no topic") && err.contains("public/default"),
        "{err}"
    );
    assert!(err.contains(&format!("no-such-{prefix}-.*")), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_admin_url_the_broker_is_asked_and_pulsar_lite_does_not_answer() {
    let broker = TestBroker::start().await;
    let engine = Engine::new(EngineConfig::with_service_url(broker.service_url()));
    engine
        .execute(
            "CREATE TABLE t (n BIGINT) WITH ('connector' = 'pulsar', 'format' = 'json',
               'topic-pattern' = 'click-.*', 'source.stop.at-message-id' = 'latest')",
        )
        .await
        .expect("create");
    let started = std::time::Instant::now();
    let err = query_count(&engine, "SELECT count(*) FROM t")
        .await
        .expect_err("pulsar-lite never answers GET_TOPICS_OF_NAMESPACE");
    // pulsar-lite's gap (connectors/README.md): the request times out; real brokers answer.
    assert!(
        err.contains("GET_TOPICS_OF_NAMESPACE") && err.contains("admin-url"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let err = engine
        .execute(
            "CREATE TABLE s (n BIGINT) WITH ('connector' = 'pulsar', 'format' = 'json',
               'topic-pattern' = 'click-.*');
             CREATE TABLE u (n BIGINT) WITH ('connector' = 'memory');
             INSERT INTO s SELECT n FROM u",
        )
        .await
        .expect_err("a sink is one named topic");
    assert!(err.to_string().contains("exactly one named topic"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_created_while_a_job_runs_joins_it() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let admin = AdminRestFixture::start();
    let prefix = unique_topic("live")
        .rsplit('/')
        .next()
        .expect("a local name")
        .to_string();
    let name = |s: &str| format!("persistent://public/default/{prefix}-{s}");
    produce(&url, &name("a"), 4);
    admin
        .set_namespace_topics("public/default", &[name("a")])
        .await;
    let engine = Engine::new(EngineConfig::with_service_url(&url));
    engine
        .execute(&format!(
            "CREATE TABLE clicks (n BIGINT) WITH ('connector' = 'pulsar', 'format' = 'json',
               'topic-pattern' = '{prefix}-.*', 'admin-url' = '{}',
               'pulsar.source.partitionDiscoveryIntervalMs' = '200');
             CREATE TABLE seen (n BIGINT) WITH ('connector' = 'memory');
             SET 'parallelism.default' = '2';
             INSERT INTO seen SELECT n FROM clicks",
            admin.admin_url()
        ))
        .await
        .expect("job");
    let read = |engine: &Engine| engine.jobs().first().map_or(0, |j| j.messages_read);
    eventually("the first topic read", Duration::from_secs(30), || {
        read(&engine) >= 4
    })
    .await;
    // Two new topics, one matching; the broker's namespace list shows both.
    produce(&url, &name("b"), 6);
    let other = format!("persistent://public/default/other-{prefix}");
    produce(&url, &other, 50);
    admin
        .set_namespace_topics("public/default", &[name("a"), name("b"), other])
        .await;
    eventually("the new topic read", Duration::from_secs(30), || {
        read(&engine) >= 10
    })
    .await;
    produce(&url, &name("b"), 2);
    eventually("more of it", Duration::from_secs(30), || {
        read(&engine) >= 12
    })
    .await;
    engine.stop_job(&engine.jobs()[0].id).await.expect("stop");
    assert_eq!(read(&engine), 12, "the other topic is not read");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_whose_pattern_matches_nothing_yet_waits_with_a_warning() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let admin = AdminRestFixture::start();
    let prefix = unique_topic("later")
        .rsplit('/')
        .next()
        .expect("a local name")
        .to_string();
    let topic = format!("persistent://public/default/{prefix}-x");
    admin.set_namespace_topics("public/default", &[]).await;
    let engine = Engine::new(EngineConfig::with_service_url(&url));
    engine
        .execute(&format!(
            "CREATE TABLE clicks (n BIGINT) WITH ('connector' = 'pulsar', 'format' = 'json',
               'topic-pattern' = '{prefix}-.*', 'admin-url' = '{}',
               'source.start.message-id' = 'latest',
               'pulsar.source.partitionDiscoveryIntervalMs' = '200');
             CREATE TABLE seen (n BIGINT) WITH ('connector' = 'memory');
             INSERT INTO seen SELECT n FROM clicks",
            admin.admin_url()
        ))
        .await
        .expect("the job starts although nothing matches yet");
    let warning = |engine: &Engine| {
        engine
            .jobs()
            .first()
            .and_then(|j| j.warnings.first().cloned())
    };
    eventually(
        "a warning about the pattern",
        Duration::from_secs(30),
        || warning(&engine).is_some(),
    )
    .await;
    let text = warning(&engine).expect("warning");
    assert!(
        text.contains(&format!("/{prefix}-.*'")) && text.contains("'public/default'"),
        "{text}"
    );
    // SHOW JOBS prints it, and the job is running, not failed.
    let shown = format!("{:?}", engine.execute("SHOW JOBS").await.expect("show"));
    assert!(shown.contains("matches no topic"), "{shown}");
    assert_eq!(engine.jobs()[0].state, magnetar::JobState::Running);

    // Written before the listing finds the topic: a topic that appears is read from its start,
    // even where the table starts at `latest`.
    produce(&url, &topic, 3);
    admin.set_namespace_topics("public/default", &[topic]).await;
    let read = |engine: &Engine| engine.jobs().first().map_or(0, |j| j.messages_read);
    eventually(
        "the topic read once it exists",
        Duration::from_secs(30),
        || read(&engine) >= 3,
    )
    .await;
    assert_eq!(warning(&engine), None, "the warning is gone");
    engine.stop_job(&engine.jobs()[0].id).await.expect("stop");
    assert_eq!(read(&engine), 3);
}
