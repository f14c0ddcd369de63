//! Reading a file, or the files of a directory, line by line: each file (or byte range of a
//! large file, split at line boundaries) is a partition and each non-empty line a message (a
//! JSON object or a CSV record), so files go through the same decoding, error policy and
//! watermarks as Pulsar messages. Several readers share the splits of a table.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::error::{ConnectorError, Result};
use crate::message_id::MessageId;
use crate::pulsar::{ReceivedMessage, SourceChunk};

/// How much of a file is read at once; lines are slices of these blocks, never copied.
const BLOCK: usize = 1 << 20;

/// Files smaller than this are never split: splitting pays a seek and a partial line.
pub const MIN_SPLIT_BYTES: u64 = 8 << 20;

/// The ledger id of message ids that number lines; line numbers of a split that starts
/// inside a file are unknown, so its message ids hold byte offsets (ledger [`BYTE_OFFSETS`]).
pub const LINE_NUMBERS: u64 = 0;
/// See [`LINE_NUMBERS`].
pub const BYTE_OFFSETS: u64 = 1;

/// Blocks a large file is cut into for several readers: each reader's split takes every
/// n-th block, so the readers move through the file (and through its event time) together,
/// as readers pulling the next block from a shared queue would (Flink's file source hands
/// splits out that way). A reader ahead of the others in time would only hold more windows
/// open while the others' watermarks catch up.
pub const INTERLEAVE_BLOCK_BYTES: u64 = 4 << 20;

/// A part of a file read as one partition: the lines that start in each of `ranges`, range
/// after range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSplit {
    /// The file.
    pub path: PathBuf,
    /// Byte ranges `start..end`, ascending (a line starting before `start` belongs to the
    /// range before; `end` = `u64::MAX`: the end of the file).
    pub ranges: Vec<(u64, u64)>,
}

impl FileSplit {
    /// A whole file.
    pub fn whole(path: PathBuf) -> Self {
        Self {
            path,
            ranges: vec![(0, u64::MAX)],
        }
    }

    /// The split's name: the path, with where its first range starts when it is part of the
    /// file.
    pub fn name(&self) -> String {
        match self.ranges.as_slice() {
            [(0, u64::MAX)] => self.path.display().to_string(),
            ranges => format!(
                "{}@{}",
                self.path.display(),
                ranges.first().map_or(0, |r| r.0)
            ),
        }
    }
}

/// The splits of `path` (a file, or a directory's files in name order) for `readers`
/// readers: whole files, and files of at least `min_split` bytes cut into about a reader's
/// share of the total, each piece every n-th block of [`INTERLEAVE_BLOCK_BYTES`] (so a single
/// large file is read by every reader, all of them moving through it together).
pub fn plan_splits(path: &Path, readers: usize, min_split: u64) -> Result<Vec<FileSplit>> {
    plan_splits_in_blocks(path, readers, min_split, INTERLEAVE_BLOCK_BYTES)
}

/// [`plan_splits`] with another block size.
pub fn plan_splits_in_blocks(
    path: &Path,
    readers: usize,
    min_split: u64,
    block: u64,
) -> Result<Vec<FileSplit>> {
    let files = list(path)?;
    let sizes = files
        .iter()
        .map(|f| {
            std::fs::metadata(f).map(|m| m.len()).map_err(|e| {
                ConnectorError::Io(std::io::Error::new(
                    e.kind(),
                    format!("cannot read '{}': {e}", f.display()),
                ))
            })
        })
        .collect::<Result<Vec<u64>>>()?;
    let total: u64 = sizes.iter().sum();
    let share = total.div_ceil(readers.max(1) as u64).max(min_split.max(1));
    let mut splits = Vec::new();
    for (file, size) in files.into_iter().zip(sizes) {
        let pieces = if readers <= 1 {
            1
        } else {
            size.div_ceil(share).max(1)
        };
        if pieces == 1 {
            splits.push(FileSplit::whole(file));
            continue;
        }
        let blocks = size.div_ceil(block.max(1)).max(pieces);
        let step = size.div_ceil(blocks);
        for piece in 0..pieces {
            let ranges: Vec<(u64, u64)> = (piece..blocks)
                .step_by(pieces as usize)
                .map(|b| b * step)
                .filter(|start| *start < size)
                .map(|start| {
                    let end = start + step;
                    (start, if end >= size { u64::MAX } else { end })
                })
                .collect();
            if !ranges.is_empty() {
                splits.push(FileSplit {
                    path: file.clone(),
                    ranges,
                });
            }
        }
    }
    Ok(splits)
}

