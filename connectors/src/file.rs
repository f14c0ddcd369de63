//! Reading a file, or the files of a directory, line by line: each file is a partition and
//! each non-empty line a message (a JSON object or a CSV record), so files go through the
//! same decoding, error policy and watermarks as Pulsar messages.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::error::{ConnectorError, Result};
use crate::message_id::MessageId;
use crate::pulsar::{ReceivedMessage, SourceChunk};

/// How much of a file is read at once; lines are slices of these blocks, never copied.
const BLOCK: usize = 1 << 20;

struct FilePartition {
    name: Arc<str>,
    file: File,
    /// Read but not yet returned bytes; starts at the beginning of a line.
    buf: BytesMut,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
    eof: bool,
    line: u64,
    finished: bool,
}

impl FilePartition {
    /// The next line, with its terminator; `None` at the end of the file.
    fn next_line(&mut self) -> std::io::Result<Option<Bytes>> {
        loop {
            if let Some(at) = memchr::memchr(b'\n', &self.buf[self.scanned..]) {
                let end = self.scanned + at + 1;
                self.scanned = 0;
                return Ok(Some(self.buf.split_to(end).freeze()));
            }
            if self.eof {
                self.scanned = 0;
                return Ok((!self.buf.is_empty()).then(|| self.buf.split().freeze()));
            }
            self.scanned = self.buf.len();
            // Earlier lines still share the old block, so this moves only the partial line.
            let filled = self.buf.len();
            self.buf.reserve(BLOCK);
            self.buf.resize(filled + BLOCK, 0);
            let read = loop {
                match self.file.read(&mut self.buf[filled..]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let read = match read {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(filled);
                    return Err(e);
                }
            };
            self.buf.truncate(filled + read);
            self.eof = read == 0;
        }
    }
}

/// A bounded read of one file or of every file in a directory (in name order).
pub struct FileSource {
    partitions: Vec<FilePartition>,
    /// The partition the next chunk comes from (round robin, so the interleaving is fixed).
    next: usize,
    producer: Arc<str>,
}

impl std::fmt::Debug for FileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSource")
            .field("partitions", &self.partitions.len())
            .finish()
    }
}

fn list(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).map_err(|e| {
        ConnectorError::Io(std::io::Error::new(
            e.kind(),
            format!("cannot read '{}': {e}", path.display()),
        ))
    })?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

impl FileSource {
    /// Opens `path` (a file or a directory of files).
    pub fn open(path: &Path) -> Result<FileSource> {
        let mut partitions = Vec::new();
        for file in list(path)? {
            let handle = File::open(&file).map_err(|e| {
                ConnectorError::Io(std::io::Error::new(
                    e.kind(),
                    format!("cannot open '{}': {e}", file.display()),
                ))
            })?;
            partitions.push(FilePartition {
                name: Arc::from(file.display().to_string()),
                file: handle,
                buf: BytesMut::new(),
                scanned: 0,
                eof: false,
                line: 0,
                finished: false,
            });
        }
        Ok(FileSource {
            partitions,
            next: 0,
            producer: Arc::from("file"),
        })
    }

    /// Number of partitions (files).
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// Whether partition `slot` has been read to its end.
    pub fn partition_finished(&self, slot: usize) -> bool {
        self.partitions.get(slot).is_none_or(|p| p.finished)
    }

    /// Up to `max` lines of the next unfinished file; `None` when every file is read.
    ///
    /// Message ids are `0:line:file` (line numbers from 1); the topic is the file's path.
    pub fn next_chunk(&mut self, max: usize) -> Result<Option<SourceChunk>> {
        let count = self.partitions.len();
        for _ in 0..count {
            let slot = self.next;
            self.next = (self.next + 1) % count.max(1);
            let partition = &mut self.partitions[slot];
            if partition.finished {
                continue;
            }
            // Reserved up front: a message is large, and regrowing moves every one of them.
            let reserve = max.min(1 << 16);
            let mut chunk = SourceChunk {
                messages: Vec::with_capacity(reserve),
                slots: Vec::with_capacity(reserve),
                ..SourceChunk::default()
            };
            while chunk.messages.len() < max {
                let line = partition.next_line().map_err(|e| {
                    ConnectorError::Io(std::io::Error::new(
                        e.kind(),
                        format!("reading '{}': {e}", partition.name),
                    ))
                })?;
                let Some(line) = line else {
                    partition.finished = true;
                    break;
                };
                partition.line += 1;
                let mut end = line.len();
                while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
                    end -= 1;
                }
                if line[..end].iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                chunk.messages.push(ReceivedMessage::local(
                    MessageId::new(0, partition.line, slot as i32),
                    partition.name.clone(),
                    self.producer.clone(),
                    line.slice(..end),
                ));
                chunk.slots.push(slot);
            }
            if !chunk.messages.is_empty() || partition.finished {
                return Ok(Some(chunk));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_files_round_robin_and_skips_blank_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.json"), "1\n2\n\n3\n").expect("write");
        std::fs::write(dir.path().join("b.json"), "x\r\ny").expect("write");
        std::fs::write(dir.path().join(".hidden"), "no").expect("write");
        let mut source = FileSource::open(dir.path()).expect("open");
        assert_eq!(source.partition_count(), 2);
        let mut seen = Vec::new();
        while let Some(chunk) = source.next_chunk(2).expect("chunk") {
            for (m, slot) in chunk.messages.iter().zip(&chunk.slots) {
                seen.push((
                    *slot,
                    String::from_utf8_lossy(&m.payload).into_owned(),
                    m.id.entry_id,
                ));
            }
        }
        assert_eq!(
            seen,
            vec![
                (0, "1".into(), 1),
                (0, "2".into(), 2),
                (1, "x".into(), 1),
                (1, "y".into(), 2),
                (0, "3".into(), 4),
            ]
        );
        assert!(source.partition_finished(0) && source.partition_finished(1));
    }

    #[test]
    fn lines_across_read_blocks_come_back_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.csv");
        // Lines of up to 1.5 blocks, so some straddle two or three reads; no final newline.
        let lines: Vec<String> = (0..40)
            .map(|i| format!("{i},{}", "x".repeat((i * 40_503) % (BLOCK + BLOCK / 2))))
            .collect();
        std::fs::write(&path, lines.join("\r\n")).expect("write");
        let mut source = FileSource::open(&path).expect("open");
        let mut seen = Vec::new();
        while let Some(chunk) = source.next_chunk(7).expect("chunk") {
            seen.extend(chunk.messages.iter().map(|m| m.payload.clone()));
        }
        assert_eq!(seen.len(), lines.len());
        for (i, (got, want)) in seen.iter().zip(&lines).enumerate() {
            assert!(got[..] == *want.as_bytes(), "line {} differs", i + 1);
        }
    }

    #[test]
    fn a_missing_path_names_it() {
        let err = FileSource::open(Path::new("/no/such/file.json")).expect_err("missing");
        assert!(err.to_string().contains("/no/such/file.json"), "{err}");
    }
}
