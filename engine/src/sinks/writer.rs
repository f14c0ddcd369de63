//! The writer of a job's sink table, whatever its connector.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use magnetar_sql::catalog::TableDef;
use magnetar_sql::options::Connector;

use super::replay_guard::SharedReplayGuard;
use super::{CustomSinkWriter, ExactlyOnce, MemorySinkWriter, PulsarSinkWriter, SinkMetrics};
use crate::checkpoint::SinkCheckpoint;
use crate::error::{EngineError, Result};
use crate::runtime::{Epoch, service_url_for};
use crate::sources::ClientPool;

/// How a sink instance of a checkpointed job writes exactly once: its producer's name, the
/// guard its sink's instances share, and its index.
#[derive(Debug, Clone)]
pub struct ExactlyOnceInstance {
    /// The instance's producer name.
    pub producer_name: String,
    /// The shared replay guard.
    pub guard: SharedReplayGuard,
    /// The instance's index.
    pub instance: usize,
}

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
    /// `exactly_once`, a Pulsar sink drops what a crashed run already wrote (see
    /// [`super::replay_guard`]).
    pub async fn open(
        table: Arc<TableDef>,
        clients: &ClientPool,
        default_service_url: Option<&str>,
        metrics: Arc<SinkMetrics>,
        exactly_once: Option<ExactlyOnceInstance>,
    ) -> Result<Self> {
        match &table.connector {
            Connector::Pulsar(_) => {
                let url = service_url_for(&table, default_service_url)?;
                let exactly_once = match exactly_once {
                    Some(e) => Some(ExactlyOnce {
                        producer_name: e.producer_name,
                        client: clients.for_table(&table, default_service_url).await?,
                        guard: e.guard,
                        instance: e.instance,
                    }),
                    None => None,
                };
                let name = table.name.clone();
                let writer = PulsarSinkWriter::connect(table, url, metrics, exactly_once)
                    .await
                    .map_err(|e| match e {
                        EngineError::Connector(source) => EngineError::TableConnection {
                            table: name,
                            source,
                        },
                        other => other,
                    })?;
                Ok(SinkWriter::Pulsar(Box::new(writer)))
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

    /// What a checkpoint records of the sink at barrier `epoch` (after [`Self::flush`]).
    pub fn checkpoint(&self, epoch: Epoch) -> SinkCheckpoint {
        match self {
            SinkWriter::Pulsar(w) => w.checkpoint(epoch),
            SinkWriter::Memory(_) | SinkWriter::Custom(_) => SinkCheckpoint::default(),
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
