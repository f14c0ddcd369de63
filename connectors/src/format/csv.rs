//! The `csv` format: one record per message (or file line), no header.

use arrow::csv::reader::{Decoder, ReaderBuilder};
use arrow::csv::writer::WriterBuilder;
use std::sync::Arc;

use arrow::array::UInt32Array;
use arrow::compute::{CastOptions, cast_with_options, concat_batches, take_record_batch};
use arrow::record_batch::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{DecodedRows, PayloadDecoder, PayloadEncoder};
use crate::error::Result;
use crate::pulsar::ReceivedMessage;

/// Decodes CSV records a chunk at a time; on a failure, record by record to name the
/// culprits (as the JSON decoder does). Leniently (Flink's `csv.ignore-parse-errors`), a
/// field that does not parse becomes NULL and only a record with the wrong number of fields
/// is skipped.
pub struct CsvDecoder {
    schema: SchemaRef,
    delimiter: u8,
    lenient: bool,
    /// A decoder for chunks of this many records, kept between chunks (building one costs).
    cached: Option<(usize, Decoder)>,
    /// Whether a column holds a DECIMAL: then over-long numbers are refused before decoding.
    decimals: bool,
}

impl std::fmt::Debug for CsvDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvDecoder")
            .field("schema", &self.schema)
            .finish()
    }
}

impl CsvDecoder {
    /// A decoder producing rows of `schema`; `lenient` turns unparsable fields into NULLs.
    pub fn new(schema: SchemaRef, delimiter: u8, lenient: bool) -> Self {
        let decimals = schema
            .fields()
            .iter()
            .any(|f| super::decimal_text::has_decimal(f.data_type()));
        Self {
            schema,
            delimiter,
            lenient,
            cached: None,
            decimals,
        }
    }

    fn build(&self, rows: usize) -> Decoder {
        self.build_for(self.schema.clone(), rows)
    }

    fn build_for(&self, schema: SchemaRef, rows: usize) -> Decoder {
        ReaderBuilder::new(schema)
            .with_header(false)
            .with_delimiter(self.delimiter)
            .with_batch_size(rows.max(1))
            .build_decoder()
    }

    /// Feeds a whole chunk in one call, which costs far less per record than one call each.
    ///
    /// Only for one-line, non-empty payloads: then each added newline ends a record unless a
    /// quote left open swallows it, so the record count equals the message count exactly when
    /// every record is its own message. `false` (decoder unusable) when that does not hold.
    fn feed_joined(decoder: &mut Decoder, messages: &[ReceivedMessage], decimals: bool) -> bool {
        if messages.iter().any(|m| {
            m.payload.is_empty()
                || memchr::memchr2(b'\n', b'\r', &m.payload).is_some()
                || (decimals && super::decimal_text::unreadable_number(&m.payload).is_some())
        }) {
            return false;
        }
        let mut joined =
            Vec::with_capacity(messages.iter().map(|m| m.payload.len() + 1).sum::<usize>());
        for m in messages {
            joined.extend_from_slice(&m.payload);
            joined.push(b'\n');
        }
        let before = decoder.capacity();
        let mut offset = 0;
        while offset < joined.len() {
            match decoder.decode(&joined[offset..]) {
                Ok(0) | Err(_) => return false,
                Ok(n) => offset += n,
            }
        }
        before - decoder.capacity() == messages.len()
    }

    /// Feeds one record (a trailing newline is added when missing).
    fn feed(
        decoder: &mut Decoder,
        payload: &[u8],
        decimals: bool,
    ) -> std::result::Result<(), String> {
        if decimals && let Some(why) = super::decimal_text::unreadable_number(payload) {
            return Err(why);
        }
        let before = decoder.capacity();
        let mut consumed = decoder.decode(payload).map_err(|e| e.to_string())?;
        let mut fed = payload.len();
        if payload.last() != Some(&b'\n') {
            consumed += decoder.decode(b"\n").map_err(|e| e.to_string())?;
            fed += 1;
        }
        if consumed != fed {
            return Err("more than one CSV record in one message".into());
        }
        match before - decoder.capacity() {
            1 => Ok(()),
            0 => Err("empty record".into()),
            n => Err(format!("{n} CSV records in one message, expected one")),
        }
    }
}

