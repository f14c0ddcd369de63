//! In-process tables: named, partitioned, append-only logs of encoded rows. Rows are kept
//! as the payloads a Pulsar topic would carry, so memory tables go through the same
//! decoding, error policy and watermarks as topics; tests feed them step by step.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::watch;

use crate::error::{ConnectorError, Result};
use crate::message_id::MessageId;
use crate::pulsar::{ReceivedMessage, SourceChunk};

/// Every memory log of an engine, by name.
#[derive(Debug, Default)]
pub struct MemoryStore {
    logs: Mutex<HashMap<String, Arc<MemoryLog>>>,
}

impl MemoryStore {
    /// The log `name`, created with `partitions` partitions on first use; an existing log
    /// must have that many.
    pub fn log(&self, name: &str, partitions: usize) -> Result<Arc<MemoryLog>> {
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(log) = logs.get(name) {
            if log.partitions != partitions {
                return Err(ConnectorError::Memory(format!(
                    "memory storage '{name}' has {} partition(s), not {partitions}",
                    log.partitions
                )));
            }
            return Ok(log.clone());
        }
        let log = Arc::new(MemoryLog {
            topic: Arc::from(format!("memory:{name}")),
            partitions,
            rows: Mutex::new(vec![Vec::new(); partitions]),
            appended: watch::channel(0).0,
        });
        logs.insert(name.to_string(), log.clone());
        Ok(log)
    }

    /// Rows appended to every log so far; unchanged means nothing new was written.
    pub fn appended(&self) -> u64 {
        let logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        logs.values().map(|l| *l.appended.borrow()).sum()
    }
}

/// One partitioned, append-only log.
#[derive(Debug)]
pub struct MemoryLog {
    topic: Arc<str>,
    partitions: usize,
    rows: Mutex<Vec<Vec<Bytes>>>,
    /// Total rows appended; readers wait for it to change.
    appended: watch::Sender<u64>,
}

impl MemoryLog {
    /// Number of partitions.
    pub fn partitions(&self) -> usize {
        self.partitions
    }

    fn rows(&self) -> MutexGuard<'_, Vec<Vec<Bytes>>> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `(partition, payload)` rows at once: a reader sees all of them or none.
    pub fn append(&self, rows: Vec<(usize, Bytes)>) -> Result<()> {
        let n = rows.len() as u64;
        {
            let mut partitions = self.rows();
            if let Some((p, _)) = rows.iter().find(|(p, _)| *p >= self.partitions) {
                return Err(ConnectorError::Memory(format!(
                    "{}: no partition {p} (it has {})",
                    self.topic, self.partitions
                )));
            }
            for (p, payload) in rows {
                partitions[p].push(payload);
            }
        }
        self.appended.send_modify(|a| *a += n);
        Ok(())
    }

    /// Rows in each partition.
    pub fn lengths(&self) -> Vec<usize> {
        self.rows().iter().map(Vec::len).collect()
    }
}

/// A read of a memory log (or of some of its partitions): continuous, or up to the rows
/// present when it opened. Slots are indices into the partitions it reads.
#[derive(Debug)]
pub struct MemorySource {
    log: Arc<MemoryLog>,
    /// The log's partition each slot reads.
    partitions: Vec<usize>,
    cursors: Vec<usize>,
    /// Bounded reads end here.
    end: Option<Vec<usize>>,
    /// The partition the next chunk comes from (round robin).
    next: usize,
    appended: watch::Receiver<u64>,
    producer: Arc<str>,
}

impl MemorySource {
    /// Opens a read of every partition from the first row; `bounded` reads end at the rows
    /// present now.
    pub fn open(log: Arc<MemoryLog>, bounded: bool) -> Self {
        let all = (0..log.partitions).collect();
        Self::open_partitions(log, bounded, all)
    }

    /// Opens a read of some partitions of the log (those that exist).
    pub fn open_partitions(log: Arc<MemoryLog>, bounded: bool, partitions: Vec<usize>) -> Self {
        let appended = log.appended.subscribe();
        let partitions: Vec<usize> = partitions
            .into_iter()
            .filter(|p| *p < log.partitions)
            .collect();
        let lengths = log.lengths();
        Self {
            cursors: vec![0; partitions.len()],
            end: bounded.then(|| partitions.iter().map(|&p| lengths[p]).collect()),
            partitions,
            next: 0,
            appended,
            producer: Arc::from("memory"),
            log,
        }
    }

    /// Number of partitions read.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// The log's partition each slot reads.
    pub fn partitions(&self) -> &[usize] {
        &self.partitions
    }

    /// Rows consumed from each slot's partition so far.
    pub fn cursors(&self) -> &[usize] {
        &self.cursors
    }

    /// The partition the next chunk is taken from (round robin).
    pub fn next_partition(&self) -> usize {
        self.next
    }

    /// Takes the next chunk from partition `slot`: a restored read interleaves its
    /// partitions as the original one would have.
    pub fn resume_round_robin(&mut self, slot: usize) {
        self.next = slot % self.partitions.len().max(1);
    }

    /// Continues after `consumed` rows of the log's partition `partition` (a checkpoint's
    /// position), if this read has it.
    pub fn resume(&mut self, partition: usize, consumed: usize) {
        let Some(slot) = self.partitions.iter().position(|p| *p == partition) else {
            return;
        };
        let available = self.log.rows().get(partition).map_or(0, Vec::len);
        self.cursors[slot] = consumed.min(available);
    }

