//! Waiting for a `magnetar -f` job's output: its log drained as it comes (so a job that
//! logs a lot never blocks on a full pipe), the output counted until it is complete, then
//! the job stopped with SIGTERM.

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::process::Child;
use tokio::task::JoinHandle;

/// Reads the job's standard error as it comes; the handle yields all of it.
pub fn drain_stderr(job: &mut Child) -> JoinHandle<String> {
    let mut stderr = job.stderr.take().expect("the job's stderr is piped");
    tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text).await;
        String::from_utf8_lossy(&text).into_owned()
    })
}

/// Waits until `have()` reaches `want` (or panics with the job's log if it exits or stalls
/// for `patience`), then stops the job with SIGTERM and returns its log; the job must exit
/// successfully.
pub async fn wait_then_stop(
    mut job: Child,
    want: usize,
    what: &str,
    patience: Duration,
    have: impl Fn() -> usize,
) -> String {
    let log = drain_stderr(&mut job);
    let deadline = Instant::now() + patience;
    let mut pause = Duration::from_millis(200);
    loop {
        let have = have();
        if have >= want {
            break;
        }
        if let Ok(Some(status)) = job.try_wait() {
            let log = log.await.unwrap_or_default();
            panic!("the job exited ({status}) with {have} of {want} {what}:\n{log}");
        }
        if Instant::now() >= deadline {
            // What the job said is what tells a stall from a slow machine.
            job.start_kill().expect("kill the stalled job");
            let _ = job.wait().await;
            let log = log.await.unwrap_or_default();
            panic!(
                "the output has {have} of {want} {what} after {} s; the job's log:\n{log}",
                patience.as_secs()
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
    crate::terminate(&job);
    let status = tokio::time::timeout(Duration::from_secs(60), job.wait())
        .await
        .expect("the job stops within 60 s of SIGTERM")
        .expect("job status");
    let stderr = log.await.unwrap_or_default();
    assert!(status.success(), "the job failed:\n{stderr}");
    stderr
}

/// Asserts that a job's output, keyed results each seen once, is exactly `expected`: first
/// naming a few missing, duplicated, unexpected and different keys (with the job's log),
/// then comparing the whole.
pub fn assert_exactly<K, V>(
    expected: &std::collections::BTreeMap<K, Vec<V>>,
    output: &std::collections::BTreeMap<K, Vec<V>>,
    what: &str,
    log: &str,
) where
    K: Ord + std::fmt::Debug,
    V: PartialEq + std::fmt::Debug,
{
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !output.contains_key(*k))
        .take(5)
        .collect();
    let duplicated: Vec<_> = output.iter().filter(|(_, v)| v.len() > 1).take(5).collect();
    let unexpected: Vec<_> = output
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .take(5)
        .collect();
    let different: Vec<_> = expected
        .iter()
        .filter(|(k, v)| output.get(*k).is_some_and(|o| o.first() != v.first()))
        .take(5)
        .collect();
    assert!(
        missing.is_empty()
            && duplicated.is_empty()
            && unexpected.is_empty()
            && different.is_empty(),
        "{} expected {what}; missing {missing:?}, duplicated {duplicated:?}, unexpected {unexpected:?}, different {different:?}\nthe job's log:\n{log}",
        expected.len()
    );
    assert_eq!(output, expected);
}