impl PayloadDecoder for CsvDecoder {
    fn decode(&mut self, messages: &[ReceivedMessage]) -> Result<DecodedRows> {
        let mut decoder = match self.cached.take() {
            Some((size, decoder)) if size == messages.len() => decoder,
            _ => self.build(messages.len()),
        };
        let mut rows = Vec::with_capacity(messages.len());
        let mut clean = true;
        if Self::feed_joined(&mut decoder, messages, self.decimals) {
            rows.extend(0..messages.len());
        } else {
            decoder = self.build(messages.len());
            for (i, m) in messages.iter().enumerate() {
                if Self::feed(&mut decoder, &m.payload, self.decimals).is_err() {
                    clean = false;
                    break;
                }
                rows.push(i);
            }
        }
        if clean
            && let Ok(batch) = decoder.flush()
            && batch.as_ref().map_or(0, RecordBatch::num_rows) == rows.len()
        {
            // Flushed, the decoder is empty again and can take the next chunk.
            self.cached = Some((messages.len(), decoder));
            let batch = batch.unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone()));
            return Ok(DecodedRows {
                batch,
                rows,
                errors: Vec::new(),
            });
        }
        // Slow path: find the records that fail alone, decode the others together.
        let mut good = Vec::new();
        let mut errors = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let mut single = self.build(1);
            let outcome = Self::feed(&mut single, &m.payload, self.decimals)
                .and_then(|()| single.flush().map(|_| ()).map_err(|e| e.to_string()));
            match outcome {
                Ok(()) => good.push(i),
                Err(reason) => errors.push((i, reason)),
            }
        }
        let mut decoder = self.build(good.len());
        for &i in &good {
            Self::feed(&mut decoder, &messages[i].payload, self.decimals).map_err(|reason| {
                crate::error::ConnectorError::Decode {
                    topic: messages[i].topic.to_string(),
                    id: messages[i].id,
                    format: "csv",
                    reason,
                }
            })?;
        }
        let batch = decoder
            .flush()?
            .unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone()));
        if !self.lenient || errors.is_empty() {
            return Ok(DecodedRows {
                batch,
                rows: good,
                errors,
            });
        }
        // Lenient: read failing records as text and cast each field, NULL where it fails.
        let mut pieces = vec![batch];
        let mut order: Vec<usize> = good;
        let mut skipped = Vec::new();
        for (i, reason) in errors {
            match self.lenient_record(&messages[i].payload) {
                Some(row) => {
                    pieces.push(row);
                    order.push(i);
                }
                None => skipped.push((i, reason)),
            }
        }
        let all = concat_batches(&self.schema, &pieces)?;
        // Back into message order.
        let mut positions: Vec<u32> = (0..order.len() as u32).collect();
        positions.sort_by_key(|&p| order[p as usize]);
        let batch = take_record_batch(&all, &UInt32Array::from(positions.clone()))?;
        let rows = positions.iter().map(|&p| order[p as usize]).collect();
        Ok(DecodedRows {
            batch,
            rows,
            errors: skipped,
        })
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

impl CsvDecoder {
    /// One record with unparsable fields as NULLs; `None` when it has the wrong shape.
    fn lenient_record(&self, payload: &[u8]) -> Option<RecordBatch> {
        // The cast to DECIMAL below parses text as the decoder does.
        if self.decimals && super::decimal_text::unreadable_number(payload).is_some() {
            return None;
        }
        let text = Arc::new(Schema::new(
            self.schema
                .fields()
                .iter()
                .map(|f| Field::new(f.name(), DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let mut decoder = self.build_for(text, 1);
        Self::feed(&mut decoder, payload, false).ok()?;
        let strings = decoder.flush().ok()??;
        let safe = CastOptions {
            safe: true,
            ..Default::default()
        };
        let columns = strings
            .columns()
            .iter()
            .zip(self.schema.fields())
            .map(|(c, f)| cast_with_options(c, f.data_type(), &safe))
            .collect::<std::result::Result<Vec<_>, _>>()
            .ok()?;
        RecordBatch::try_new(self.schema.clone(), columns).ok()
    }
}

/// Encodes rows as CSV records, one per message, without a header.
#[derive(Debug)]
pub struct CsvEncoder {
    delimiter: u8,
}

impl CsvEncoder {
    /// An encoder with `delimiter`.
    pub fn new(delimiter: u8) -> Self {
        Self { delimiter }
    }
}

impl PayloadEncoder for CsvEncoder {
    fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
        let mut rows = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            let mut buffer = Vec::new();
            let mut writer = WriterBuilder::new()
                .with_header(false)
                .with_delimiter(self.delimiter)
                .build(&mut buffer);
            writer.write(&batch.slice(i, 1))?;
            drop(writer);
            if buffer.last() == Some(&b'\n') {
                buffer.pop();
            }
            rows.push(buffer);
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message_id::MessageId;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int64Type;
    use arrow_schema::{DataType, Field, Schema};
    use bytes::Bytes;
    use std::sync::Arc;

    fn message(i: u64, payload: &str) -> ReceivedMessage {
        ReceivedMessage::local(
            MessageId::new(0, i, -1),
            Arc::from("file.csv"),
            Arc::from(""),
            Bytes::copy_from_slice(payload.as_bytes()),
        )
    }

    #[test]
    fn decodes_and_names_bad_records() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let mut d = CsvDecoder::new(schema, b',', false);
        let msgs = vec![
            message(0, "a,1"),
            message(1, "\"b,c\",2"),
            message(2, "x,not-a-number"),
            message(3, "d,4"),
        ];
        let out = d.decode(&msgs).expect("decode");
        assert_eq!(out.rows, vec![0, 1, 3]);
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].0, 2);
        let n = out.batch.column(1).as_primitive::<Int64Type>();
        assert_eq!(n.values().to_vec(), vec![1, 2, 4]);
        assert_eq!(out.batch.column(0).as_string::<i32>().value(1), "b,c");
        let encoded = CsvEncoder::new(b',').encode(&out.batch).expect("encode");
        assert_eq!(encoded[1], b"\"b,c\",2");
    }

    #[test]
    fn leniently_an_unparsable_field_is_null_and_a_misshapen_record_is_skipped() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let mut d = CsvDecoder::new(schema, b',', true);
        let msgs = vec![
            message(0, "a,1"),
            message(1, "x,not-a-number"),
            message(2, "only-one-field"),
            message(3, "d,4"),
        ];
        let out = d.decode(&msgs).expect("decode");
        assert_eq!(out.rows, vec![0, 1, 3], "rows in message order");
        assert_eq!(out.errors.iter().map(|e| e.0).collect::<Vec<_>>(), vec![2]);
        let s = out.batch.column(0).as_string::<i32>();
        assert_eq!((s.value(0), s.value(1), s.value(2)), ("a", "x", "d"));
        let n = out.batch.column(1).as_primitive::<Int64Type>();
        assert_eq!(
            (0..3)
                .map(|i| n.is_valid(i).then(|| n.value(i)))
                .collect::<Vec<_>>(),
            vec![Some(1), None, Some(4)]
        );
    }
}
