//! Key groups (Flink's scheme): a key hashes to one of `max_parallelism` key groups, and each
//! instance of a keyed operator owns a contiguous range of them. State is kept and
//! checkpointed per key group, so a job restored at another parallelism hands whole key
//! groups to their new owners.
//!
//! The hash is MurmurHash3 (32-bit, seed 0), after casting the key columns to the key's
//! planned types: of the value's bytes for a key of one string or integer column (the common
//! case, without the cost of a row encoding), of the key's Arrow row encoding otherwise.
//! Stable across runs and processes, and the same for a row in an exchange and for the same
//! key in an operator's state (both hash with a hasher of the key's types).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, RecordBatch, UInt16Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::arrow::datatypes::{Int32Type, Int64Type, UInt32Type, UInt64Type};
use datafusion::arrow::row::{RowConverter, Rows, SortField};

use crate::error::{EngineError, Result};

/// The default number of key groups (Flink's `pipeline.max-parallelism` default).
pub const DEFAULT_MAX_PARALLELISM: u16 = 128;

/// The name of the column that tags each row of a keyed state snapshot with its key group.
pub const KEY_GROUP_COLUMN: &str = "__key_group";

/// One of a job's key groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyGroup(pub u16);

/// The key groups `start..=end` an instance owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyGroupRange {
    /// First key group.
    pub start: u16,
    /// Last key group (inclusive).
    pub end: u16,
}

impl KeyGroupRange {
    /// Every key group of a job with `max_parallelism` of them.
    pub fn all(max_parallelism: u16) -> Self {
        Self {
            start: 0,
            end: max_parallelism.saturating_sub(1),
        }
    }

    /// The range instance `index` of `parallelism` owns (Flink's
    /// `computeKeyGroupRangeForOperatorIndex`).
    pub fn of_instance(max_parallelism: u16, parallelism: usize, index: usize) -> Self {
        let max = usize::from(max_parallelism);
        let parallelism = parallelism.clamp(1, max.max(1));
        let start = (index * max).div_ceil(parallelism);
        let end = ((index + 1) * max).div_ceil(parallelism).saturating_sub(1);
        Self {
            start: start as u16,
            end: end as u16,
        }
    }

    /// Whether `group` is in the range.
    pub fn contains(&self, group: KeyGroup) -> bool {
        (self.start..=self.end).contains(&group.0)
    }

