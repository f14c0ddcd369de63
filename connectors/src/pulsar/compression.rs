//! Pulsar's payload codecs (the `compression` field of `MessageMetadata`).

use pulsar::proto::CompressionType;

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
    let out = match codec {
        CompressionType::None => input.to_vec(),
        // A raw LZ4 block, no frame and no size prefix.
        CompressionType::Lz4 => lz4_flex::block::decompress(input, uncompressed_size)
            .map_err(|e| format!("LZ4: {e}"))?,
        // Java's Deflater with SYNC_FLUSH and no finish(): no final block, no Adler-32 trailer.
        CompressionType::Zlib => inflate_sync_flushed(input, uncompressed_size)?,
        CompressionType::Zstd => {
            zstd::bulk::decompress(input, uncompressed_size).map_err(|e| format!("ZSTD: {e}"))?
        }
        CompressionType::Snappy => snap::raw::Decoder::new()
            .decompress_vec(input)
            .map_err(|e| format!("SNAPPY: {e}"))?,
    };
    if out.len() != uncompressed_size && codec != CompressionType::None {
        return Err(format!(
            "{codec:?} payload inflated to {} bytes, metadata says {uncompressed_size}",
            out.len()
        ));
    }
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
