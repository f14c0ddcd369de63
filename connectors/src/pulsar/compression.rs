//! Pulsar's payload codecs (the `compression` field of `MessageMetadata`): inflating what
//! sources read, and the codec sinks write with.

use pulsar::proto::CompressionType;

/// The codec a sink compresses payloads with: Flink's `pulsar.producer.compressionType`,
/// by the Java client's `CompressionType` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PayloadCodec {
    /// Payloads as they are.
    #[default]
    None,
    /// A raw LZ4 block.
    Lz4,
    /// Deflate (zlib).
    Zlib,
    /// Zstandard.
    Zstd,
}

impl PayloadCodec {
    /// The Java names of the codecs a sink writes. Not `SNAPPY`: pulsar-rs writes Snappy's
    /// framed format, which the Java and C++ clients (raw Snappy) cannot read.
    pub const NAMES: &'static [&'static str] = &["NONE", "LZ4", "ZLIB", "ZSTD"];

    /// The codec of a Java name (any case).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_uppercase().as_str() {
            "NONE" => Self::None,
            "LZ4" => Self::Lz4,
            "ZLIB" => Self::Zlib,
            "ZSTD" => Self::Zstd,
            _ => return None,
        })
    }

    /// The producer's compression setting (pulsar-rs compresses each message or batch).
    pub(crate) fn producer_compression(self) -> Option<pulsar::compression::Compression> {
        use pulsar::compression::{Compression, CompressionLz4, CompressionZlib, CompressionZstd};
        match self {
            Self::None => None,
            Self::Lz4 => Some(Compression::Lz4(CompressionLz4::default())),
            Self::Zlib => Some(Compression::Zlib(CompressionZlib::default())),
            Self::Zstd => Some(Compression::Zstd(CompressionZstd::default())),
        }
    }
}

/// Largest payload we agree to inflate; a corrupt `uncompressed_size` must not exhaust memory.
const MAX_UNCOMPRESSED_SIZE: usize = 1 << 30;

/// Inflates a payload compressed with `codec` to exactly `uncompressed_size` bytes.
pub fn decompress(
    codec: CompressionType,
    input: &[u8],
    uncompressed_size: usize,
) -> Result<Vec<u8>, String> {
    if uncompressed_size > MAX_UNCOMPRESSED_SIZE {
        return Err(format!(
            "uncompressed size {uncompressed_size} exceeds the {MAX_UNCOMPRESSED_SIZE}-byte limit"
        ));
    }
    // The size comes from the producer; no codec inflates beyond its largest ratio, so a size
    // above that is a lie, refused before anything is reserved for it.
    let most = input
        .len()
        .saturating_mul(max_ratio(codec))
        .saturating_add(1024);
    if uncompressed_size > most {
        return Err(format!(
            "{codec:?} payload of {} bytes claims {uncompressed_size} bytes uncompressed, more than the codec can inflate to",
            input.len()
        ));
    }
    let out = match codec {
        CompressionType::None => input.to_vec(),
        // A raw LZ4 block, no frame and no size prefix.
        CompressionType::Lz4 => lz4_flex::block::decompress(input, uncompressed_size)
            .map_err(|e| format!("LZ4: {e}"))?,
        // Java's Deflater with SYNC_FLUSH and no finish(): no final block, no Adler-32 trailer.
        CompressionType::Zlib => inflate_sync_flushed(input, uncompressed_size)?,
        CompressionType::Zstd => inflate_zstd(input, uncompressed_size)?,
        // Snappy's own length header sizes its buffer: it must agree with the metadata.
        CompressionType::Snappy => match snap::raw::decompress_len(input) {
            Ok(n) if n != uncompressed_size => {
                return Err(format!(
                    "SNAPPY: the payload says {n} bytes, metadata says {uncompressed_size}"
                ));
            }
            Err(e) => return Err(format!("SNAPPY: {e}")),
            Ok(_) => snap::raw::Decoder::new().decompress_vec(input),
        }
        .map_err(|e| format!("SNAPPY: {e}"))?,
    };
    if out.len() != uncompressed_size && codec != CompressionType::None {
        // Zstandard stops one byte past the claimed size.
        let inflated = if out.len() > uncompressed_size {
            format!("more than {uncompressed_size}")
        } else {
            out.len().to_string()
        };
        return Err(format!(
            "{codec:?} payload inflated to {inflated} bytes, metadata says {uncompressed_size}"
        ));
    }
    Ok(out)
}

/// The most a codec's output can exceed its input, with room to spare: LZ4 255:1, deflate
/// 1032:1, Snappy about 21:1; Zstandard's RLE blocks reach about 32768:1.
pub fn max_ratio(codec: CompressionType) -> usize {
    match codec {
        CompressionType::None => 1,
        CompressionType::Lz4 => 256,
        CompressionType::Zlib => 1100,
        CompressionType::Snappy => 32,
        CompressionType::Zstd => 32_768,
    }
}