    /// Whether a bounded read has consumed partition `slot`.
    pub fn partition_finished(&self, slot: usize) -> bool {
        match &self.end {
            Some(end) => self.cursors.get(slot) >= end.get(slot),
            None => false,
        }
    }

    /// Up to `max` rows of the next partition that has any; `None` when nothing is
    /// available now (or a bounded read is complete).
    pub fn try_next_chunk(&mut self, max: usize) -> Option<SourceChunk> {
        let rows = self.log.rows();
        let count = self.partitions.len();
        for _ in 0..count {
            let slot = self.next;
            self.next = (self.next + 1) % count;
            let partition = self.partitions[slot];
            let limit = match &self.end {
                Some(end) => end[slot],
                None => rows[partition].len(),
            };
            let from = self.cursors[slot];
            if from >= limit {
                continue;
            }
            let to = limit.min(from + max.max(1));
            let mut chunk = SourceChunk::default();
            for (offset, payload) in rows[partition][from..to].iter().enumerate() {
                let index = (from + offset) as u64;
                chunk.messages.push(ReceivedMessage::local(
                    MessageId::new(0, index, partition as i32),
                    self.log.topic.clone(),
                    self.producer.clone(),
                    payload.clone(),
                ));
                chunk.slots.push(slot);
            }
            self.cursors[slot] = to;
            return Some(chunk);
        }
        None
    }

    /// Whether a bounded read is complete.
    fn exhausted(&self) -> bool {
        self.end.is_some() && (0..self.partitions.len()).all(|s| self.partition_finished(s))
    }

    /// The next chunk, waiting for rows in a continuous read; `None` at the end of a bounded
    /// read. Cancel-safe: rows are taken only when returned.
    pub async fn next_chunk(&mut self, max: usize) -> Result<Option<SourceChunk>> {
        loop {
            // Mark before reading, so an append between the read and the wait wakes us.
            self.appended.borrow_and_update();
            if let Some(chunk) = self.try_next_chunk(max) {
                return Ok(Some(chunk));
            }
            if self.exhausted() {
                return Ok(None);
            }
            if self.appended.changed().await.is_err() {
                return Ok(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(chunk: &SourceChunk) -> Vec<(usize, String)> {
        chunk
            .messages
            .iter()
            .zip(&chunk.slots)
            .map(|(m, s)| (*s, String::from_utf8_lossy(&m.payload).into_owned()))
            .collect()
    }

    #[tokio::test]
    async fn continuous_reads_wait_for_appends_and_bounded_reads_end() {
        let store = MemoryStore::default();
        let log = store.log("t", 2).expect("log");
        log.append(vec![(0, Bytes::from("a")), (1, Bytes::from("b"))])
            .expect("append");
        let mut bounded = MemorySource::open(log.clone(), true);
        let mut continuous = MemorySource::open(log.clone(), false);
        log.append(vec![(0, Bytes::from("c"))]).expect("append");

        let mut seen = Vec::new();
        while let Some(chunk) = bounded.next_chunk(10).await.expect("read") {
            seen.extend(payloads(&chunk));
        }
        assert_eq!(seen, vec![(0, "a".into()), (1, "b".into())]);
        assert!(bounded.partition_finished(0) && bounded.partition_finished(1));

        let mut seen = Vec::new();
        while let Some(chunk) = continuous.try_next_chunk(10) {
            seen.extend(payloads(&chunk));
        }
        assert_eq!(
            seen,
            vec![(0, "a".into()), (0, "c".into()), (1, "b".into())]
        );
        assert!(!continuous.partition_finished(0));

        let waiting = tokio::spawn(async move { continuous.next_chunk(10).await });
        log.append(vec![(1, Bytes::from("d"))]).expect("append");
        let chunk = waiting.await.expect("join").expect("read").expect("chunk");
        assert_eq!(payloads(&chunk), vec![(1, "d".into())]);
        assert_eq!(store.appended(), 4);
    }

    #[tokio::test]
    async fn a_read_of_some_partitions_sees_only_theirs() {
        let store = MemoryStore::default();
        let log = store.log("t", 3).expect("log");
        log.append(vec![
            (0, Bytes::from("a")),
            (1, Bytes::from("b")),
            (2, Bytes::from("c")),
        ])
        .expect("append");
        let mut odd = MemorySource::open_partitions(log.clone(), true, vec![1]);
        let mut rest = MemorySource::open_partitions(log, true, vec![0, 2]);
        rest.resume(2, 1);
        let chunk = odd.next_chunk(10).await.expect("read").expect("chunk");
        assert_eq!(payloads(&chunk), vec![(0, "b".into())]);
        assert_eq!(
            chunk.messages[0].id.partition, 1,
            "ids name the log's partition"
        );
        assert!(odd.next_chunk(10).await.expect("read").is_none());
        let chunk = rest.next_chunk(10).await.expect("read").expect("chunk");
        assert_eq!(payloads(&chunk), vec![(0, "a".into())]);
        assert!(
            rest.next_chunk(10).await.expect("read").is_none(),
            "2 was resumed past c"
        );
    }

    #[test]
    fn a_log_keeps_its_partition_count() {
        let store = MemoryStore::default();
        store.log("t", 2).expect("log");
        let err = store.log("t", 3).expect_err("mismatch");
        assert!(err.to_string().contains("'t' has 2 partition(s)"), "{err}");
        let err = store
            .log("t", 2)
            .expect("log")
            .append(vec![(5, Bytes::new())])
            .expect_err("no partition");
        assert!(err.to_string().contains("no partition 5"), "{err}");
    }
}
