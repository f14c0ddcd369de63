//! Reassembly of chunked messages (storage formats §4.7): a large message is split into
//! entries sharing a `uuid`, numbered by `chunk_id`; their payloads concatenated in order
//! form the (still compressed) message, decoded once with the last chunk's metadata.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use super::entry::ParsedEntry;

/// Chunked messages being assembled at once; more means a producer never finished one.
const MAX_PENDING: usize = 64;
/// Largest chunked message accepted (Pulsar's own default limit is far lower).
const MAX_TOTAL_SIZE: usize = 1 << 30;

struct Pending {
    next_chunk: i32,
    chunks: i32,
    total: usize,
    payload: BytesMut,
}

/// Collects the chunks of chunked messages, per topic partition.
#[derive(Default)]
pub struct ChunkAssembler {
    pending: HashMap<(String, String), Pending>,
}

impl std::fmt::Debug for ChunkAssembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkAssembler")
            .field("pending", &self.pending.len())
            .finish()
    }
}

/// Whether an entry is one chunk of a chunked message.
pub fn is_chunk(entry: &ParsedEntry) -> bool {
    entry.metadata.num_chunks_from_msg.unwrap_or(1) > 1
}

impl ChunkAssembler {
    /// Adds a chunk; returns the whole message (as one entry) after its last chunk.
    pub fn add(&mut self, entry: ParsedEntry) -> Result<Option<ParsedEntry>, String> {
        let meta = &entry.metadata;
        let uuid = meta
            .uuid
            .clone()
            .ok_or("chunk without a uuid".to_string())?;
        let key = (meta.producer_name.clone(), uuid);
        let chunks = meta.num_chunks_from_msg.unwrap_or(1);
        let chunk_id = meta.chunk_id.unwrap_or(-1);
        let total = usize::try_from(meta.total_chunk_msg_size.unwrap_or(-1))
            .map_err(|_| "chunk without a total size".to_string())?;
        if total > MAX_TOTAL_SIZE {
            return Err(format!(
                "chunked message of {total} bytes exceeds the limit"
            ));
        }
        if chunk_id == 0 {
            if self.pending.len() >= MAX_PENDING && !self.pending.contains_key(&key) {
                return Err(format!(
                    "more than {MAX_PENDING} chunked messages are incomplete at once"
                ));
            }
            self.pending.insert(
                key.clone(),
                Pending {
                    next_chunk: 0,
                    chunks,
                    total,
                    // Grown as chunks arrive: the total comes from the producer, and
                    // reserving it would let one small chunk claiming 1 GiB allocate that.
                    payload: BytesMut::with_capacity(entry.payload.len()),
                },
            );
        }
        let Some(pending) = self.pending.get_mut(&key) else {
            return Err(format!(
                "chunk {chunk_id} of message {} arrived without its first chunk",
                key.1
            ));
        };
        if chunk_id != pending.next_chunk || chunks != pending.chunks {
            let expected = pending.next_chunk;
            self.pending.remove(&key);
            return Err(format!(
                "chunk {chunk_id} of message {} where chunk {expected} was expected",
                key.1
            ));
        }
        if pending.payload.len() + entry.payload.len() > pending.total {
            self.pending.remove(&key);
            return Err(format!(
                "chunks of message {} exceed its total size {total}",
                key.1
            ));
        }
        pending.payload.extend_from_slice(&entry.payload);
        pending.next_chunk += 1;
        if pending.next_chunk < pending.chunks {
            return Ok(None);
        }
        let Some(done) = self.pending.remove(&key) else {
            return Ok(None);
        };
        if done.payload.len() != done.total {
            return Err(format!(
                "chunks of message {} hold {} bytes, its total size is {}",
                key.1,
                done.payload.len(),
                done.total
            ));
        }
        let mut metadata = entry.metadata;
        metadata.num_chunks_from_msg = None;
        metadata.chunk_id = None;
        metadata.total_chunk_msg_size = None;
        Ok(Some(ParsedEntry {
            broker_entry: entry.broker_entry,
            checksum_verified: entry.checksum_verified,
            metadata,
            payload: Bytes::from(done.payload),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulsar::proto::MessageMetadata;

    fn chunk(uuid: &str, id: i32, of: i32, total: i32, payload: &'static [u8]) -> ParsedEntry {
        ParsedEntry {
            broker_entry: None,
            checksum_verified: true,
            metadata: MessageMetadata {
                producer_name: "p".into(),
                uuid: Some(uuid.into()),
                chunk_id: Some(id),
                num_chunks_from_msg: Some(of),
                total_chunk_msg_size: Some(total),
                ..Default::default()
            },
            payload: Bytes::from_static(payload),
        }
    }

    #[test]
    fn interleaved_chunks_reassemble_in_order() {
        let mut a = ChunkAssembler::default();
        assert!(a.add(chunk("a", 0, 2, 6, b"abc")).expect("ok").is_none());
        assert!(a.add(chunk("b", 0, 2, 4, b"xy")).expect("ok").is_none());
        let whole = a
            .add(chunk("a", 1, 2, 6, b"def"))
            .expect("ok")
            .expect("done");
        assert_eq!(&whole.payload[..], b"abcdef");
        assert_eq!(whole.metadata.num_chunks_from_msg, None);
        let whole = a
            .add(chunk("b", 1, 2, 4, b"zw"))
            .expect("ok")
            .expect("done");
        assert_eq!(&whole.payload[..], b"xyzw");
    }

    #[test]
    fn missing_and_out_of_order_chunks_are_errors() {
        let mut a = ChunkAssembler::default();
        assert!(a.add(chunk("a", 1, 2, 6, b"def")).is_err());
        a.add(chunk("a", 0, 3, 6, b"ab")).expect("ok");
        assert!(a.add(chunk("a", 2, 3, 6, b"ef")).is_err());
        a.add(chunk("c", 0, 2, 3, b"ab")).expect("ok");
        assert!(
            a.add(chunk("c", 1, 2, 3, b"cd")).is_err(),
            "overruns its size"
        );
    }

    #[test]
    fn a_claimed_total_is_not_reserved_up_front() {
        let mut a = ChunkAssembler::default();
        a.add(chunk("big", 0, 2, 1 << 30, b"abc")).expect("ok");
        let reserved: usize = a.pending.values().map(|p| p.payload.capacity()).sum();
        assert!(
            reserved < 1 << 20,
            "{reserved} bytes reserved for a 3-byte chunk"
        );
    }
}