    /// Whether the two ranges share a key group.
    pub fn overlaps(&self, other: &KeyGroupRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

/// The instance of `parallelism` that owns `group` (Flink's
/// `computeOperatorIndexForKeyGroup`).
pub fn instance_of(group: KeyGroup, max_parallelism: u16, parallelism: usize) -> usize {
    usize::from(group.0) * parallelism / usize::from(max_parallelism).max(1)
}

/// Hashes keys to key groups.
#[derive(Debug)]
pub struct KeyHasher {
    types: Vec<DataType>,
    converter: RowConverter,
    max_parallelism: u16,
}

impl KeyHasher {
    /// A hasher of keys with these column types into `max_parallelism` key groups.
    pub fn new(types: Vec<DataType>, max_parallelism: u16) -> Result<Self> {
        let converter =
            RowConverter::new(types.iter().map(|t| SortField::new(t.clone())).collect())?;
        Ok(Self {
            types,
            converter,
            max_parallelism: max_parallelism.max(1),
        })
    }

    /// The number of key groups.
    pub fn max_parallelism(&self) -> u16 {
        self.max_parallelism
    }

    /// The key's row encoding: the bytes that are hashed.
    pub fn rows(&self, keys: &[ArrayRef]) -> Result<Rows> {
        if keys.len() != self.types.len() {
            return Err(EngineError::Internal(format!(
                "{} key column(s) where the key has {}",
                keys.len(),
                self.types.len()
            )));
        }
        let cast_keys = keys
            .iter()
            .zip(&self.types)
            .map(|(k, t)| {
                if k.data_type() == t {
                    Ok(k.clone())
                } else {
                    Ok(cast(k, t)?)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(self.converter.convert_columns(&cast_keys)?)
    }

    /// The key group of a row-encoded key.
    pub fn group_of_bytes(&self, bytes: &[u8]) -> KeyGroup {
        KeyGroup((murmur3_32(bytes) % u32::from(self.max_parallelism)) as u16)
    }

    /// The key group of each row of `keys`.
    pub fn groups(&self, keys: &[ArrayRef]) -> Result<Vec<KeyGroup>> {
        let max = u32::from(self.max_parallelism);
        if let [only] = keys
            && self.types.len() == 1
        {
            let key = if only.data_type() == &self.types[0] {
                only.clone()
            } else {
                cast(only, &self.types[0])?
            };
            if let Some(hashes) = value_hashes(&key) {
                return Ok(hashes
                    .into_iter()
                    .map(|h| KeyGroup((h % max) as u16))
                    .collect());
            }
        }
        let rows = self.rows(keys)?;
        Ok(rows
            .iter()
            .map(|r| self.group_of_bytes(r.as_ref()))
            .collect())
    }

    /// `batch` with a leading [`KEY_GROUP_COLUMN`] holding each row's key group, the keys
    /// being `keys` (one array per key column, in step with the batch's rows).
    pub fn tag(&self, batch: &RecordBatch, keys: &[ArrayRef]) -> Result<RecordBatch> {
        let groups = self.groups(keys)?;
        tag_with(batch, groups)
    }

    /// `batch` tagged with the key groups of the keys in `encoded` (row-encoded with this
    /// hasher's types).
    pub fn tag_encoded(&self, batch: &RecordBatch, encoded: &BinaryArray) -> Result<RecordBatch> {
        let parser = self.converter.parser();
        let keys = self
            .converter
            .convert_rows((0..encoded.len()).map(|i| parser.parse(encoded.value(i))))?;
        tag_with(batch, self.groups(&keys)?)
    }
}

/// The hash of each value of a one-column key, for the types hashed by value (strings,
/// binaries, 32- and 64-bit integers); `None` for other types.
fn value_hashes(key: &ArrayRef) -> Option<Vec<u32>> {
    /// What a NULL key hashes to (no value's bytes hash to it by construction of the input).
    const NULL: u32 = 0x5bd1_e995;
    let rows = key.len();
    let of = |valid: &dyn Fn(usize) -> bool, bytes: &dyn Fn(usize) -> u32| -> Vec<u32> {
        (0..rows)
            .map(|i| if valid(i) { bytes(i) } else { NULL })
            .collect()
    };
    let valid = |i: usize| key.is_valid(i);
    Some(match key.data_type() {
        DataType::Utf8 => {
            let a = key.as_string::<i32>();
            of(&valid, &|i| murmur3_32(a.value(i).as_bytes()))
        }
        DataType::LargeUtf8 => {
            let a = key.as_string::<i64>();
            of(&valid, &|i| murmur3_32(a.value(i).as_bytes()))
        }
        DataType::Utf8View => {
            let a = key.as_string_view();
            of(&valid, &|i| murmur3_32(a.value(i).as_bytes()))
        }
        DataType::Binary => {
            let a = key.as_binary::<i32>();
            of(&valid, &|i| murmur3_32(a.value(i)))
        }
        DataType::Int64 => {
            let a = key.as_primitive::<Int64Type>();
            of(&valid, &|i| murmur3_32(&a.value(i).to_le_bytes()))
        }
        DataType::Int32 => {
            let a = key.as_primitive::<Int32Type>();
            of(&valid, &|i| murmur3_32(&a.value(i).to_le_bytes()))
        }
        DataType::UInt64 => {
            let a = key.as_primitive::<UInt64Type>();
            of(&valid, &|i| murmur3_32(&a.value(i).to_le_bytes()))
        }
        DataType::UInt32 => {
            let a = key.as_primitive::<UInt32Type>();
            of(&valid, &|i| murmur3_32(&a.value(i).to_le_bytes()))
        }
        _ => return None,
    })
}

/// MurmurHash3's x86 32-bit hash with seed 0, over a slice (the hot path of every hash
/// exchange, so without the `Read` plumbing of a streaming hasher).
pub fn murmur3_32(bytes: &[u8]) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h: u32 = 0;
    let mut blocks = bytes.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k: u32 = 0;
        for (i, b) in tail.iter().enumerate() {
            k |= u32::from(*b) << (8 * i);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= bytes.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

fn tag_with(batch: &RecordBatch, groups: Vec<KeyGroup>) -> Result<RecordBatch> {
    let column: ArrayRef = Arc::new(UInt16Array::from(
        groups.into_iter().map(|g| g.0).collect::<Vec<_>>(),
    ));
    let mut fields = vec![Arc::new(Field::new(
        KEY_GROUP_COLUMN,
        DataType::UInt16,
        false,
    ))];
    fields.extend(batch.schema().fields().iter().cloned());
    let mut columns = vec![column];
    columns.extend(batch.columns().iter().cloned());
    Ok(RecordBatch::try_new(
        Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn ranges_cover_every_key_group_once_and_agree_with_instance_of() {
        for parallelism in 1..=7 {
            let mut next = 0u16;
            for index in 0..parallelism {
                let range = KeyGroupRange::of_instance(128, parallelism, index);
                assert_eq!(range.start, next, "p={parallelism} i={index}");
                for g in range.start..=range.end {
                    assert_eq!(instance_of(KeyGroup(g), 128, parallelism), index);
                }
                next = range.end + 1;
            }
            assert_eq!(next, 128);
        }
    }

    #[test]
    fn murmur3_matches_the_reference_implementation() {
        for text in [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "hello",
            "The quick brown fox jumps over the lazy dog",
        ] {
            let reference = murmur3::murmur3_32(&mut std::io::Cursor::new(text.as_bytes()), 0)
                .expect("murmur3");
            assert_eq!(murmur3_32(text.as_bytes()), reference, "{text:?}");
        }
        assert_eq!(murmur3_32(b"hello"), 0x248b_fa47);
    }

    #[test]
    fn equal_keys_hash_alike_whatever_their_physical_type() {
        let hasher = KeyHasher::new(vec![DataType::Utf8, DataType::Int64], 128).expect("hasher");
        let a: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["u1", "u2", "u1"])),
            Arc::new(Int64Array::from(vec![1, 2, 1])),
        ];
        let groups = hasher.groups(&a).expect("groups");
        assert_eq!(groups[0], groups[2]);
        // The same keys as another type (Utf8View, Int32) are cast to the planned types.
        let b: Vec<ArrayRef> = vec![
            Arc::new(datafusion::arrow::array::StringViewArray::from(vec!["u1"])),
            Arc::new(datafusion::arrow::array::Int32Array::from(vec![1])),
        ];
        assert_eq!(hasher.groups(&b).expect("groups")[0], groups[0]);
        // Spread: 1,000 keys land in most of the 128 groups.
        let keys: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                (0..1000).map(|i| format!("user-{i}")),
            )),
            Arc::new(Int64Array::from_iter_values(0..1000)),
        ];
        let mut seen = std::collections::HashSet::new();
        seen.extend(hasher.groups(&keys).expect("groups"));
        assert!(seen.len() > 120, "{} groups used", seen.len());
    }
}
