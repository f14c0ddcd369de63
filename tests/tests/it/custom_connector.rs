//! Connectors written in Rust, registered under a name and used from SQL: a source whose
//! rows feed a checkpointed TUMBLE job into a custom sink, stopped and resumed from the
//! source's own position; a bounded source read by a batch query; and the errors a
//! connector's user and author meet (unknown keys, a wrong batch, a panic).

use std::sync::{Arc, Mutex, MutexGuard};

use datafusion::arrow::array::{
    Array, AsArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{Int64Type, SchemaRef, TimestampMillisecondType};
use futures::StreamExt;
use magnetar::custom::{
    BoxError, CustomConnector, CustomSink, CustomSource, OptionKind, OptionScope, OptionSpec,
    TableContext, async_trait,
};
use magnetar::{Engine, EngineConfig, StatementOutput};
use tokio::sync::Notify;

/// 2024-01-01 00:00:00 UTC.
const T0_MS: i64 = 1_704_067_200_000;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().expect("lock")
}

/// Clicks (user, second after T0) that a test appends to, and what the source was told.
#[derive(Default)]
struct Feed {
    rows: Mutex<Vec<(String, i64)>>,
    /// The `resume` of every opened source.
    opened_with: Mutex<Vec<Option<String>>>,
    /// Every commit, in order.
    commits: Mutex<Vec<Option<String>>>,
    /// `rows-per-batch` as the source saw it.
    batch_sizes: Mutex<Vec<usize>>,
    changed: Notify,
}

impl Feed {
    fn push(&self, rows: &[(&str, i64)]) {
        lock(&self.rows).extend(rows.iter().map(|(u, s)| (u.to_string(), *s)));
        self.changed.notify_waiters();
    }
}

/// The `feed` connector: reads a [`Feed`] from the position it resumes at; bounded or not.
struct FeedConnector {
    name: &'static str,
    bounded: bool,
    feed: Arc<Feed>,
}

const FEED_OPTIONS: &[OptionSpec] = &[OptionSpec {
    key: "rows-per-batch",
    kind: OptionKind::Integer,
    default: Some("2"),
    required: false,
    scope: OptionScope::Source,
    description: "Most rows in one batch.",
}];

#[async_trait]
impl CustomConnector for FeedConnector {
    fn name(&self) -> &str {
        self.name
    }

    fn options(&self) -> Vec<OptionSpec> {
        FEED_OPTIONS.to_vec()
    }

    fn is_bounded(&self) -> bool {
        self.bounded
    }

    async fn open_source(&self, table: TableContext) -> Result<Box<dyn CustomSource>, BoxError> {
        let next = match &table.resume {
            Some(p) => p.parse()?,
            None => 0,
        };
        lock(&self.feed.opened_with).push(table.resume.clone());
        let per_batch: usize = table.options["rows-per-batch"].parse()?;
        Ok(Box::new(FeedSource {
            feed: self.feed.clone(),
            schema: table.schema,
            next,
            per_batch,
            bounded: self.bounded,
        }))
    }
}

struct FeedSource {
    feed: Arc<Feed>,
    schema: SchemaRef,
    next: usize,
    per_batch: usize,
    bounded: bool,
}

#[async_trait]
impl CustomSource for FeedSource {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>, BoxError> {
        loop {
            let changed = self.feed.changed.notified();
            let rows: Vec<(String, i64)> = lock(&self.feed.rows)
                .iter()
                .skip(self.next)
                .take(self.per_batch)
                .cloned()
                .collect();
            if !rows.is_empty() {
                lock(&self.feed.batch_sizes).push(rows.len());
                self.next += rows.len();
                let users: Vec<&str> = rows.iter().map(|(u, _)| u.as_str()).collect();
                // Seconds as BIGINT millis: the engine casts to the declared TIMESTAMP(3).
                let times: Vec<i64> = rows.iter().map(|(_, s)| T0_MS + s * 1000).collect();
                let columns: Vec<Arc<dyn Array>> = vec![
                    Arc::new(StringArray::from(users)),
                    Arc::new(TimestampMillisecondArray::from(times)),
                ];
                return Ok(Some(RecordBatch::try_new(self.schema.clone(), columns)?));
            }
            if self.bounded {
                return Ok(None);
            }
            changed.await;
        }
    }

