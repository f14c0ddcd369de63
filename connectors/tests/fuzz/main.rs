//! Deterministic, bounded fuzzing of every parser of outside bytes in this crate: frames
//! and commands from the broker, stored entries and batches, the payload codecs, chunk
//! reassembly, offloaded index objects and data blocks (and a whole backfill from them),
//! the payload formats, and the schema registry's answers.
//!
//! Each target is a function of its input bytes (structured targets read their parameters
//! from the first bytes), so every case — a generated one or a saved one — is complete in
//! itself. A case fails on a panic (on any thread), on a broken property, or on an
//! allocation beyond the bound: 64 MiB + 2048 bytes per input byte for one request, and
//! 1 GiB + 64 KiB per input byte in all. The report names the target, the seed and the
//! input (hex); the input is saved for the corpus. Inputs that once failed live in
//! `tests/fuzz_corpus/<target>/` and are replayed before the generated cases.
//!
//! Seeds are fixed; `MAGNETAR_FUZZ_CASES=<per mille>` scales the case counts for a longer
//! local run (`MAGNETAR_FUZZ_CASES=20000` runs 20 times as many).
#![allow(unsafe_code)] // The counting global allocator (see `harness::Counting`).

mod avro_gen;
mod formats;
mod harness;
mod proto_gen;
mod pulsar;
mod rng;
mod schema;
mod tiered;

use harness::{Target, fuzz, fuzz_with_oracle};

#[global_allocator]
static ALLOCATOR: harness::Counting = harness::Counting;

const TARGETS: &[&Target] = &[
    &pulsar::FRAME,
    &pulsar::ENTRY,
    &pulsar::DECOMPRESS,
    &tiered::INDEX,
    &tiered::DATA_BLOCK,
    &tiered::BACKFILL,
    &tiered::CHUNKS,
    &formats::JSON,
    &formats::CSV,
    &formats::RAW,
    &formats::PRIMITIVE,
    &formats::AVRO,
    &formats::PROTOBUF,
    &formats::KEY_VALUE,
    &schema::SCHEMA_REST,
    &schema::SCHEMA_BINARY,
    &schema::AVRO_DEFINITION,
    &schema::PROTOBUF_DEFINITION,
];

#[test]
fn corpus_directories_name_targets_and_replay() {
    let _serial = harness::serial();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus");
    let listing = std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    for dir in listing.filter_map(|e| e.ok()) {
        let name = dir.file_name().to_string_lossy().into_owned();
        assert!(
            TARGETS.iter().any(|t| t.name == name),
            "tests/fuzz_corpus/{name} is not a fuzz target"
        );
    }
    for target in TARGETS {
        harness::replay(target);
    }
}

#[test]
fn the_harness_catches_panics_and_oversized_allocations() {
    let _serial = harness::serial();
    let panics = std::panic::catch_unwind(|| {
        harness::check_case("self-test", "panic", b"ab", usize::MAX, || panic!("boom"));
    });
    let text = panics
        .err()
        .and_then(|p| p.downcast_ref::<String>().cloned());
    assert!(
        text.as_deref()
            .is_some_and(|t| t.contains("panicked: boom") && t.contains("6162")),
        "{text:?}"
    );
    let big = std::panic::catch_unwind(|| {
        harness::check_case("self-test", "alloc", b"x", 1 << 20, || {
            let v = std::hint::black_box(Vec::<u8>::with_capacity(2 << 20));
            drop(v);
            Ok(())
        });
    });
    let text = big.err().and_then(|p| p.downcast_ref::<String>().cloned());
    assert!(
        text.as_deref()
            .is_some_and(|t| t.contains("allocated 2097152 bytes at once")),
        "{text:?}"
    );
    let thread = std::panic::catch_unwind(|| {
        harness::check_case("self-test", "thread", b"", usize::MAX, || {
            let _ = std::thread::spawn(|| panic!("in a thread")).join();
            Ok(())
        });
    });
    let text = thread
        .err()
        .and_then(|p| p.downcast_ref::<String>().cloned());
    assert!(
        text.as_deref()
            .is_some_and(|t| t.contains("a thread panicked")),
        "{text:?}"
    );
}

#[test]
fn fuzz_frames() {
    fuzz(&pulsar::FRAME, 0xF4A3_0001, 3000, pulsar::gen_frames);
}

#[test]
fn fuzz_entries() {
    fuzz_with_oracle(&pulsar::ENTRY, 0xF4A3_0002, 4000, |rng| {
        let (input, plan) = pulsar::gen_entry(rng);
        let oracle = plan.map(|plan| {
            let bytes = input.clone();
            Box::new(move || pulsar::entry_oracle(bytes, plan))
                as Box<dyn FnOnce() -> Result<(), String>>
        });
        (input, oracle)
    });
}

#[test]
fn fuzz_decompress() {
    fuzz_with_oracle(
        &pulsar::DECOMPRESS,
        0xF4A3_0003,
        3000,
        pulsar::gen_codec_case,
    );
}

#[test]
fn fuzz_index_objects() {
    fuzz(&tiered::INDEX, 0xF4A3_0004, 4000, tiered::gen_index);
}

#[test]
fn fuzz_data_blocks() {
    fuzz(
        &tiered::DATA_BLOCK,
        0xF4A3_0005,
        3000,
        tiered::gen_data_block,
    );
}

#[test]
fn fuzz_backfill() {
    fuzz(&tiered::BACKFILL, 0xF4A3_0006, 600, tiered::gen_backfill);
}

#[test]
fn fuzz_chunk_reassembly() {
    fuzz_with_oracle(&tiered::CHUNKS, 0xF4A3_0007, 600, tiered::gen_chunks);
}

#[test]
fn fuzz_json() {
    fuzz(&formats::JSON, 0xF4A3_0008, 600, formats::gen_json);
}

#[test]
fn fuzz_csv() {
    fuzz(&formats::CSV, 0xF4A3_0009, 600, formats::gen_csv);
}

#[test]
fn fuzz_raw() {
    fuzz(&formats::RAW, 0xF4A3_000A, 1000, formats::gen_raw);
}

#[test]
fn fuzz_primitive() {
    fuzz(
        &formats::PRIMITIVE,
        0xF4A3_000B,
        2000,
        formats::gen_primitive,
    );
}

#[test]
fn fuzz_avro() {
    fuzz(&formats::AVRO, 0xF4A3_000C, 600, formats::gen_avro);
}

#[test]
fn fuzz_protobuf() {
    fuzz(&formats::PROTOBUF, 0xF4A3_000D, 600, formats::gen_protobuf);
}

#[test]
fn fuzz_key_value() {
    fuzz(
        &formats::KEY_VALUE,
        0xF4A3_000E,
        600,
        formats::gen_key_value,
    );
}

#[test]
fn fuzz_schema_rest() {
    fuzz(
        &schema::SCHEMA_REST,
        0xF4A3_000F,
        600,
        schema::gen_schema_rest,
    );
}

#[test]
fn fuzz_schema_binary() {
    fuzz(
        &schema::SCHEMA_BINARY,
        0xF4A3_0010,
        600,
        schema::gen_schema_binary,
    );
}

#[test]
fn fuzz_avro_definitions() {
    fuzz(
        &schema::AVRO_DEFINITION,
        0xF4A3_0011,
        600,
        schema::gen_avro_definition,
    );
}

#[test]
fn fuzz_protobuf_definitions() {
    fuzz(
        &schema::PROTOBUF_DEFINITION,
        0xF4A3_0012,
        600,
        schema::gen_protobuf_definition,
    );
}
