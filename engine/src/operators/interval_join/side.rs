//! One input's rows that may still meet a partner: kept in the Arrow batches they arrived
//! in (a row is a position in one), indexed by key and by event time, and freed when the
//! watermark shows no partner can come.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::interleave_record_batch;
use datafusion::arrow::datatypes::SchemaRef;

use crate::error::Result;

/// A row-encoded join key.
pub(super) type Key = Box<[u8]>;

/// Where a kept row is, and whether it has met a partner (for outer joins).
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    /// Index of its batch in [`Side::batches`].
    pub batch: u32,
    /// Its row in that batch.
    pub row: u32,
    /// Whether it was part of an emitted pair.
    pub matched: bool,
}

/// A row's place in time order: its event time, then its arrival.
pub(super) type TimeKey = (i64, u64);

struct Stored {
    batch: RecordBatch,
    live: usize,
}

/// The kept rows of one side.
pub(super) struct Side {
    schema: SchemaRef,
    batches: Vec<Option<Stored>>,
    by_key: HashMap<Key, BTreeMap<TimeKey, Slot>>,
    by_time: BTreeMap<TimeKey, Key>,
    next_seq: u64,
    /// Rows in `batches`, kept or not (what memory holds).
    held: usize,
    /// Bytes of `batches`, and of the indexes' keys, kept up to date (read at every
    /// watermark, so never summed over the rows).
    batch_bytes: usize,
    key_bytes: usize,
}

/// What one index entry of a key of `len` bytes costs, roughly (both maps).
fn entry_bytes(len: usize) -> usize {
    2 * (len + 48)
}

impl Side {
    /// An empty side of rows of `schema`.
    pub fn new(schema: SchemaRef) -> Self {
        Side {
            schema,
            batches: Vec::new(),
            by_key: HashMap::new(),
            by_time: BTreeMap::new(),
            next_seq: 0,
            held: 0,
            batch_bytes: 0,
            key_bytes: 0,
        }
    }

    /// Rows kept.
    pub fn len(&self) -> usize {
        self.by_time.len()
    }