struct FilePartition {
    /// The split's name.
    name: Arc<str>,
    /// The file's path, as messages name their topic.
    path: Arc<str>,
    file: File,
    /// Ranges not yet read.
    ranges: std::collections::VecDeque<(u64, u64)>,
    /// Byte offset of the start of `buf` in the file.
    offset: u64,
    /// Lines starting at or after this offset belong to the next range (or split).
    end: u64,
    /// Whether ids number lines (the split is one range from the file's start).
    numbered: bool,
    /// Read but not yet returned bytes; starts at the beginning of a line.
    buf: BytesMut,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
    eof: bool,
    line: u64,
    finished: bool,
}

impl FilePartition {
    /// Opens a split: positioned at the first line that starts in its first range.
    fn open(split: &FileSplit) -> Result<FilePartition> {
        let file = File::open(&split.path).map_err(|e| {
            ConnectorError::Io(std::io::Error::new(
                e.kind(),
                format!("cannot open '{}': {e}", split.path.display()),
            ))
        })?;
        Ok(FilePartition {
            name: Arc::from(split.name()),
            path: Arc::from(split.path.display().to_string()),
            file,
            ranges: split.ranges.iter().copied().collect(),
            offset: 0,
            // Nothing is read until the first range is entered.
            end: 0,
            numbered: matches!(split.ranges.as_slice(), [(0, _)]),
            buf: BytesMut::new(),
            scanned: 0,
            eof: false,
            line: 0,
            finished: false,
        })
    }

    /// Moves to the range `start..end`: seeks there and skips the line that started before.
    fn enter(&mut self, start: u64, end: u64) -> std::io::Result<()> {
        let at = start.saturating_sub(1);
        if at != self.offset {
            self.file.seek(SeekFrom::Start(at))?;
            self.buf.clear();
            self.scanned = 0;
            self.eof = false;
            self.offset = at;
        }
        self.end = end;
        if start > 0 {
            // The line holding byte `start - 1` belongs to the range before.
            self.read_line()?;
        }
        Ok(())
    }

    /// The next line, with its terminator; `None` at the end of the file or of the split.
    fn next_line(&mut self) -> std::io::Result<Option<Bytes>> {
        while self.offset >= self.end {
            match self.ranges.pop_front() {
                Some((start, end)) => self.enter(start, end)?,
                None => return Ok(None),
            }
        }
        self.read_line()
    }

