//! Data blocks of an offloaded ledger's data object (storage formats §2): a 128-byte
//! header (magic `FBDBABCB`), then `[len i32][entry id i64][bytes]` entries, then
//! `FEDCDEAD` padding to the block's length. Blocks arrive as consecutive byte ranges; the
//! scanner frames entries across range boundaries and checks the block against the index.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

use super::TieredError;

/// Magic of a data block header.
pub const DATA_BLOCK_MAGIC: u32 = 0xFBDB_ABCB;
/// The pattern that fills a block after its last entry.
pub const BLOCK_PADDING: [u8; 4] = [0xFE, 0xDC, 0xDE, 0xAD];
/// Bytes of an entry's framing: length (4) and entry id (8).
pub const ENTRY_HEADER_SIZE: u64 = 12;
/// Bytes of the header's fixed fields: magic, header length, block length, first entry.
const HEADER_FIELDS: usize = 28;

/// One ledger entry framed out of a block: the stored Pulsar message bytes.
#[derive(Clone, Debug)]
pub struct RawEntry {
    /// The entry id.
    pub entry_id: u64,
    /// Offset of the entry's framing in the data object.
    pub offset: u64,
    /// The entry's bytes (broker entry metadata, checksum, metadata, payload).
    pub bytes: Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Header,
    Entries,
    /// Padding began at this offset.
    Padding(u64),
}

/// Frames the entries of one block from its bytes, fed in order.
#[derive(Debug)]
pub struct BlockScanner {
    object: Arc<str>,
    end: u64,
    header_length: u64,
    next_entry_id: u64,
    /// Entries before this id are framed (and checked) but not returned.
    skip_before: u64,
    /// Offset of the first byte of `pending`.
    position: u64,
    pending: Bytes,
    state: State,
    entries: u64,
}

impl BlockScanner {
    /// A scanner of the block at `[start, end)` of `object`, whose first entry the index
    /// says is `first_entry_id`; entries before `skip_before` are not returned.
    pub fn new(
        object: Arc<str>,
        (start, end): (u64, u64),
        header_length: u64,
        first_entry_id: u64,
        skip_before: u64,
    ) -> BlockScanner {
        BlockScanner {
            object,
            end,
            header_length,
            next_entry_id: first_entry_id,
            skip_before,
            position: start,
            pending: Bytes::new(),
            state: State::Header,
            entries: 0,
        }
    }

    fn error(&self, offset: u64, reason: String) -> TieredError {
        TieredError::new(&self.object, offset, reason)
    }

    /// Takes the next bytes of the block and appends the entries they complete to `out`.
    pub fn feed(&mut self, bytes: Bytes, out: &mut Vec<RawEntry>) -> Result<(), TieredError> {
        let mut data = if self.pending.is_empty() {
            bytes
        } else {
            let mut joined = BytesMut::with_capacity(self.pending.len() + bytes.len());
            joined.extend_from_slice(&self.pending);
            joined.extend_from_slice(&bytes);
            joined.freeze()
        };
        let mut pos = self.position;
        if pos + data.len() as u64 > self.end {
            return Err(self.error(
                pos,
                format!(
                    "{} bytes fed past the block's end at {}",
                    data.len(),
                    self.end
                ),
            ));
        }
        loop {
            match self.state {
                State::Header => {
                    if (data.len() as u64) < self.header_length {
                        break;
                    }
                    self.check_header(pos, &data[..HEADER_FIELDS])?;
                    data.advance(self.header_length as usize);
                    pos += self.header_length;
                    self.state = State::Entries;
                }
                State::Entries => {
                    if pos == self.end {
                        break;
                    }
                    // No room for another entry's framing: the rest is padding, which may
                    // be cut mid-pattern (fewer than 4 bytes, so no negative length to see).
                    if self.end - pos < ENTRY_HEADER_SIZE {
                        if self.entries == 0 {
                            return Err(self.error(pos, "block holds no entries".into()));
                        }
                        self.state = State::Padding(pos);
                        continue;
                    }
                    if data.len() < 4 {
                        break;
                    }
                    let len = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                    // Negative: the sign bit of the FEDCDEAD padding.
                    let Ok(len) = u64::try_from(len) else {
                        if self.entries == 0 {
                            return Err(self.error(pos, "block holds no entries".into()));
                        }
                        self.state = State::Padding(pos);
                        continue;
                    };
                    let framed = ENTRY_HEADER_SIZE + len;
                    if pos + framed > self.end {
                        return Err(self.error(
                            pos,
                            format!(
                                "entry of {len} bytes overruns the block, which ends at {}",
                                self.end
                            ),
                        ));
                    }
                    if (data.len() as u64) < framed {
                        break;
                    }
                    let id = u64::from_be_bytes(data[4..12].try_into().unwrap_or_default());
                    if id != self.next_entry_id {
                        return Err(self.error(
                            pos,
                            format!(
                                "entry id {id} where the index implies {}",
                                self.next_entry_id
                            ),
                        ));
                    }
                    data.advance(ENTRY_HEADER_SIZE as usize);
                    let bytes = data.split_to(len as usize);
                    if id >= self.skip_before {
                        out.push(RawEntry {
                            entry_id: id,
                            offset: pos,
                            bytes,
                        });
                    }
                    pos += framed;
                    self.next_entry_id += 1;
                    self.entries += 1;
                }
                State::Padding(start) => {
                    for (i, byte) in data.iter().enumerate() {
                        let at = pos + i as u64;
                        if *byte != BLOCK_PADDING[((at - start) % 4) as usize] {
                            return Err(self.error(
                                at,
                                format!("byte {byte:02X} inside the block's end padding"),
                            ));
                        }
                    }
                    pos += data.len() as u64;
                    data = Bytes::new();
                    break;
                }
            }
        }
        self.position = pos;
        self.pending = data;
        Ok(())
    }