/// Zstandard into a buffer that grows with what actually inflates: its 32768:1 ratio lets
/// a few kilobytes claim (and, reserved up front, allocate) up to the 1 GiB limit.
fn inflate_zstd(input: &[u8], uncompressed_size: usize) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let decoder =
        zstd::stream::read::Decoder::with_buffer(input).map_err(|e| format!("ZSTD: {e}"))?;
    // Room for an ordinary ratio; a payload that inflates further grows the buffer.
    let initial = uncompressed_size.min(input.len().saturating_mul(16).saturating_add(4096));
    let mut out = Vec::with_capacity(initial);
    // One byte more than claimed, so that a payload inflating further is seen (and refused).
    decoder
        .take(uncompressed_size as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("ZSTD: {e}"))?;
    Ok(out)
}

fn inflate_sync_flushed(input: &[u8], uncompressed_size: usize) -> Result<Vec<u8>, String> {
    let mut inflater = flate2::Decompress::new(true);
    let mut out = Vec::with_capacity(uncompressed_size);
    inflater
        .decompress_vec(input, &mut out, flate2::FlushDecompress::Sync)
        .map_err(|e| format!("ZLIB: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sample() -> Vec<u8> {
        (0..10_000u32)
            .flat_map(|i| format!("{{\"n\":{}}}", i % 97).into_bytes())
            .collect()
    }

    #[test]
    fn a_claimed_size_beyond_the_codecs_ratio_is_refused_before_allocating() {
        let tiny = [0u8; 16];
        for codec in [
            CompressionType::Lz4,
            CompressionType::Zlib,
            CompressionType::Zstd,
            CompressionType::Snappy,
        ] {
            let err = decompress(codec, &tiny, 900 << 20).expect_err("a lie");
            assert!(
                err.contains("more than the codec can inflate to"),
                "{codec:?}: {err}"
            );
        }
        // Snappy's own header must agree with the metadata.
        let packed = snap::raw::Encoder::new()
            .compress_vec(&sample())
            .expect("snappy");
        let err = decompress(CompressionType::Snappy, &packed, 100).expect_err("disagrees");
        assert!(err.contains("metadata says 100"), "{err}");
    }

    #[test]
    fn lz4_raw_block_round_trips() {
        let data = sample();
        let packed = lz4_flex::block::compress(&data);
        assert_eq!(
            decompress(CompressionType::Lz4, &packed, data.len()).expect("lz4"),
            data
        );
    }

    #[test]
    fn zlib_without_trailer_inflates() {
        let data = sample();
        // Deflate and sync-flush but never finish, as Java's Deflater does for Pulsar.
        let mut deflater = flate2::Compress::new(flate2::Compression::default(), true);
        let mut packed = Vec::with_capacity(data.len() + 64);
        deflater
            .compress_vec(&data, &mut packed, flate2::FlushCompress::Sync)
            .expect("deflate");
        assert_eq!(
            decompress(CompressionType::Zlib, &packed, data.len()).expect("zlib"),
            data
        );
        // A finished stream (with trailer) must inflate as well.
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&data).expect("write");
        let finished = enc.finish().expect("finish");
        assert_eq!(
            decompress(CompressionType::Zlib, &finished, data.len()).expect("zlib"),
            data
        );
    }

    #[test]
    fn zstd_and_snappy_round_trip() {
        let data = sample();
        let z = zstd::bulk::compress(&data, 3).expect("zstd");
        assert_eq!(
            decompress(CompressionType::Zstd, &z, data.len()).expect("zstd"),
            data
        );
        let s = snap::raw::Encoder::new()
            .compress_vec(&data)
            .expect("snappy");
        assert_eq!(
            decompress(CompressionType::Snappy, &s, data.len()).expect("snappy"),
            data
        );
    }

    #[test]
    fn zstd_that_inflates_past_its_claimed_size_is_refused() {
        let data = vec![7u8; 1 << 20];
        let z = zstd::bulk::compress(&data, 3).expect("zstd");
        let err = decompress(CompressionType::Zstd, &z, 1000).expect_err("claims too little");
        assert!(err.contains("more than 1000"), "{err}");
        let err = decompress(CompressionType::Zstd, &z, (1 << 20) + 1).expect_err("too much");
        assert!(
            err.contains(&format!("inflated to {} bytes", 1 << 20)),
            "{err}"
        );
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let junk = vec![0xffu8; 64];
        for codec in [
            CompressionType::Lz4,
            CompressionType::Zlib,
            CompressionType::Zstd,
            CompressionType::Snappy,
        ] {
            assert!(decompress(codec, &junk, 1000).is_err(), "{codec:?}");
        }
        assert!(decompress(CompressionType::Lz4, &junk, usize::MAX).is_err());
    }
}
