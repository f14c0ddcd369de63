//! Checkpoints in an S3 bucket: moto's S3 server on a loopback port stands in for S3 (real S3
//! speaks the same REST API; moto accepts any credentials). A job checkpoints into the bucket,
//! stops, and its next run resumes from the checkpoint it reads back from there.

use futures::StreamExt;
use magnetar::{Engine, EngineConfig, StatementOutput};
use magnetar_connectors::object_url::object_store_for;
use magnetar_tests::moto::MotoS3;

async fn run(engine: &Engine, sql: &str) -> Vec<StatementOutput> {
    let outputs = engine.execute(sql).await.expect(sql);
    engine.settle().await.expect("settle");
    outputs
}

async fn counts(engine: &Engine) -> Vec<String> {
    let mut rows = Vec::new();
    let mut stream = engine
        .query("SELECT user_id, CAST(window_end AS STRING) AS w, clicks FROM counts")
        .await
        .expect("query");
    while let Some(batch) = stream.next().await {
        let batch = batch.expect("batch");
        let formatted = datafusion::arrow::util::pretty::pretty_format_batches(&[batch])
            .expect("format")
            .to_string();
        rows.extend(
            formatted
                .lines()
                .filter(|l| l.starts_with("| ") && !l.contains("user_id"))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")),
        );
    }
    rows.sort();
    rows
}

const JOB: &str = "INSERT INTO counts SELECT user_id, window_end, count(*) FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, user_id";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_checkpoints_into_s3_and_resumes_from_there() {
    let moto = MotoS3::start("checkpoints").await;
    let dir = moto.url("checkpoints", "jobs");
    let engine = Engine::new(EngineConfig::default());
    run(
        &engine,
        &format!(
            "CREATE TABLE clicks (user_id STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'memory');
             CREATE TABLE counts (user_id STRING, window_end TIMESTAMP(3), clicks BIGINT)
             WITH ('connector' = 'memory', 'scan.bounded' = 'true');
             SET 'table.dml-sync' = 'true';
             SET 'execution.checkpointing.interval' = '1 h';
             SET 'execution.checkpointing.dir' = '{dir}';"
        ),
    )
    .await;
    run(
        &engine,
        &format!("SET 'pipeline.name' = 'per-user'; SET 'table.dml-sync' = 'false'; {JOB}"),
    )
    .await;
    run(
        &engine,
        "SET 'table.dml-sync' = 'true';
         INSERT INTO clicks VALUES ('a', TIMESTAMP '2024-01-01 00:00:01'), ('a', TIMESTAMP '2024-01-01 00:00:12')",
    )
    .await;
    let stopped = engine.stop_job("per-user").await.expect("stop");
    let last = stopped.last_checkpoint.expect("a checkpoint was taken");

    // The checkpoint is in the bucket: its manifest and the window operator instances' state.
    let (store, _) = object_store_for(&dir).expect("store");
    let listed: Vec<String> = store
        .list(Some(&object_store::path::Path::from("jobs/per-user")))
        .map(|m| m.expect("listing").location.to_string())
        .collect()
        .await;
    assert!(
        listed
            .iter()
            .any(|l| l.ends_with(&format!("chk-{last:020}/_MANIFEST"))),
        "{listed:?}"
    );
    assert!(
        listed.iter().any(|l| l.contains("/window-aggregate-")),
        "{listed:?}"
    );

    run(
        &engine,
        "INSERT INTO clicks VALUES ('a', TIMESTAMP '2024-01-01 00:00:15'), ('b', TIMESTAMP '2024-01-01 00:00:21')",
    )
    .await;
    let outputs = run(
        &engine,
        &format!("SET 'pipeline.name' = 'per-user'; SET 'table.dml-sync' = 'false'; {JOB}"),
    )
    .await;
    let resumed = outputs.iter().find_map(|o| match o {
        StatementOutput::JobStarted(job) => Some(job.restored_from),
        _ => None,
    });
    assert_eq!(
        resumed,
        Some(Some(last)),
        "resumed from the checkpoint in S3"
    );
    // a's click at 00:00:12 was restored with the open window [10, 20).
    assert_eq!(
        counts(&engine).await,
        vec![
            "| a | 2024-01-01T00:00:10 | 1 |".to_string(),
            "| a | 2024-01-01T00:00:20 | 2 |".to_string(),
        ]
    );
    engine.shutdown().await;
}