    fn check_header(&self, pos: u64, h: &[u8]) -> Result<(), TieredError> {
        let magic = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        if magic != DATA_BLOCK_MAGIC {
            return Err(self.error(
                pos,
                format!("bad data block magic {magic:08X}, expected FBDBABCB"),
            ));
        }
        let field = |at: usize| i64::from_be_bytes(h[at..at + 8].try_into().unwrap_or_default());
        let (header_length, block_length, first_entry) = (field(4), field(12), field(20));
        if header_length != self.header_length as i64 {
            return Err(self.error(
                pos + 4,
                format!(
                    "block header length {header_length}, the index says {}",
                    self.header_length
                ),
            ));
        }
        if block_length != (self.end - pos) as i64 {
            return Err(self.error(
                pos + 12,
                format!(
                    "block length {block_length}, the index places the block in {} bytes",
                    self.end - pos
                ),
            ));
        }
        if first_entry != self.next_entry_id as i64 {
            return Err(self.error(
                pos + 20,
                format!(
                    "block starts at entry {first_entry}, the index says {}",
                    self.next_entry_id
                ),
            ));
        }
        Ok(())
    }

    /// Ends the block (all of its bytes were fed); returns the id after its last entry.
    pub fn finish(self) -> Result<u64, TieredError> {
        match self.state {
            State::Header => {
                return Err(self.error(self.position, "block ends inside its header".into()));
            }
            State::Entries if !self.pending.is_empty() || self.position != self.end => {
                return Err(self.error(
                    self.position,
                    format!(
                        "block ends inside an entry ({} bytes left over; the block ends at {})",
                        self.pending.len(),
                        self.end
                    ),
                ));
            }
            _ => {}
        }
        if self.entries == 0 {
            return Err(self.error(self.position, "block holds no entries".into()));
        }
        Ok(self.next_entry_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: u64 = 128;

    /// A block of `entries` (payload sizes) from entry 7, padded to `block_length`.
    fn block(entries: &[usize], block_length: u64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&DATA_BLOCK_MAGIC.to_be_bytes());
        b.extend_from_slice(&(HEADER as i64).to_be_bytes());
        b.extend_from_slice(&(block_length as i64).to_be_bytes());
        b.extend_from_slice(&7i64.to_be_bytes());
        b.resize(HEADER as usize, 0);
        for (i, len) in entries.iter().enumerate() {
            b.extend_from_slice(&(*len as i32).to_be_bytes());
            b.extend_from_slice(&(7 + i as i64).to_be_bytes());
            b.extend(std::iter::repeat_n(i as u8, *len));
        }
        let mut phase = 0;
        while (b.len() as u64) < block_length {
            b.push(BLOCK_PADDING[phase % 4]);
            phase += 1;
        }
        b
    }

    /// Feeds `bytes` in pieces of `piece` bytes; the ids framed, or the error.
    fn scan(bytes: &[u8], piece: usize) -> Result<Vec<u64>, TieredError> {
        let mut scanner = BlockScanner::new("obj".into(), (0, bytes.len() as u64), HEADER, 7, 0);
        let mut out = Vec::new();
        for chunk in bytes.chunks(piece) {
            scanner.feed(Bytes::copy_from_slice(chunk), &mut out)?;
        }
        assert_eq!(scanner.finish()?, 7 + out.len() as u64);
        Ok(out.iter().map(|e| e.entry_id).collect())
    }

    #[test]
    fn padding_cut_mid_pattern_ends_the_block() {
        let entries = [100, 50];
        let used = HEADER + 2 * ENTRY_HEADER_SIZE + 150;
        for extra in [0, 1, 2, 3, 4, 6, 11, 12, 40] {
            let bytes = block(&entries, used + extra);
            for piece in [1, 3, 7, 64, bytes.len()] {
                assert_eq!(
                    scan(&bytes, piece).map_err(|e| e.to_string()),
                    Ok(vec![7, 8]),
                    "{extra} padding bytes, fed {piece} at a time"
                );
            }
        }
    }

    #[test]
    fn bytes_that_are_not_padding_after_the_last_entry_are_an_error() {
        let used = HEADER + ENTRY_HEADER_SIZE + 10;
        let mut bytes = block(&[10], used + 2);
        bytes[used as usize + 1] = 0x00;
        let error = scan(&bytes, 5).expect_err("not padding").to_string();
        assert!(error.contains("inside the block's end padding"), "{error}");
    }
}
