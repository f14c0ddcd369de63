//! Bad input gets a clear error naming its place, and nothing panics.

use std::time::Duration;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use futures::StreamExt;
use magnetar::{Engine, EngineConfig, EngineError, StatementOutput};
use magnetar_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_misspelled_option_names_the_key_the_nearest_valid_one_and_its_place() {
    let engine = Engine::new(EngineConfig::default());
    let err = engine
        .execute(
            "CREATE TABLE t (a INT) WITH (\n  'connector' = 'pulsar',\n  'topics' = 'x',\n  'source.subscription-nmae' = 's'\n)",
        )
        .await
        .expect_err("typo");
    let text = err.to_string();
    assert!(
        text.contains("unknown option 'source.subscription-nmae'"),
        "{text}"
    );
    assert!(
        text.contains("did you mean 'source.subscription-name'"),
        "{text}"
    );
    assert_eq!((err.location().line, err.location().column), (4, 3));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_sql_is_located_in_the_script() {
    let engine = Engine::new(EngineConfig::default());
    let err = engine
        .execute("SET 'pipeline.name' = 'ok';\n\nSELECT a,, b FROM t")
        .await
        .expect_err("syntax");
    assert!(matches!(err.error, EngineError::Sql(_)), "{err:?}");
    assert_eq!(err.location().line, 3, "{err}");
    assert_eq!(err.location().column, 10, "{err}");
    let err = engine
        .execute("SELECT nope FROM nowhere")
        .await
        .expect_err("unknown table");
    assert!(err.to_string().contains("not found"), "{err}");
    assert_eq!(err.location().column, 18, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misspelled_column_names_the_nearest_one_and_points_at_itself() {
    let engine = Engine::new(EngineConfig::default());
    engine
        .execute("CREATE TABLE clicks (user_id STRING, url STRING) WITH ('connector' = 'memory')")
        .await
        .expect("create");
    let err = engine
        .execute("SET 'pipeline.name' = 'x';\nSELECT user_id\nFROM clicks WHERE urll = 'a'")
        .await
        .expect_err("unknown column");
    let text = err.to_string();
    assert!(text.contains("No field named urll"), "{text}");
    assert!(text.contains("Did you mean 'clicks.url'?"), "{text}");
    // At the misspelled name, not at the start of the statement.
    assert_eq!(
        (err.location().line, err.location().column),
        (3, 19),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_broker_is_a_clear_error() {
    let port = magnetar_connectors::pulsar::lite::free_port().expect("port");
    let engine = Engine::new(EngineConfig::with_service_url(format!(
        "pulsar://127.0.0.1:{port}"
    )));
    engine
        .execute("CREATE TABLE t (a INT) WITH ('connector' = 'pulsar', 'topics' = 'x')")
        .await
        .expect("creating a table does not connect");
    let err = engine
        .query("SELECT a FROM t")
        .await
        .expect_err("no broker");
    let text = err.to_string();
    assert!(
        text.contains(&format!("cannot connect to Pulsar at 127.0.0.1:{port}")),
        "{text}"
    );
    let err = engine
        .execute("CREATE TABLE s (a INT) WITH ('connector'='pulsar', 'topics'='y'); INSERT INTO s SELECT a FROM t")
        .await
        .expect_err("no broker for the job");
    assert!(err.to_string().contains("cannot"), "{err}");
    assert!(
        engine.jobs().is_empty(),
        "a job that cannot start is not listed"
    );
    // A bounded read connects when it runs: the error is the stream's first item.
    engine
        .execute("CREATE TABLE b (a INT) WITH ('connector' = 'pulsar', 'topics' = 'x', 'source.stop.at-message-id' = 'latest')")
        .await
        .expect("create");
    let mut rows = engine
        .query("SELECT count(*) FROM b")
        .await
        .expect("planning needs no broker");
    let err = rows.next().await.expect("an item").expect_err("no broker");
    assert!(
        err.to_string().contains("cannot connect to Pulsar"),
        "{err}"
    );
}

async fn engine_with_bad_messages(url: &str, topic: &str, ignore: bool) -> Engine {
    let engine = Engine::new(EngineConfig::with_service_url(url));
    engine
        .execute(&format!(
            "CREATE TABLE t (n BIGINT, s STRING) WITH ('connector' = 'pulsar', 'topics' = '{topic}',
               'source.stop.at-message-id' = 'latest', 'json.ignore-parse-errors' = '{ignore}')"
        ))
        .await
        .expect("create");
    engine
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_message_fails_the_query_naming_topic_and_message_id_or_is_skipped_and_counted()
{
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let topic = unique_topic("badjson");
    let dir = tempfile::tempdir().expect("tempdir");
    let msgs = vec![
        (None, r#"{"n": 1, "s": "a"}"#.to_string()),
        (None, r#"{"n": 2, "s": "b""#.to_string()),
        (None, r#"{"n": "three", "s": "c"}"#.to_string()),
        (None, r#"{"n": 4, "s": "d"}"#.to_string()),
    ];
    python_produce_file(&url, &topic, &write_messages_file(dir.path(), &msgs), false);
    let ids: Vec<String> = python_read_all(&url, &topic)
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(ids.len(), 4);

    // Default policy: fail, naming the first bad message.
    let engine = engine_with_bad_messages(&url, &topic, false).await;
    let mut stream = engine
        .query("SELECT n, s FROM t")
        .await
        .expect("query starts");
    let mut failure = None;
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            failure = Some(e);
            break;
        }
    }
    let text = failure.expect("the query fails").to_string();
    assert!(text.contains(&topic), "names the topic: {text}");
    // The Python client prints ids as (ledger,entry,partition,batch); ours as ledger:entry:partition.
    let second = ids[1]
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .collect::<Vec<_>>();
    assert!(
        text.contains(&format!("{}:{}:{}", second[0], second[1], second[2])),
        "names message {:?}: {text}",
        ids[1]
    );
    assert!(
        text.contains("json.ignore-parse-errors"),
        "says how to skip: {text}"
    );

    // 'json.ignore-parse-errors' = 'true': the unparsable message is skipped and counted, the
    // wrongly typed field reads as NULL (Flink's behaviour).
    let engine = engine_with_bad_messages(&url, &topic, true).await;
    let rows: Vec<_> = engine
        .query("SELECT n, s FROM t")
        .await
        .expect("query")
        .map(|b| b.expect("batch"))
        .collect()
        .await;
    let n: Vec<Option<i64>> = rows
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<Int64Type>()
                .iter()
                .collect::<Vec<_>>()
        })
        .collect();
    let s: Vec<String> = rows
        .iter()
        .flat_map(|b| {
            b.column(1)
                .as_string::<i32>()
                .iter()
                .map(|v| v.unwrap_or("").to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(n, vec![Some(1), None, Some(4)]);
    assert_eq!(s, vec!["a", "c", "d"]);

    // The same as a job: the skipped message is counted in SHOW JOBS.
    let out = unique_topic("badjson-out");
    let outputs = engine
        .execute(&format!(
            "CREATE TABLE o (n BIGINT, s STRING) WITH ('connector' = 'pulsar', 'topics' = '{out}');
             INSERT INTO o SELECT n, s FROM t"
        ))
        .await
        .expect("job starts");
    assert!(matches!(
        outputs.last(),
        Some(StatementOutput::JobStarted(_))
    ));
    let jobs = tokio::time::timeout(Duration::from_secs(60), engine.wait_for_jobs())
        .await
        .expect("bounded job ends");
    assert_eq!(
        jobs[0].state,
        magnetar::JobState::Finished,
        "{:?}",
        jobs[0].state
    );
    assert_eq!(jobs[0].messages_skipped, 1);
    assert_eq!(jobs[0].messages_written, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_script_exits_non_zero_with_line_and_column() {
    let broker = TestBroker::start().await;
    let url = broker.service_url();
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("bad.sql");
    std::fs::write(
        &script,
        "CREATE TABLE t (a INT) WITH ('connector' = 'pulsar', 'topics' = 'x');\n\nCREATE TABLE u (a INT) WITH (\n  'connector' = 'pulsar', 'topic' = 'y');\nSELECT 1;\n",
    )
    .expect("write");
    let out = run_magnetar(
        &["--service-url", &url, "-f", &script.to_string_lossy()],
        Duration::from_secs(60),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bad.sql:4:27"),
        "file:line:column of the bad key: {stderr}"
    );
    assert!(stderr.contains("did you mean 'topics'"), "{stderr}");
    assert!(
        stderr.contains("^"),
        "a caret under the failing place: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing after the failing statement ran"
    );
}
