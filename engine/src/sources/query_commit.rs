//! What a bounded query read, held until its result is safe: then acknowledged together.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use super::decode::SourceMetrics;
use super::reader::{ReadAck, Reader};
use crate::error::Result;
use crate::operators::window::WindowMetrics;
use crate::runtime::{Epoch, GraphMetrics};

/// The reads of one bounded query, acknowledged together when the query's output is safe:
/// finished scans, and streaming subplans (window TVFs) whose last barrier waits for it.
/// Also where they leave their counters.
#[derive(Default)]
pub struct QueryCommit {
    finished: Mutex<Vec<(Reader, ReadAck)>>,
    /// Completion signal of each finished subplan, and the barrier that covers its input.
    pipelines: Mutex<Vec<(watch::Sender<Epoch>, Epoch)>>,
    metrics: Mutex<Vec<Arc<SourceMetrics>>>,
    windows: Mutex<Vec<Arc<WindowMetrics>>>,
}

impl std::fmt::Debug for QueryCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryCommit").finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl QueryCommit {
    /// Keeps a finished scan's reader until the query commits.
    pub(crate) fn defer(&self, reader: Reader, token: ReadAck) {
        lock(&self.finished).push((reader, token));
    }

    /// Keeps a finished subplan's completion until the query commits: its sources
    /// acknowledge up to `last` then.
    pub(crate) fn defer_completion(&self, completed: watch::Sender<Epoch>, last: Epoch) {
        lock(&self.pipelines).push((completed, last));
    }

    /// Counts a scan's reads with the query's.
    pub(crate) fn register(&self, metrics: Arc<SourceMetrics>) {
        lock(&self.metrics).push(metrics);
    }

    /// Counts a subplan's reads and late rows with the query's.
    pub(crate) fn register_graph(&self, metrics: &GraphMetrics) {
        lock(&self.metrics).extend(metrics.sources.iter().cloned());
        lock(&self.windows).extend(metrics.windows.iter().cloned());
    }

    /// Counters of the scans that have started.
    pub fn metrics(&self) -> Vec<Arc<SourceMetrics>> {
        lock(&self.metrics).clone()
    }

    /// Counters of the event-time operators of the subplans that have started.
    pub fn window_metrics(&self) -> Vec<Arc<WindowMetrics>> {
        lock(&self.windows).clone()
    }

    /// Acknowledges everything the query read, and closes its readers.
    pub async fn commit(&self) -> Result<()> {
        for (completed, last) in std::mem::take(&mut *lock(&self.pipelines)) {
            completed.send_replace(last);
        }
        let finished = std::mem::take(&mut *lock(&self.finished));
        for (mut reader, token) in finished {
            let acked = reader.ack(token);
            reader.close().await;
            acked?;
        }
        Ok(())
    }

    /// Closes the readers without acknowledging (the query failed or was cancelled).
    pub async fn abandon(&self) {
        // Dropping a completion signal ends its subplan's sources without acknowledging.
        lock(&self.pipelines).clear();
        let finished = std::mem::take(&mut *lock(&self.finished));
        for (reader, _) in finished {
            reader.close().await;
        }
    }
}
