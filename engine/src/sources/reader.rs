//! The readers a source task can run: Pulsar topics, files, memory logs, or a connector
//! registered from Rust.

use std::sync::Arc;

use magnetar_connectors::EntryPosition;
use magnetar_connectors::file::{FileSource, MIN_SPLIT_BYTES, plan_splits};
use magnetar_connectors::memory::MemorySource;
use magnetar_connectors::pulsar::{
    AckToken, PartitionShare, PositionStore, PulsarSource, SourceChunk, TieredSource,
};
use magnetar_connectors::tiered::TieredStorage;
use magnetar_sql::catalog::TableDef;
use magnetar_sql::options::Connector;

use datafusion::arrow::array::RecordBatch;

use super::clients::ClientPool;
use super::decode::SourceMetrics;
use super::pulsar_config::source_config;
use crate::checkpoint::SourcePositions;
use crate::custom::CustomReader;
use crate::error::{EngineError, Result};

/// The position key of a memory read's round-robin pointer, followed by the first
/// partition the read has (several instances each keep their own).
const MEMORY_NEXT_PARTITION: &str = "next@";

/// The position key of a custom source's position.
const CUSTOM_POSITION: &str = "position";

/// An opened reader of a table.
#[derive(Debug)]
pub enum Reader {
    /// Topics of a Pulsar table.
    Pulsar(Box<PulsarSource>),
    /// Files of a filesystem table.
    File(FileSource),
    /// An in-process log of a memory table.
    Memory(MemorySource),
    /// A connector registered from Rust.
    Custom(CustomReader),
}

/// What a reader read: encoded messages, or rows a custom source made.
#[derive(Debug)]
pub enum ReadChunk {
    /// Messages (and their partitions) to decode.
    Messages(SourceChunk),
    /// Rows with the table's columns, from one partition.
    Rows(RecordBatch),
}

/// What to acknowledge (or commit) for what a reader read up to some point.
#[derive(Debug, Default)]
pub enum ReadAck {
    /// Nothing to do (files, memory logs, or nothing read).
    #[default]
    Nothing,
    /// Pulsar messages.
    Pulsar(AckToken),
    /// A custom source's position.
    Custom(Option<String>),
}

/// Which of a table's partitions (or file splits) a source instance reads: numbering them
/// in order, those whose number modulo `instances` is `instance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitAssignment {
    /// This instance.
    pub instance: usize,
    /// The source's instances.
    pub instances: usize,
}

impl SplitAssignment {
    /// One instance reading everything.
    pub const WHOLE: SplitAssignment = SplitAssignment {
        instance: 0,
        instances: 1,
    };

    /// Whether split number `split` is this instance's.
    pub fn owns(&self, split: usize) -> bool {
        split % self.instances.max(1) == self.instance
    }
}

impl Reader {
    /// How many partitions (or file splits) `table` has for `parallelism` readers: at most
    /// that many instances of its source read in parallel.
    pub async fn splits(
        table: &TableDef,
        clients: &ClientPool,
        default_service_url: Option<&str>,
        parallelism: usize,
    ) -> Result<usize> {
        Ok(match &table.connector {
            Connector::Pulsar(_) => {
                let client = clients.for_table(table, default_service_url).await?;
                let mut n = 0usize;
                let listed = super::topics_to_read(table, &client).await?;
                let topics = if table.is_bounded() {
                    listed.all_matched(table)?
                } else {
                    listed.topics
                };
                for topic in &topics {
                    n += (client.partitions(topic).await? as usize).max(1);
                }
                n
            }
            Connector::Filesystem(o) => plan_splits(&o.path, parallelism, MIN_SPLIT_BYTES)?.len(),
            Connector::Memory(o) => o.partitions,
            Connector::Custom(_) => 1,
        })
    }

