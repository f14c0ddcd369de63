//! The writer of a job's sink table, whatever its connector, and the task that drives it
//! from the end of a streaming pipeline.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use magnetar_sql::catalog::TableDef;
use magnetar_sql::options::Connector;
use tokio::sync::{mpsc, watch};

use super::{CustomSinkWriter, ExactlyOnce, MemorySinkWriter, PulsarSinkWriter, SinkMetrics};
use crate::checkpoint::{CheckpointPart, PartSender, SinkProgress};
use crate::error::{EngineError, Result};
use crate::runtime::{Epoch, StreamMessage, service_url_for};
use crate::sources::ClientPool;

/// Writes a sink table's rows.
#[derive(Debug)]
pub enum SinkWriter {
    /// A Pulsar topic.
    Pulsar(Box<PulsarSinkWriter>),
    /// An in-process log.
    Memory(MemorySinkWriter),
    /// A connector registered from Rust.
    Custom(CustomSinkWriter),
}

impl SinkWriter {
    /// Opens the writer of `table` (connecting a producer for Pulsar tables). With
    /// `exactly_once` (the job's producer name, and the restored sink progress if any), a
    /// Pulsar sink drops what a crashed run already wrote (see [`super::replay_guard`]).
    pub async fn open(
        table: Arc<TableDef>,
        clients: &ClientPool,
        default_service_url: Option<&str>,
        metrics: Arc<SinkMetrics>,
        exactly_once: Option<(String, Option<SinkProgress>)>,
    ) -> Result<Self> {
        match &table.connector {
            Connector::Pulsar(_) => {
                let url = service_url_for(&table, default_service_url)?;
                let exactly_once = match exactly_once {
                    Some((producer_name, restored)) => Some(ExactlyOnce {
                        producer_name,
                        client: clients.get(&url).await?,
                        restored,
                    }),
                    None => None,
                };
                Ok(SinkWriter::Pulsar(Box::new(
                    PulsarSinkWriter::connect(table, url, metrics, exactly_once).await?,
                )))
            }
            Connector::Memory(_) => Ok(SinkWriter::Memory(MemorySinkWriter::open(
                &table,
                &clients.memory(),
                metrics,
            )?)),
            Connector::Custom(_) => Ok(SinkWriter::Custom(
                CustomSinkWriter::open(&table, clients, metrics).await?,
            )),
            other => Err(EngineError::Sql(magnetar_sql::SqlError::unsupported(
                format!(
                    "table '{}' uses the {} connector, which Magnetar can read but not write (yet)",
                    table.name,
                    other.name()
                ),
                None,
            ))),
        }
    }

    /// Writes (or queues) the rows of `batch`.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            SinkWriter::Pulsar(w) => w.write(batch).await,
            SinkWriter::Memory(w) => w.write(batch),
            SinkWriter::Custom(w) => w.write(batch).await,
        }
    }

    /// Waits until everything written is durable.
    pub async fn flush(&mut self) -> Result<()> {
        match self {
            SinkWriter::Pulsar(w) => w.flush().await,
            SinkWriter::Custom(w) => w.flush().await,
            SinkWriter::Memory(_) => Ok(()),
        }
    }

    /// What a checkpoint records of the sink (after [`Self::flush`]).
    pub fn progress(&self) -> SinkProgress {
        match self {
            SinkWriter::Pulsar(w) => w.progress(),
            SinkWriter::Memory(_) | SinkWriter::Custom(_) => SinkProgress::new(),
        }
    }

    /// Flushes and releases the writer.
    pub async fn close(self) -> Result<()> {
        match self {
            SinkWriter::Pulsar(w) => (*w).close().await,
            SinkWriter::Custom(w) => w.close().await,
            SinkWriter::Memory(_) => Ok(()),
        }
    }
}

/// What the sink does once everything before a barrier is durable.
#[derive(Debug)]
pub enum BarrierReport {
    /// Reports the barrier complete: the sources acknowledge their input (at-least-once).
    Complete(watch::Sender<Epoch>),
    /// Hands its progress to the checkpoint coordinator, which completes the barrier once
    /// the checkpoint is written.
    Checkpoint(PartSender),
}

/// Drives a sink from the end of a streaming pipeline: writes batches, flushes at barriers
/// and reports them, closes at the end.
pub async fn run_sink_task(
    mut writer: SinkWriter,
    mut input: mpsc::Receiver<StreamMessage>,
    report: BarrierReport,
) -> Result<()> {
    while let Some(message) = input.recv().await {
        match message {
            StreamMessage::Batch(batch) => writer.write(&batch).await?,
            StreamMessage::Watermark(_) => {}
            StreamMessage::Barrier(epoch) => {
                writer.flush().await?;
                match &report {
                    BarrierReport::Complete(completed) => {
                        completed.send_replace(epoch);
                    }
                    BarrierReport::Checkpoint(parts) => {
                        if !parts.send(epoch, CheckpointPart::Sink(writer.progress())) {
                            return Err(EngineError::Pipeline(
                                "the checkpoint coordinator is gone".into(),
                            ));
                        }
                    }
                }
            }
            StreamMessage::End => {
                writer.close().await?;
                return Ok(());
            }
            StreamMessage::Error(e) => return Err(EngineError::from_shared(e)),
        }
    }
    Err(EngineError::Internal(
        "the pipeline ended without an end-of-stream".into(),
    ))
}
