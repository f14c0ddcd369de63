//! Runs a [`CustomSource`] in a task of its own and hands its batches to the engine's
//! reader over a channel: the engine's source loop may stop waiting for rows at any time
//! (a barrier, a watermark tick, a stop) without cancelling the connector half-way.

use std::panic::AssertUnwindSafe;

use datafusion::arrow::array::RecordBatch;
use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{BoxError, CustomSource};
use crate::error::{EngineError, Result};

/// Batches read ahead of the engine, at most.
const READ_AHEAD: usize = 4;

enum SourceEvent {
    /// Rows, and the source's position after them.
    Rows(RecordBatch, Option<String>),
    /// The read ended.
    End,
    /// The source failed (or panicked).
    Failed(BoxError),
}

/// The engine's side of a running custom source: its rows, positions and commits.
pub struct CustomReader {
    table: String,
    connector: String,
    events: mpsc::Receiver<SourceEvent>,
    commits: mpsc::UnboundedSender<Option<String>>,
    close: oneshot::Sender<()>,
    task: JoinHandle<std::result::Result<(), BoxError>>,
    /// The source's position after the rows received so far.
    position: Option<String>,
    /// Rows were received since the last commit point was taken.
    uncommitted: bool,
    ended: bool,
}

impl std::fmt::Debug for CustomReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomReader")
            .field("table", &self.table)
            .field("connector", &self.connector)
            .field("position", &self.position)
            .finish()
    }
}

impl CustomReader {
    /// Starts `source`'s task.
    pub(crate) fn start(source: Box<dyn CustomSource>, table: &str, connector: &str) -> Self {
        let (events_tx, events) = mpsc::channel(READ_AHEAD);
        let (commits, commits_rx) = mpsc::unbounded_channel();
        let (close, close_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let driven = AssertUnwindSafe(drive(source, &events_tx, commits_rx, close_rx))
                .catch_unwind()
                .await;
            let failure: BoxError = match driven {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e,
                Err(panic) => format!("panicked: {}", panic_text(&*panic)).into(),
            };
            let text = failure.to_string();
            // The reader learns of it at its next read; at close, from the task's result.
            let _ = events_tx.send(SourceEvent::Failed(failure)).await;
            Err(text.into())
        });
        Self {
            table: table.to_string(),
            connector: connector.to_string(),
            events,
            commits,
            close,
            task,
            position: None,
            uncommitted: false,
            ended: false,
        }
    }

    fn error(&self, source: BoxError) -> EngineError {
        EngineError::CustomConnector {
            connector: self.connector.clone(),
            table: self.table.clone(),
            source,
        }
    }

    /// The next rows; `None` once the read ended. Cancel-safe.
    pub(crate) async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.ended {
            return Ok(None);
        }
        match self.events.recv().await {
            Some(SourceEvent::Rows(batch, position)) => {
                self.position = position;
                self.uncommitted = true;
                Ok(Some(batch))
            }
            Some(SourceEvent::End) => {
                self.ended = true;
                Ok(None)
            }
            Some(SourceEvent::Failed(e)) => Err(self.error(e)),
            None => Err(self.error("the source's task ended without ending the read".into())),
        }
    }

    /// Whether the read ended.
    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// The source's position after the rows received so far.
    pub(crate) fn position(&self) -> Option<&str> {
        self.position.as_deref()
    }

    /// What to commit for the rows received so far; `None` when nothing came since the
    /// last time.
    pub(crate) fn take_commit_point(&mut self) -> Option<Option<String>> {
        std::mem::take(&mut self.uncommitted).then(|| self.position.clone())
    }

    /// Asks the source to commit up to `position`.
    pub(crate) fn commit(&mut self, position: Option<String>) {
        // A source whose task has ended reported why on its event channel already.
        let _ = self.commits.send(position);
    }

    /// Lets the source make its queued commits and close; waits for it.
    pub(crate) async fn close(self) {
        let Self {
            table,
            connector,
            events,
            close,
            task,
            ..
        } = self;
        let _ = close.send(());
        // A task blocked on a full channel goes on once nobody receives.
        drop(events);
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(%table, %connector, "custom source: {e}"),
            Err(e) => tracing::warn!(%table, %connector, "custom source task: {e}"),
        }
    }
}

/// The source's loop: commits queued by the engine between reads, rows forwarded, until
/// the read is closed.
async fn drive(
    mut source: Box<dyn CustomSource>,
    events: &mpsc::Sender<SourceEvent>,
    mut commits: mpsc::UnboundedReceiver<Option<String>>,
    mut close: oneshot::Receiver<()>,
) -> std::result::Result<(), BoxError> {
    let mut ended = false;
    loop {
        while let Ok(position) = commits.try_recv() {
            source.commit(position.as_deref()).await?;
        }
        if ended {
            tokio::select! {
                biased;
                _ = &mut close => break,
                position = commits.recv() => match position {
                    Some(position) => source.commit(position.as_deref()).await?,
                    None => break,
                },
            }
            continue;
        }
        let next = tokio::select! {
            biased;
            _ = &mut close => break,
            next = source.next_batch() => next?,
        };
        let event = match next {
            Some(batch) => SourceEvent::Rows(batch, source.position()),
            None => {
                ended = true;
                SourceEvent::End
            }
        };
        if events.send(event).await.is_err() {
            break;
        }
    }
    // Commits the engine asked for before it closed the read.
    while let Ok(position) = commits.try_recv() {
        source.commit(position.as_deref()).await?;
    }
    source.close().await
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