    fn position(&self) -> Option<String> {
        Some(self.next.to_string())
    }

    async fn commit(&mut self, position: Option<&str>) -> Result<(), BoxError> {
        lock(&self.feed.commits).push(position.map(str::to_string));
        Ok(())
    }
}

/// The `collect` connector: a sink keeping rows as text, and counting flushes.
#[derive(Default)]
struct Collected {
    rows: Mutex<Vec<String>>,
    flushes: Mutex<usize>,
    changed: Notify,
}

impl Collected {
    /// Waits until `n` rows were written.
    async fn wait_for(&self, n: usize) -> Vec<String> {
        loop {
            let changed = self.changed.notified();
            let rows = lock(&self.rows).clone();
            if rows.len() >= n {
                return rows;
            }
            changed.await;
        }
    }
}

struct CollectConnector(Arc<Collected>);

#[async_trait]
impl CustomConnector for CollectConnector {
    fn name(&self) -> &str {
        "collect"
    }

    async fn open_sink(&self, _table: TableContext) -> Result<Box<dyn CustomSink>, BoxError> {
        Ok(Box::new(CollectSink(self.0.clone())))
    }
}

struct CollectSink(Arc<Collected>);

#[async_trait]
impl CustomSink for CollectSink {
    async fn write(&mut self, batch: &RecordBatch) -> Result<(), BoxError> {
        let users = batch.column(0).as_string::<i32>();
        let ends = batch.column(1).as_primitive::<TimestampMillisecondType>();
        let counts = batch.column(2).as_primitive::<Int64Type>();
        let mut rows = lock(&self.0.rows);
        for i in 0..batch.num_rows() {
            rows.push(format!(
                "{} {} {}",
                users.value(i),
                (ends.value(i) - T0_MS) / 1000,
                counts.value(i)
            ));
        }
        drop(rows);
        self.0.changed.notify_waiters();
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), BoxError> {
        *lock(&self.0.flushes) += 1;
        Ok(())
    }
}

async fn run(engine: &Engine, sql: &str) -> Vec<StatementOutput> {
    match engine.execute(sql).await {
        Ok(outputs) => outputs,
        Err(e) => panic!("{sql}: {e}"),
    }
}

const JOB: &str = "SET 'pipeline.name' = 'per-user'; INSERT INTO counts SELECT user_id, window_end, COUNT(*) AS clicks
    FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND))
    GROUP BY user_id, window_start, window_end";