    /// Keeps the rows `rows` of `batch`, each with its key, time and matched flag.
    pub fn insert(&mut self, batch: &RecordBatch, rows: &[(usize, Key, i64, bool)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let id = self.batches.len() as u32;
        // Only the kept rows' batch stays: the rest of the input batch is not held.
        let indices: Vec<(usize, usize)> = rows.iter().map(|(i, ..)| (0, *i)).collect();
        let kept = interleave_record_batch(&[batch], &indices)?;
        for (n, (_, key, ts, matched)) in rows.iter().enumerate() {
            let at = (*ts, self.next_seq);
            self.next_seq += 1;
            self.by_key.entry(key.clone()).or_default().insert(
                at,
                Slot {
                    batch: id,
                    row: n as u32,
                    matched: *matched,
                },
            );
            self.by_time.insert(at, key.clone());
            self.key_bytes += entry_bytes(key.len());
        }
        self.held += kept.num_rows();
        self.batch_bytes += kept.get_array_memory_size();
        self.batches.push(Some(Stored {
            live: rows.len(),
            batch: kept,
        }));
        Ok(())
    }

    /// The kept rows of `key` with times in `[from, to]`.
    pub fn range(&self, key: &[u8], from: i64, to: i64) -> impl Iterator<Item = (TimeKey, Slot)> {
        self.by_key.get(key).into_iter().flat_map(move |rows| {
            rows.range((Bound::Included((from, 0)), Bound::Included((to, u64::MAX))))
                .map(|(at, slot)| (*at, *slot))
        })
    }

    /// Marks the kept row of `key` at `at` as having met a partner.
    pub fn mark(&mut self, key: &[u8], at: TimeKey) {
        if let Some(slot) = self.by_key.get_mut(key).and_then(|r| r.get_mut(&at)) {
            slot.matched = true;
        }
    }

    /// The batch a slot points into.
    pub fn batch(&self, slot: &Slot) -> Option<&RecordBatch> {
        self.batches
            .get(slot.batch as usize)
            .and_then(|b| b.as_ref())
            .map(|b| &b.batch)
    }

    /// The rows at `slots`, as one batch.
    pub fn rows(&self, slots: &[Slot]) -> Result<RecordBatch> {
        let mut sources: Vec<&RecordBatch> = Vec::new();
        let mut index: HashMap<u32, usize> = HashMap::new();
        let mut picks = Vec::with_capacity(slots.len());
        for slot in slots {
            let Some(batch) = self.batch(slot) else {
                return Err(crate::error::EngineError::Internal(format!(
                    "a kept join row points into freed batch {}",
                    slot.batch
                )));
            };
            let at = *index.entry(slot.batch).or_insert_with(|| {
                sources.push(batch);
                sources.len() - 1
            });
            picks.push((at, slot.row as usize));
        }
        if sources.is_empty() {
            return Ok(RecordBatch::new_empty(self.schema.clone()));
        }
        Ok(interleave_record_batch(&sources, &picks)?)
    }

    /// Drops every row with a time at or before `up_to`; returns the unmatched ones among
    /// them (as a batch) when `unmatched` is asked for.
    pub fn expire(&mut self, up_to: i64, unmatched: bool) -> Result<Option<RecordBatch>> {
        let mut expired = Vec::new();
        while let Some(entry) = self.by_time.first_entry() {
            if entry.key().0 > up_to {
                break;
            }
            let (at, key) = entry.remove_entry();
            self.key_bytes = self.key_bytes.saturating_sub(entry_bytes(key.len()));
            let Some(rows) = self.by_key.get_mut(&key) else {
                continue;
            };
            if let Some(slot) = rows.remove(&at) {
                expired.push(slot);
            }
            if rows.is_empty() {
                self.by_key.remove(&key);
            }
        }
        if expired.is_empty() {
            return Ok(None);
        }
        let padded: Vec<Slot> = expired.iter().filter(|s| !s.matched).copied().collect();
        let out = if unmatched && !padded.is_empty() {
            Some(self.rows(&padded)?)
        } else {
            None
        };
        for slot in &expired {
            if let Some(entry) = self.batches.get_mut(slot.batch as usize) {
                let empty = entry.as_mut().is_some_and(|s| {
                    s.live -= 1;
                    s.live == 0
                });
                if empty && let Some(stored) = entry.take() {
                    self.held -= stored.batch.num_rows();
                    self.batch_bytes = self
                        .batch_bytes
                        .saturating_sub(stored.batch.get_array_memory_size());
                }
            }
        }
        self.compact()?;
        Ok(out)
    }

    /// Rewrites the kept rows into one batch once the batches hold far more rows than are
    /// kept (a few live rows pinning large batches).
    fn compact(&mut self) -> Result<()> {
        let live = self.len();
        if self.held <= 2 * live + 4096 {
            return Ok(());
        }
        let order: Vec<(TimeKey, Key)> =
            self.by_time.iter().map(|(t, k)| (*t, k.clone())).collect();
        let mut slots = Vec::with_capacity(order.len());
        for (at, key) in &order {
            if let Some(slot) = self.by_key.get(key).and_then(|r| r.get(at)) {
                slots.push(*slot);
            }
        }
        let batch = self.rows(&slots)?;
        for (n, (at, key)) in order.iter().enumerate() {
            if let Some(slot) = self.by_key.get_mut(key).and_then(|r| r.get_mut(at)) {
                slot.batch = 0;
                slot.row = n as u32;
            }
        }
        self.held = batch.num_rows();
        self.batch_bytes = batch.get_array_memory_size();
        self.batches = vec![Some(Stored {
            live: batch.num_rows(),
            batch,
        })];
        Ok(())
    }

    /// Every kept row in time order: the rows as one batch, with their matched flags.
    pub fn all(&self) -> Result<(RecordBatch, Vec<bool>)> {
        let mut slots = Vec::with_capacity(self.len());
        for (at, key) in &self.by_time {
            if let Some(slot) = self.by_key.get(key).and_then(|r| r.get(at)) {
                slots.push(*slot);
            }
        }
        let matched = slots.iter().map(|s| s.matched).collect();
        Ok((self.rows(&slots)?, matched))
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.batch_bytes + self.key_bytes
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(values: std::ops::Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(values))])
            .expect("batch")
    }

    #[test]
    fn rows_leave_by_time_and_memory_follows_them() {
        let schema = batch(0..1).schema();
        let mut side = Side::new(schema);
        let key: Key = Box::from(&b"k"[..]);
        // 100 batches of 1,000 rows; row i of batch b is at time i * 100 + b, so that every
        // batch holds rows of every time range.
        for b in 0..100 {
            let input = batch(b * 1000..(b + 1) * 1000);
            let rows: Vec<(usize, Key, i64, bool)> = (0..1000)
                .map(|i| (i, key.clone(), i as i64 * 100 + b, i % 2 == 0))
                .collect();
            side.insert(&input, &rows).expect("insert");
        }
        assert_eq!(side.len(), 100_000);
        assert_eq!(side.range(b"k", 500, 509).count(), 10);
        assert_eq!(side.range(b"other", 0, i64::MAX).count(), 0);
        // Expiring returns the unmatched rows among those that leave.
        let padded = side.expire(49_999, true).expect("expire").expect("rows");
        assert_eq!(padded.num_rows(), 25_000);
        assert_eq!(side.len(), 50_000);
        assert_eq!(side.range(b"k", 0, 49_999).count(), 0);
        // Ten rows left in each batch: the batches are rewritten into one of the kept rows.
        let before = side.bytes();
        assert!(side.expire(98_999, false).expect("expire").is_none());
        assert_eq!(side.len(), 1_000);
        assert_eq!(side.held, 1_000);
        assert!(side.bytes() < before / 10, "{} of {before}", side.bytes());
        let (rows, matched) = side.all().expect("all");
        assert_eq!(rows.num_rows(), 1_000);
        assert_eq!(matched.iter().filter(|m| **m).count(), 500);
        // In time order: time 99_000 is row 990 of batch 0, value 990.
        let values = rows
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("i64");
        assert_eq!(values.value(0), 990);
        assert_eq!(values.value(1), 1990);
        // Marking finds a kept row by its key and time, after the rewrite too.
        let (at, _) = side.range(b"k", 99_001, 99_001).next().expect("row");
        side.mark(b"k", at);
        let (_, slot) = side.range(b"k", 99_001, 99_001).next().expect("row");
        assert!(slot.matched);
        let row = side.rows(&[slot]).expect("rows");
        let value = row
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("i64");
        assert_eq!(value.value(0), 1990);
    }
}
