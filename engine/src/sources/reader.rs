//! The readers a source task can run: Pulsar topics, files, or memory logs.

use std::sync::Arc;

use magnetar_connectors::file::FileSource;
use magnetar_connectors::memory::MemorySource;
use magnetar_connectors::pulsar::{AckToken, PositionStore, PulsarSource, SourceChunk};
use magnetar_sql::catalog::TableDef;
use magnetar_sql::options::Connector;

use super::clients::ClientPool;
use super::pulsar_config::source_config;
use crate::error::Result;
use crate::runtime::service_url_for;

/// An opened reader of a table.
#[derive(Debug)]
pub enum Reader {
    /// Topics of a Pulsar table.
    Pulsar(PulsarSource),
    /// Files of a filesystem table.
    File(FileSource),
    /// An in-process log of a memory table.
    Memory(MemorySource),
}

impl Reader {
    /// Opens `table`: subscribes to its topics, or opens its files.
    pub async fn open(
        table: &TableDef,
        clients: &ClientPool,
        default_service_url: Option<&str>,
        batch_size: usize,
    ) -> Result<Reader> {
        match &table.connector {
            Connector::Pulsar(_) => {
                let url = service_url_for(table, default_service_url)?;
                let client = clients.get(&url).await?;
                let positions: Arc<dyn PositionStore> = clients.positions();
                let config =
                    source_config(table, (batch_size as u32).clamp(100, 10_000), positions);
                Ok(Reader::Pulsar(PulsarSource::open(client, config).await?))
            }
            Connector::Filesystem(o) => Ok(Reader::File(FileSource::open(&o.path)?)),
            Connector::Memory(o) => {
                let log = clients.memory().log(&o.name, o.partitions)?;
                Ok(Reader::Memory(MemorySource::open(log, o.bounded)))
            }
        }
    }

    /// The next chunk of messages; `None` at the end of a bounded read. Cancel-safe.
    pub async fn next_chunk(&mut self, max: usize) -> Result<Option<SourceChunk>> {
        Ok(match self {
            Reader::Pulsar(s) => s.next_chunk(max).await?,
            Reader::File(f) => f.next_chunk(max)?,
            Reader::Memory(m) => m.next_chunk(max).await?,
        })
    }

    /// Number of partitions.
    pub fn partition_count(&self) -> usize {
        match self {
            Reader::Pulsar(s) => s.partition_count(),
            Reader::File(f) => f.partition_count(),
            Reader::Memory(m) => m.partition_count(),
        }
    }

    /// Whether a partition has reached its end.
    pub fn partition_finished(&self, slot: usize) -> bool {
        match self {
            Reader::Pulsar(s) => s.partition_finished(slot),
            Reader::File(f) => f.partition_finished(slot),
            Reader::Memory(m) => m.partition_finished(slot),
        }
    }

    /// What to acknowledge for what was read so far (nothing for files and memory).
    pub fn take_ack_token(&mut self) -> AckToken {
        match self {
            Reader::Pulsar(s) => s.take_ack_token(),
            Reader::File(_) | Reader::Memory(_) => AckToken::default(),
        }
    }

    /// Acknowledges a token.
    pub fn ack(&mut self, token: AckToken) -> Result<()> {
        match self {
            Reader::Pulsar(s) => Ok(s.ack(token)?),
            Reader::File(_) | Reader::Memory(_) => Ok(()),
        }
    }

    /// Releases the reader (closes consumers).
    pub async fn close(self) {
        if let Reader::Pulsar(s) = self {
            s.close().await;
        }
    }
}