fn started(outputs: &[StatementOutput]) -> Option<u64> {
    outputs.iter().find_map(|o| match o {
        StatementOutput::JobStarted(job) => job.restored_from,
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_source_feeds_a_checkpointed_window_job_into_a_custom_sink_and_resumes_at_its_position()
 {
    let checkpoints = tempfile::tempdir().expect("dir");
    let feed = Arc::new(Feed::default());
    let collected = Arc::new(Collected::default());
    let engine = Engine::new(EngineConfig::default());
    engine
        .register_connector(Arc::new(FeedConnector {
            name: "feed",
            bounded: false,
            feed: feed.clone(),
        }))
        .expect("register feed");
    engine
        .register_connector(Arc::new(CollectConnector(collected.clone())))
        .expect("register collect");
    run(
        &engine,
        &format!(
            "CREATE TABLE clicks (user_id STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts)
               WITH ('connector' = 'feed', 'rows-per-batch' = '3');
             CREATE TABLE counts (user_id STRING, window_end TIMESTAMP(3), clicks BIGINT)
               WITH ('connector' = 'collect');
             SET 'execution.checkpointing.interval' = '1 h';
             SET 'execution.checkpointing.dir' = '{}';",
            checkpoints.path().display()
        ),
    )
    .await;
    let explain = format!("{:?}", run(&engine, "EXPLAIN SELECT * FROM clicks").await);
    assert!(
        explain.contains("CustomSource: table=clicks connector=feed"),
        "{explain}"
    );
    let first = run(&engine, JOB).await;
    assert_eq!(started(&first), None, "a fresh job");
    feed.push(&[("a", 1), ("b", 3), ("a", 4), ("a", 12)]);
    // The watermark passed 00:00:10: [0, 10) fired; a's click at :12 waits in [10, 20).
    let mut rows = collected.wait_for(2).await;
    rows.sort();
    assert_eq!(rows, ["a 10 2", "b 10 1"]);

    let stopped = engine.stop_job("per-user").await.expect("stop");
    let checkpoint = stopped.last_checkpoint.expect("the stop took a checkpoint");
    assert_eq!(
        lock(&feed.commits).last().cloned(),
        Some(Some("4".to_string())),
        "the source committed everything it read, once the checkpoint was written"
    );
    assert!(
        *lock(&collected.flushes) >= 1,
        "the sink flushed at the barrier"
    );
    assert_eq!(
        lock(&feed.batch_sizes)[0],
        3,
        "'rows-per-batch' reached the source"
    );

    feed.push(&[("a", 15), ("b", 21)]);
    let second = run(&engine, JOB).await;
    assert_eq!(
        started(&second),
        Some(checkpoint),
        "restored from the stop's checkpoint"
    );
    assert_eq!(
        lock(&feed.opened_with).clone(),
        [None, Some("4".to_string())],
        "the restored source resumed at the position the checkpoint recorded"
    );
    // a's click at :12 came back with the window's state; with :15 the window counts 2.
    let rows = collected.wait_for(3).await;
    assert_eq!(rows[2..], ["a 20 2".to_string()], "{rows:?}");
    engine.stop_job("per-user").await.expect("stop");
    let rows = lock(&collected.rows).clone();
    assert_eq!(rows.len(), 3, "nothing was written twice: {rows:?}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_custom_source_answers_batch_sql_and_commits_when_the_result_is_delivered() {
    let feed = Arc::new(Feed::default());
    feed.push(&[("a", 1), ("b", 2), ("a", 3), ("c", 4), ("a", 5)]);
    let engine = Engine::new(EngineConfig::default());
    engine
        .register_connector(Arc::new(FeedConnector {
            name: "snapshot",
            bounded: true,
            feed: feed.clone(),
        }))
        .expect("register");
    run(
        &engine,
        "CREATE TABLE clicks (user_id STRING, ts TIMESTAMP(3)) WITH ('connector' = 'SNAPSHOT')",
    )
    .await;
    let batches: Vec<RecordBatch> = engine
        .query(
            "SELECT user_id, COUNT(*) AS n FROM clicks GROUP BY user_id ORDER BY n DESC, user_id",
        )
        .await
        .expect("query")
        .map(|b| b.expect("rows"))
        .collect()
        .await;
    let batch =
        datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat");
    let users = batch.column(0).as_string::<i32>();
    let counts = batch
        .column(1)
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("BIGINT");
    let got: Vec<(String, i64)> = (0..batch.num_rows())
        .map(|i| (users.value(i).to_string(), counts.value(i)))
        .collect();
    assert_eq!(
        got,
        [
            ("a".to_string(), 3),
            ("b".to_string(), 1),
            ("c".to_string(), 1)
        ]
    );
    assert_eq!(
        lock(&feed.commits).clone(),
        [Some("5".to_string())],
        "one commit, of everything, after the result"
    );
}

/// A connector whose source returns what a test chose: a batch with too few columns, or a
/// panic.
struct Broken {
    panics: bool,
}

struct BrokenSource {
    panics: bool,
}

#[async_trait]
impl CustomConnector for Broken {
    fn name(&self) -> &str {
        if self.panics { "panicky" } else { "narrow" }
    }

    fn is_bounded(&self) -> bool {
        true
    }

    async fn open_source(&self, _table: TableContext) -> Result<Box<dyn CustomSource>, BoxError> {
        Ok(Box::new(BrokenSource {
            panics: self.panics,
        }))
    }
}

#[async_trait]
impl CustomSource for BrokenSource {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>, BoxError> {
        if self.panics {
            panic!("boom");
        }
        Ok(Some(RecordBatch::try_from_iter([(
            "x",
            Arc::new(Int64Array::from(vec![1])) as Arc<dyn Array>,
        )])?))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_mistakes_get_errors_that_name_the_table_and_the_connector() {
    let engine = Engine::new(EngineConfig::default());
    let feed = Arc::new(Feed::default());
    let collected = Arc::new(Collected::default());
    engine
        .register_connector(Arc::new(FeedConnector {
            name: "feed",
            bounded: true,
            feed,
        }))
        .expect("register");
    engine
        .register_connector(Arc::new(CollectConnector(collected)))
        .expect("register");
    engine
        .register_connector(Arc::new(Broken { panics: false }))
        .expect("register");
    engine
        .register_connector(Arc::new(Broken { panics: true }))
        .expect("register");

    let clash = engine
        .register_connector(Arc::new(FeedConnector {
            name: "Pulsar",
            bounded: true,
            feed: Arc::default(),
        }))
        .expect_err("a built-in name");
    assert!(clash.to_string().contains("built-in"), "{clash}");
    let twice = engine
        .register_connector(Arc::new(Broken { panics: true }))
        .expect_err("taken");
    assert!(twice.to_string().contains("registered already"), "{twice}");

    let error = |sql: &'static str| {
        let engine = &engine;
        async move {
            match engine.execute(sql).await {
                Ok(_) => panic!("{sql} should fail"),
                Err(e) => e.to_string(),
            }
        }
    };
    let unknown_key = error(
        "CREATE TABLE t (user_id STRING, ts TIMESTAMP(3)) WITH ('connector' = 'feed', 'rows-per-bach' = '2')",
    )
    .await;
    assert!(
        unknown_key.contains("'rows-per-bach'")
            && unknown_key.contains("did you mean 'rows-per-batch'"),
        "{unknown_key}"
    );
    let wrong_kind = error(
        "CREATE TABLE t (user_id STRING, ts TIMESTAMP(3)) WITH ('connector' = 'feed', 'rows-per-batch' = 'many')",
    )
    .await;
    assert!(wrong_kind.contains("whole number"), "{wrong_kind}");
    let unknown_connector =
        error("CREATE TABLE t (user_id STRING) WITH ('connector' = 'fed')").await;
    assert!(
        unknown_connector.contains("did you mean 'feed'") && unknown_connector.contains("collect"),
        "{unknown_connector}"
    );
    let metadata = error(
        "CREATE TABLE t (user_id STRING, k STRING METADATA FROM 'key') WITH ('connector' = 'feed')",
    )
    .await;
    assert!(metadata.contains("has no message metadata"), "{metadata}");

    run(
        &engine,
        "CREATE TABLE sink_only (user_id STRING, window_end TIMESTAMP(3), clicks BIGINT) WITH ('connector' = 'collect');
         CREATE TABLE narrow (a BIGINT, b STRING) WITH ('connector' = 'narrow');
         CREATE TABLE panicky (a BIGINT) WITH ('connector' = 'panicky')",
    )
    .await;
    async fn query_error(engine: &Engine, sql: &str) -> String {
        let stream = match engine.query(sql).await {
            Ok(s) => s,
            Err(e) => return e.to_string(),
        };
        let results: Vec<_> = stream.collect().await;
        results
            .into_iter()
            .find_map(|r| r.err())
            .map(|e| e.to_string())
            .unwrap_or_else(|| panic!("{sql} should fail"))
    }
    let sink_only = query_error(&engine, "SELECT * FROM sink_only").await;
    assert!(
        sink_only.contains("table 'sink_only' (collect connector)")
            && sink_only.contains("cannot be read"),
        "{sink_only}"
    );
    let narrow = query_error(&engine, "SELECT * FROM narrow").await;
    assert!(
        narrow.contains("table 'narrow' (narrow connector)")
            && narrow.contains("returned 1 column(s); the table has 2 (a, b)"),
        "{narrow}"
    );
    let panicked = query_error(&engine, "SELECT * FROM panicky").await;
    assert!(
        panicked.contains("table 'panicky' (panicky connector)")
            && panicked.contains("panicked: boom"),
        "{panicked}"
    );
    // The engine goes on.
    run(&engine, "SHOW TABLES").await;
}