    /// The next line in the file, wherever it starts; `None` at the end of the file.
    fn read_line(&mut self) -> std::io::Result<Option<Bytes>> {
        loop {
            if let Some(at) = memchr::memchr(b'\n', &self.buf[self.scanned..]) {
                let end = self.scanned + at + 1;
                self.scanned = 0;
                self.offset += end as u64;
                return Ok(Some(self.buf.split_to(end).freeze()));
            }
            if self.eof {
                self.scanned = 0;
                self.offset += self.buf.len() as u64;
                // At the end of the file, nothing of any later range is left either.
                self.end = 0;
                self.ranges.clear();
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
    /// Opens `path` (a file or a directory of files), each file whole.
    pub fn open(path: &Path) -> Result<FileSource> {
        Self::open_splits(&plan_splits(path, 1, MIN_SPLIT_BYTES)?)
    }

    /// Opens splits (see [`plan_splits`]), each a partition.
    pub fn open_splits(splits: &[FileSplit]) -> Result<FileSource> {
        let partitions = splits
            .iter()
            .map(FilePartition::open)
            .collect::<Result<Vec<_>>>()?;
        Ok(FileSource {
            partitions,
            next: 0,
            producer: Arc::from("file"),
        })
    }

    /// Number of partitions (files or splits).
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// Each partition's name (see [`FileSplit::name`]).
    pub fn partition_names(&self) -> Vec<String> {
        self.partitions.iter().map(|p| p.name.to_string()).collect()
    }

    /// Whether partition `slot` has been read to its end.
    pub fn partition_finished(&self, slot: usize) -> bool {
        self.partitions.get(slot).is_none_or(|p| p.finished)
    }

    /// Up to `max` lines of the next unfinished file; `None` when every file is read.
    ///
    /// Message ids are `0:line:partition` (line numbers from 1), or `1:byte offset:partition`
    /// for a split that starts inside its file; the topic is the file's path.
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
                        format!("reading '{}': {e}", partition.path),
                    ))
                })?;
                let Some(line) = line else {
                    partition.finished = true;
                    break;
                };
                // The read moved the offset past the line.
                let line_start = partition.offset - line.len() as u64;
                partition.line += 1;
                let id = if partition.numbered {
                    MessageId::new(LINE_NUMBERS, partition.line, slot as i32)
                } else {
                    MessageId::new(BYTE_OFFSETS, line_start, slot as i32)
                };
                let mut end = line.len();
                while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
                    end -= 1;
                }
                if line[..end].iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                chunk.messages.push(ReceivedMessage::local(
                    id,
                    partition.path.clone(),
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
    fn splits_of_a_file_read_every_line_once_whatever_the_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lines.csv");
        let lines: Vec<String> = (0..500)
            .map(|i| format!("{i},{}", "y".repeat(i % 37)))
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n").expect("write");
        for (readers, block) in [
            (1, 100),
            (2, 100),
            (3, 1000),
            (7, 333),
            (50, 1),
            (4, 1 << 20),
        ] {
            let splits = plan_splits_in_blocks(&path, readers, 1, block).expect("plan");
            assert_eq!(splits.len(), readers, "{readers} readers");
            let mut seen = Vec::new();
            for split in &splits {
                let mut source =
                    FileSource::open_splits(std::slice::from_ref(split)).expect("open");
                let mut previous: Option<usize> = None;
                while let Some(chunk) = source.next_chunk(13).expect("chunk") {
                    for m in &chunk.messages {
                        let text = String::from_utf8_lossy(&m.payload).into_owned();
                        let number: usize = text
                            .split(',')
                            .next()
                            .and_then(|n| n.parse().ok())
                            .expect("a numbered line");
                        assert!(
                            previous.is_none_or(|p| p < number),
                            "a split reads its lines in file order"
                        );
                        previous = Some(number);
                        if !matches!(split.ranges.as_slice(), [(0, _)]) {
                            // Ids hold the line's byte offset.
                            let at = m.id.entry_id as usize;
                            let file = std::fs::read(&path).expect("read");
                            assert!(file[at..].starts_with(text.as_bytes()), "offset of {text}");
                            assert_eq!(m.id.ledger_id, BYTE_OFFSETS);
                        }
                        seen.push(text);
                    }
                }
            }
            seen.sort_by_key(|l| l.split(',').next().and_then(|n| n.parse::<usize>().ok()));
            assert_eq!(seen, lines, "{readers} readers: every line once");
        }
        // Below the minimum size a file stays whole.
        assert_eq!(
            plan_splits(&path, 4, MIN_SPLIT_BYTES).expect("plan").len(),
            1
        );
    }

    #[test]
    fn a_missing_path_names_it() {
        let err = FileSource::open(Path::new("/no/such/file.json")).expect_err("missing");
        assert!(err.to_string().contains("/no/such/file.json"), "{err}");
    }
}