    /// Opens `table` for one source instance: subscribes to its share of the topics'
    /// partitions, or opens its files or splits; `resume` continues after a checkpoint's
    /// positions (of any instance: each takes its partitions'); `subscription` is the
    /// durable subscription to use when the table names none.
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        table: &TableDef,
        clients: &ClientPool,
        default_service_url: Option<&str>,
        batch_size: usize,
        assignment: SplitAssignment,
        resume: Option<&SourcePositions>,
        subscription: Option<String>,
        metrics: &Arc<SourceMetrics>,
    ) -> Result<Reader> {
        let bad_position = |partition: &str, text: &str| EngineError::Checkpoint {
            object: format!("position of table '{}' partition '{partition}'", table.name),
            reason: format!("'{text}' is not a position"),
        };
        match &table.connector {
            Connector::Pulsar(options) => {
                let client = clients.for_table(table, default_service_url).await?;
                let positions: Arc<dyn PositionStore> = clients.positions();
                let queue = options
                    .client
                    .receiver_queue_size
                    .unwrap_or((batch_size as u32).clamp(100, 10_000));
                let mut config = source_config(table, queue, positions);
                config.topics =
                    super::topics::topics_to_start(table, &client, &metrics.warning).await?;
                if !options.topic_patterns.is_empty() && !options.is_bounded() {
                    config.discovery = options.partition_discovery.map(|every| {
                        super::topics::discovery(table, &client, every, metrics.warning.clone())
                    });
                }
                if config.subscription_name.is_none() {
                    config.subscription_name = subscription;
                }
                if assignment.instances > 1 {
                    config.share = Some(PartitionShare {
                        reader: assignment.instance,
                        readers: assignment.instances,
                    });
                }
                for (partition, text) in resume.into_iter().flatten() {
                    let entry = text
                        .parse::<EntryPosition>()
                        .map_err(|_| bad_position(partition, text))?;
                    config.resume.insert(partition.clone(), entry);
                }
                if let Some(url) = &options.tiered_storage_url {
                    let storage = TieredStorage::open_with_security(
                        url,
                        options.admin_url.as_deref(),
                        &options.client.security,
                    )?;
                    config.tiered = Some(TieredSource {
                        storage: Arc::new(storage),
                        progress: metrics.backfill.clone(),
                    });
                }
                Ok(Reader::Pulsar(Box::new(
                    PulsarSource::open(client, config).await?,
                )))
            }
            Connector::Filesystem(o) => {
                let splits: Vec<_> = plan_splits(&o.path, assignment.instances, MIN_SPLIT_BYTES)?
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| assignment.owns(*i))
                    .map(|(_, s)| s)
                    .collect();
                Ok(Reader::File(FileSource::open_splits(&splits)?))
            }
            Connector::Custom(o) => {
                let position = resume.and_then(|r| r.get(CUSTOM_POSITION)).cloned();
                let (connector, context) = clients.custom().for_table(table, position)?;
                let source = connector.open_source(context).await.map_err(|source| {
                    EngineError::CustomConnector {
                        connector: o.connector.clone(),
                        table: table.name.clone(),
                        source,
                    }
                })?;
                Ok(Reader::Custom(CustomReader::start(
                    source,
                    &table.name,
                    &o.connector,
                )))
            }
            Connector::Memory(o) => {
                let log = clients.memory().log(&o.name, o.partitions)?;
                let owned = (0..o.partitions).filter(|p| assignment.owns(*p)).collect();
                let mut source = MemorySource::open_partitions(log, o.bounded, owned);
                let next_key = memory_next_key(&source);
                for (partition, text) in resume.into_iter().flatten() {
                    if partition.starts_with(MEMORY_NEXT_PARTITION) {
                        if Some(partition.as_str()) == next_key.as_deref() {
                            let slot = text.parse().map_err(|_| bad_position(partition, text))?;
                            source.resume_round_robin(slot);
                        }
                        continue;
                    }
                    let (Ok(slot), Ok(consumed)) = (partition.parse(), text.parse()) else {
                        return Err(bad_position(partition, text));
                    };
                    source.resume(slot, consumed);
                }
                Ok(Reader::Memory(source))
            }
        }
    }

    /// The next chunk of messages; `None` at the end of a bounded read. Cancel-safe.
    pub async fn next_chunk(&mut self, max: usize) -> Result<Option<ReadChunk>> {
        let messages = match self {
            Reader::Pulsar(s) => s.next_chunk(max).await?,
            Reader::File(f) => f.next_chunk(max)?,
            Reader::Memory(m) => m.next_chunk(max).await?,
            Reader::Custom(c) => return Ok(c.next_batch().await?.map(ReadChunk::Rows)),
        };
        Ok(messages.map(ReadChunk::Messages))
    }

    /// Entries the broker holds beyond what was read (Pulsar tables); `None` for other
    /// sources or when the broker cannot say.
    pub async fn backlog(&self) -> Option<u64> {
        match self {
            Reader::Pulsar(s) => match s.backlog().await {
                Ok(b) => b,
                Err(e) => {
                    tracing::debug!("backlog unknown: {e}");
                    None
                }
            },
            Reader::File(_) | Reader::Memory(_) | Reader::Custom(_) => None,
        }
    }

    /// Each partition's name, as positions and watermark state name it.
    pub fn partition_names(&self) -> Vec<String> {
        match self {
            Reader::Pulsar(s) => s.positions().iter().map(|p| p.topic.to_string()).collect(),
            Reader::File(f) => f.partition_names(),
            Reader::Memory(m) => m.partitions().iter().map(|p| p.to_string()).collect(),
            Reader::Custom(_) => vec![CUSTOM_POSITION.to_string()],
        }
    }

    /// Number of partitions.
    pub fn partition_count(&self) -> usize {
        match self {
            Reader::Pulsar(s) => s.partition_count(),
            Reader::File(f) => f.partition_count(),
            Reader::Memory(m) => m.partition_count(),
            Reader::Custom(_) => 1,
        }
    }

    /// Whether a partition has reached its end.
    pub fn partition_finished(&self, slot: usize) -> bool {
        match self {
            Reader::Pulsar(s) => s.partition_finished(slot),
            Reader::File(f) => f.partition_finished(slot),
            Reader::Memory(m) => m.partition_finished(slot),
            Reader::Custom(c) => c.ended(),
        }
    }

    /// Where each partition is: the last message read (Pulsar), rows consumed (memory).
    pub fn positions(&self) -> SourcePositions {
        match self {
            Reader::Pulsar(s) => s
                .positions()
                .into_iter()
                .filter_map(|p| Some((p.topic.to_string(), p.last_read?.entry().to_string())))
                .collect(),
            Reader::Memory(m) => m
                .partitions()
                .iter()
                .zip(m.cursors())
                .map(|(partition, consumed)| (partition.to_string(), consumed.to_string()))
                .chain(memory_next_key(m).map(|key| (key, m.next_partition().to_string())))
                .collect(),
            Reader::Custom(c) => c
                .position()
                .map(|p| (CUSTOM_POSITION.to_string(), p.to_string()))
                .into_iter()
                .collect(),
            Reader::File(_) => SourcePositions::new(),
        }
    }

    /// What to acknowledge for what was read so far (nothing for files and memory).
    pub fn take_ack_token(&mut self) -> ReadAck {
        match self {
            Reader::Pulsar(s) => ReadAck::Pulsar(s.take_ack_token()),
            Reader::Custom(c) => match c.take_commit_point() {
                Some(position) => ReadAck::Custom(position),
                None => ReadAck::Nothing,
            },
            Reader::File(_) | Reader::Memory(_) => ReadAck::Nothing,
        }
    }

    /// Acknowledges a token.
    pub fn ack(&mut self, token: ReadAck) -> Result<()> {
        match (self, token) {
            (Reader::Pulsar(s), ReadAck::Pulsar(token)) => Ok(s.ack(token)?),
            (Reader::Custom(c), ReadAck::Custom(position)) => {
                c.commit(position);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Releases the reader (closes consumers; a custom source makes its last commits).
    pub async fn close(self) {
        match self {
            Reader::Pulsar(s) => (*s).close().await,
            Reader::Custom(c) => c.close().await,
            Reader::File(_) | Reader::Memory(_) => {}
        }
    }
}

/// The position key of a memory read's round-robin pointer (by its first partition, so a
/// restore at the same parallelism finds its own).
fn memory_next_key(source: &MemorySource) -> Option<String> {
    source
        .partitions()
        .first()
        .map(|p| format!("{MEMORY_NEXT_PARTITION}{p}"))
}
