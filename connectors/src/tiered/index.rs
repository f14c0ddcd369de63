//! The index object of an offloaded ledger (storage formats §3): where each data block
//! starts, how long the data object is, and the ledger's BookKeeper metadata.

use bytes::{Buf, Bytes};
use prost::Message as _;

use super::TieredError;
use super::ledger_metadata::LedgerMetadataFormat;

/// Magic of the V1 index, written for every normally offloaded ledger.
pub const INDEX_V1_MAGIC: u32 = 0xDE47_DE47;
/// Magic of the V2 index (streaming offload, PIP-76; not used by production brokers).
pub const INDEX_V2_MAGIC: u32 = 0x3D1F_B0BC;
/// Bytes of one index entry: firstEntryId (8), partId (4), offset (8).
const INDEX_ENTRY_SIZE: usize = 20;
/// Bytes before the ledger metadata.
const INDEX_HEADER_SIZE: usize = 32;

/// One data block, as the index lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    /// Id of the block's first entry.
    pub first_entry_id: u64,
    /// Multipart part number (1-based).
    pub part_id: i32,
    /// Offset of the block's header within the data object.
    pub offset: u64,
}

/// A parsed V1 index.
#[derive(Clone, Debug)]
pub struct OffloadIndex {
    /// Length of the data object in bytes.
    pub data_object_length: u64,
    /// Length of every block header (128).
    pub data_header_length: u64,
    /// The ledger's metadata.
    pub ledger: LedgerMetadataFormat,
    /// Blocks in ascending entry order.
    pub blocks: Vec<BlockEntry>,
}

impl OffloadIndex {
    /// Parses an index object; `object` names it in errors.
    pub fn parse(object: &str, bytes: Bytes) -> Result<OffloadIndex, TieredError> {
        let at = |offset: usize, reason: String| TieredError::new(object, offset as u64, reason);
        let total = bytes.len();
        let mut buf = bytes;
        if buf.len() < 4 {
            return Err(at(0, format!("index object of {total} bytes has no magic")));
        }
        let magic = buf.get_u32();
        match magic {
            INDEX_V1_MAGIC => {}
            INDEX_V2_MAGIC => {
                return Err(at(
                    0,
                    "V2 index (magic 3D1FB0BC, Pulsar's streaming offload, PIP-76) is not supported; \
                     production brokers write V1 (DE47DE47)"
                        .into(),
                ));
            }
            other => {
                return Err(at(
                    0,
                    format!("bad index magic {other:08X}, expected DE47DE47"),
                ));
            }
        }
        if buf.len() < INDEX_HEADER_SIZE - 4 {
            return Err(at(4, format!("truncated index header ({total} bytes)")));
        }
        let _index_block_length = buf.get_u32();
        let data_object_length = buf.get_i64();
        let data_header_length = buf.get_i64();
        let count = buf.get_i32();
        let metadata_length = buf.get_i32();
        if data_object_length < 0 || data_header_length < 28 || count <= 0 || metadata_length < 0 {
            return Err(at(
                8,
                format!(
                    "impossible index header: data length {data_object_length}, header length \
                     {data_header_length}, {count} blocks, metadata of {metadata_length} bytes"
                ),
            ));
        }
        let metadata_length = metadata_length as usize;
        let count = count as usize;
        let needed = metadata_length.saturating_add(count.saturating_mul(INDEX_ENTRY_SIZE));
        if buf.len() < needed {
            return Err(at(
                total,
                format!(
                    "truncated index: {} bytes after the header, {needed} needed for the metadata \
                     and {count} block entries",
                    buf.len()
                ),
            ));
        }
        let ledger = LedgerMetadataFormat::decode(buf.split_to(metadata_length))
            .map_err(|e| at(INDEX_HEADER_SIZE, format!("ledger metadata: {e}")))?;
        let mut blocks: Vec<BlockEntry> = Vec::with_capacity(count);
        for i in 0..count {
            let entry_offset = INDEX_HEADER_SIZE + metadata_length + i * INDEX_ENTRY_SIZE;
            let first_entry_id = buf.get_i64();
            let part_id = buf.get_i32();
            let offset = buf.get_i64();
            if first_entry_id < 0 || offset < 0 || offset >= data_object_length {
                return Err(at(
                    entry_offset,
                    format!(
                        "block entry {i}: first entry {first_entry_id}, offset {offset} outside \
                         the {data_object_length}-byte data object"
                    ),
                ));
            }
            let block = BlockEntry {
                first_entry_id: first_entry_id as u64,
                part_id,
                offset: offset as u64,
            };
            let ordered = match blocks.last() {
                None => block.first_entry_id == 0 && block.offset == 0,
                Some(prev) => {
                    block.first_entry_id > prev.first_entry_id && block.offset > prev.offset
                }
            };
            if !ordered {
                return Err(at(
                    entry_offset,
                    format!(
                        "block entry {i} (first entry {}, offset {}) is out of order",
                        block.first_entry_id, block.offset
                    ),
                ));
            }
            blocks.push(block);
        }
        let index = OffloadIndex {
            data_object_length: data_object_length as u64,
            data_header_length: data_header_length as u64,
            ledger,
            blocks,
        };
        if let Some(last) = index.last_entry_id()
            && index.blocks.last().is_some_and(|b| b.first_entry_id > last)
        {
            return Err(at(
                INDEX_HEADER_SIZE,
                format!("a block starts after the ledger's last entry {last}"),
            ));
        }
        Ok(index)
    }

    /// The ledger's last entry id (`None` for an empty ledger).
    pub fn last_entry_id(&self) -> Option<u64> {
        self.ledger
            .last_entry_id
            .and_then(|e| u64::try_from(e).ok())
    }

    /// The block holding `entry_id` (the last block starting at or before it).
    pub fn block_of(&self, entry_id: u64) -> usize {
        self.blocks
            .partition_point(|b| b.first_entry_id <= entry_id)
            .saturating_sub(1)
    }

    /// Byte range `[start, end)` of block `i` in the data object.
    pub fn block_range(&self, i: usize) -> (u64, u64) {
        let start = self.blocks[i].offset;
        let end = self
            .blocks
            .get(i + 1)
            .map_or(self.data_object_length, |b| b.offset);
        (start, end)
    }

    /// The managed ledger (topic) the ledger belongs to, from its custom metadata.
    pub fn managed_ledger_name(&self) -> Option<String> {
        self.ledger.managed_ledger_name()
    }
}
