//! The `json` format: one JSON object per message, decoded with arrow-json's tape decoder.

use arrow::record_batch::RecordBatch;
use arrow_json::reader::{Decoder, ReaderBuilder};
use arrow_json::writer::{LineDelimitedWriter, WriterBuilder};
use arrow_schema::SchemaRef;

use super::{DecodedRows, JsonOptions, PayloadDecoder, PayloadEncoder};
use crate::error::Result;
use crate::pulsar::ReceivedMessage;

/// Messages that decode alone (indices), and those that do not, with the reason.
type Isolated = (Vec<usize>, Vec<(usize, String)>);

/// Decodes JSON payloads a chunk at a time.
///
/// The fast path feeds every payload to one decoder and flushes once. Only when that fails
/// does it go message by message, to name the culprits and keep the rest.
pub struct JsonDecoder {
    schema: SchemaRef,
    options: JsonOptions,
    decoder: Decoder,
    /// Rows the decoder holds before it stops reading; at least the chunk (part) size.
    capacity: usize,
    /// Most rows per decoder for this schema's width (see [`TAPE_CELLS`]).
    max_rows: usize,
    /// Top-level integer columns: a number with a fraction there is refused, not truncated.
    integer_fields: Vec<String>,
    /// Whether a column holds a DECIMAL: then over-long numbers are refused before decoding.
    decimals: bool,
}

const TOMBSTONE: &str = "null value (tombstone) where a JSON object was expected";

/// Initial row capacity of the shared decoder; it grows for larger chunks.
const INITIAL_CAPACITY: usize = 4096;

/// Rows times (flattened) fields one decoder holds at most. arrow-json reserves about 32
/// bytes per row and field up front, so a wide schema gets fewer rows per decoder (a chunk
/// is then decoded in parts) rather than hundreds of megabytes before the first message.
const TAPE_CELLS: usize = 512 * 1024;

impl std::fmt::Debug for JsonDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonDecoder")
            .field("schema", &self.schema)
            .finish()
    }
}

impl JsonDecoder {
    /// A decoder producing rows of `schema`.
    pub fn new(schema: SchemaRef, options: JsonOptions) -> Result<Self> {
        let max_rows = (TAPE_CELLS / schema.flattened_fields().len().max(1)).max(1);
        let capacity = INITIAL_CAPACITY.min(max_rows);
        let decoder = build(&schema, options, capacity)?;
        let integer_fields = schema
            .fields()
            .iter()
            .filter(|f| f.data_type().is_integer())
            .map(|f| f.name().clone())
            .collect();
        let decimals = schema
            .fields()
            .iter()
            .any(|f| super::decimal_text::has_decimal(f.data_type()));
        Ok(Self {
            schema,
            options,
            decoder,
            capacity,
            max_rows,
            integer_fields,
            decimals,
        })
    }

    /// Feeds one payload; it must hold exactly one JSON object.
    fn feed(
        decoder: &mut Decoder,
        payload: &[u8],
        integer_fields: &[String],
        decimals: bool,
    ) -> std::result::Result<(), String> {
        if decimals && let Some(why) = super::decimal_text::unreadable_number(payload) {
            return Err(why);
        }
        if !integer_fields.is_empty()
            && let Some(f) = super::json_integers::fractional_integer(payload, integer_fields)
        {
            return Err(format!(
                "field '{}': {} is not an integer its column can hold exactly (it has a fraction, or more digits than its notation keeps)",
                f.field, f.number
            ));
        }
        let before = decoder.len();
        let consumed = decoder.decode(payload).map_err(|e| e.to_string())?;
        if consumed != payload.len() {
            return Err("trailing bytes after the JSON value".into());
        }
        if decoder.has_partial_record() {
            return Err("incomplete JSON value".into());
        }
        match decoder.len() - before {
            1 => Ok(()),
            0 => Err("empty payload, expected a JSON object".into()),
            n => Err(format!(
                "{n} JSON values in one message, expected one object"
            )),
        }
    }

    /// Decodes `indices` of `messages` one at a time, to find which fail.
    fn isolate(&self, messages: &[ReceivedMessage], indices: &[usize]) -> Result<Isolated> {
        let mut good = Vec::with_capacity(indices.len());
        let mut errors = Vec::new();
        for &i in indices {
            let mut single = build(&self.schema, self.options, 1)?;
            let outcome = Self::feed(
                &mut single,
                &messages[i].payload,
                &self.integer_fields,
                self.decimals,
            )
            .and_then(|()| single.flush().map(|_| ()).map_err(|e| e.to_string()));
            match outcome {
                Ok(()) => good.push(i),
                Err(reason) => errors.push((i, reason)),
            }
        }
        Ok((good, errors))
    }
}

fn build(schema: &SchemaRef, options: JsonOptions, batch_size: usize) -> Result<Decoder> {
    Ok(ReaderBuilder::new(schema.clone())
        .with_batch_size(batch_size)
        .with_ignore_type_conflicts(options.ignore_parse_errors)
        .build_decoder()?)
}

impl PayloadDecoder for JsonDecoder {
    fn decode(&mut self, messages: &[ReceivedMessage]) -> Result<DecodedRows> {
        if messages.len() <= self.max_rows {
            return self.decode_part(messages);
        }
        let mut batches = Vec::new();
        let mut rows = Vec::with_capacity(messages.len());
        let mut errors = Vec::new();
        for (n, part) in messages.chunks(self.max_rows).enumerate() {
            let base = n * self.max_rows;
            let out = self.decode_part(part)?;
            rows.extend(out.rows.iter().map(|r| r + base));
            errors.extend(out.errors.into_iter().map(|(i, e)| (i + base, e)));
            batches.push(out.batch);
        }
        Ok(DecodedRows {
            batch: arrow::compute::concat_batches(&self.schema, &batches)?,
            rows,
            errors,
        })
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

impl JsonDecoder {
    /// Decodes at most `max_rows` messages with the shared decoder.
    fn decode_part(&mut self, messages: &[ReceivedMessage]) -> Result<DecodedRows> {
        if messages.len() > self.capacity {
            self.capacity = messages.len().next_power_of_two().min(self.max_rows);
            self.decoder = build(&self.schema, self.options, self.capacity)?;
        }
        let mut rows = Vec::with_capacity(messages.len());
        let mut errors = Vec::new();
        let mut clean = true;
        for (i, m) in messages.iter().enumerate() {
            if m.null_value {
                errors.push((i, TOMBSTONE.into()));
                continue;
            }
            match Self::feed(
                &mut self.decoder,
                &m.payload,
                &self.integer_fields,
                self.decimals,
            ) {
                Ok(()) => rows.push(i),
                Err(reason) => {
                    errors.push((i, reason));
                    clean = false;
                    break;
                }
            }
        }
        if clean && let Ok(batch) = self.decoder.flush() {
            let batch = batch.unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone()));
            return Ok(DecodedRows {
                batch,
                rows,
                errors,
            });
        }
        // Slow path: a message broke the shared decoder. Start over one message at a time.
        self.decoder = build(&self.schema, self.options, self.capacity)?;
        let candidates: Vec<usize> = (0..messages.len())
            .filter(|i| !messages[*i].null_value)
            .collect();
        let (good, mut bad) = self.isolate(messages, &candidates)?;
        // Every tombstone, also those after the message that ended the fast path.
        errors = (0..messages.len())
            .filter(|i| messages[*i].null_value)
            .map(|i| (i, TOMBSTONE.to_string()))
            .collect();
        errors.append(&mut bad);
        errors.sort_by_key(|(i, _)| *i);
        for &i in &good {
            // These decoded alone, so they decode together.
            Self::feed(
                &mut self.decoder,
                &messages[i].payload,
                &self.integer_fields,
                self.decimals,
            )
            .map_err(|reason| crate::error::ConnectorError::Decode {
                topic: messages[i].topic.to_string(),
                id: messages[i].id,
                format: "json",
                reason,
            })?;
        }
        let batch = self
            .decoder
            .flush()?
            .unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone()));
        Ok(DecodedRows {
            batch,
            rows: good,
            errors,
        })
    }
}

/// Encodes rows as JSON objects, one per message; NULLs are written as `null`.
#[derive(Debug, Default)]
pub struct JsonEncoder {
    buffer: Vec<u8>,
    /// The Avro record schema describing the objects, as Pulsar's JSON schema holds it.
    avro_schema: Option<String>,
}

impl JsonEncoder {
    /// A new encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Announces the columns' Avro record schema as the producer's JSON schema (when the
    /// columns have one).
    pub fn with_schema(mut self, schema: &arrow_schema::SchemaRef) -> Self {
        self.avro_schema = arrow_avro::schema::AvroSchema::try_from(schema.as_ref())
            .ok()
            .map(|s| s.json_string);
        self
    }
}

impl PayloadEncoder for JsonEncoder {
    fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
        self.buffer.clear();
        let mut writer: LineDelimitedWriter<&mut Vec<u8>> = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build(&mut self.buffer);
        writer.write(batch)?;
        writer.finish()?;
        drop(writer);
        // Line-delimited JSON escapes newlines inside strings, so every b'\n' ends a row.
        let rows: Vec<Vec<u8>> = self
            .buffer
            .split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        debug_assert_eq!(rows.len(), batch.num_rows());
        Ok(rows)
    }

    fn schema_definition(&self) -> Option<(crate::schema::SchemaKind, String)> {
        self.avro_schema
            .clone()
            .map(|s| (crate::schema::SchemaKind::Json, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message_id::MessageId;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::Int64Type;
    use arrow_schema::Schema;
    use arrow_schema::{DataType, Field};
    use bytes::Bytes;
    use std::sync::Arc;

    fn message(i: u64, payload: &str) -> ReceivedMessage {
        ReceivedMessage::local(
            MessageId::new(3, i, -1),
            Arc::from("persistent://public/default/t"),
            Arc::from("p"),
            Bytes::copy_from_slice(payload.as_bytes()),
        )
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("user", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]))
    }

    #[test]
    fn decodes_a_clean_chunk_in_one_go() {
        let mut d = JsonDecoder::new(schema(), JsonOptions::default()).expect("decoder");
        let msgs = vec![
            message(0, r#"{"user":"a","n":1}"#),
            message(1, r#"{"n":2,"extra":true}"#),
        ];
        let out = d.decode(&msgs).expect("decode");
        assert_eq!(out.rows, vec![0, 1]);
        assert!(out.errors.is_empty());
        let n = out.batch.column(1).as_primitive::<Int64Type>();
        assert_eq!(n, &Int64Array::from(vec![1, 2]));
        assert!(out.batch.column(0).is_null(1));
    }

    #[test]
    fn a_wide_schema_decodes_a_chunk_in_parts_keeping_message_order() {
        let fields: Vec<Field> = (0..2048)
            .map(|i| Field::new(format!("c{i}"), DataType::Int64, true))
            .collect();
        let mut d = JsonDecoder::new(Arc::new(Schema::new(fields)), JsonOptions::default())
            .expect("decoder");
        assert_eq!(d.max_rows, 256);
        let msgs: Vec<ReceivedMessage> = (0..600u64)
            .map(|i| {
                if i == 300 {
                    message(i, "{")
                } else {
                    message(i, &format!(r#"{{"c0":{i},"c2047":{}}}"#, i * 2))
                }
            })
            .collect();
        let out = d.decode(&msgs).expect("decode");
        assert!(d.capacity <= d.max_rows, "{} rows reserved", d.capacity);
        assert_eq!(
            out.errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![300]
        );
        assert_eq!(out.rows.len(), 599);
        assert_eq!(out.batch.num_rows(), 599);
        let first = out.batch.column(0).as_primitive::<Int64Type>();
        let last = out.batch.column(2047).as_primitive::<Int64Type>();
        for (row, &i) in out.rows.iter().enumerate() {
            assert_eq!(first.value(row), i as i64);
            assert_eq!(last.value(row), 2 * i as i64);
        }
    }

    #[test]
    fn names_the_bad_messages_and_keeps_the_rest() {
        let mut d = JsonDecoder::new(schema(), JsonOptions::default()).expect("decoder");
        let msgs = vec![
            message(0, r#"{"user":"a","n":1}"#),
            message(1, r#"{"user":"b","n":"#),
            message(2, r#"{"user":"c","n":"not a number"}"#),
            message(3, r#"{"user":"d","n":4} {"user":"e"}"#),
            message(4, ""),
            message(5, r#"{"user":"f","n":6}"#),
            message(6, "[1, 2]"),
            message(7, "42"),
        ];
        let out = d.decode(&msgs).expect("decode");
        assert_eq!(out.rows, vec![0, 5]);
        let bad: Vec<usize> = out.errors.iter().map(|(i, _)| *i).collect();
        assert_eq!(bad, vec![1, 2, 3, 4, 6, 7]);
        assert_eq!(out.batch.num_rows(), 2);
        // The decoder is usable afterwards.
        let again = d.decode(&[message(6, r#"{"n":7}"#)]).expect("decode");
        assert_eq!(again.rows, vec![0]);
    }

    #[test]
    fn a_number_too_long_for_a_decimal_column_is_named_not_misread() {
        // arrow-cast 59 counts a decimal's digits in a u8: 257 digits wrapped to one in release.
        let schema = Arc::new(Schema::new(vec![Field::new(
            "d",
            DataType::Decimal128(38, 2),
            true,
        )]));
        let mut d = JsonDecoder::new(schema, JsonOptions::default()).expect("decoder");
        let long = format!(r#"{{"d":1{}}}"#, "0".repeat(256));
        let msgs = vec![
            message(0, r#"{"d":12.5}"#),
            message(1, &long),
            message(2, r#"{"d":"1e99999"}"#),
        ];
        let out = d.decode(&msgs).expect("decode");
        assert_eq!(out.rows, vec![0]);
        let bad: Vec<usize> = out.errors.iter().map(|(i, _)| *i).collect();
        assert_eq!(bad, vec![1, 2]);
        assert!(out.errors[0].1.contains("257 digits"), "{:?}", out.errors);
    }

    #[test]
    fn a_fraction_in_an_integer_column_is_an_error_not_a_truncation() {
        for ignore_parse_errors in [false, true] {
            let mut d = JsonDecoder::new(
                schema(),
                JsonOptions {
                    ignore_parse_errors,
                },
            )
            .expect("decoder");
            let msgs = vec![
                message(0, r#"{"user":"a","n":1}"#),
                message(1, r#"{"user":"b","n":1.5}"#),
                message(2, r#"{"user":"c","n":3.0}"#),
            ];
            let out = d.decode(&msgs).expect("decode");
            assert_eq!(out.rows, vec![0, 2]);
            assert_eq!(out.errors.len(), 1);
            assert_eq!(out.errors[0].0, 1);
            assert!(
                out.errors[0]
                    .1
                    .contains("field 'n': 1.5 is not an integer its column can hold exactly"),
                "{}",
                out.errors[0].1
            );
            let n = out.batch.column(1).as_primitive::<Int64Type>();
            assert_eq!(n, &Int64Array::from(vec![1, 3]));
        }
    }

    #[test]
    fn ignore_parse_errors_nulls_bad_fields() {
        let options = JsonOptions {
            ignore_parse_errors: true,
        };
        let mut d = JsonDecoder::new(schema(), options).expect("decoder");
        let msgs = vec![message(0, r#"{"user":"c","n":"not a number"}"#)];
        let out = d.decode(&msgs).expect("decode");
        assert_eq!(out.rows, vec![0]);
        assert!(out.batch.column(1).is_null(0));
    }

    #[test]
    fn encodes_one_object_per_row() {
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(arrow::array::StringArray::from(vec![Some("a\nb"), None])),
                Arc::new(Int64Array::from(vec![1, 2])),
            ],
        )
        .expect("batch");
        let rows = JsonEncoder::new().encode(&batch).expect("encode");
        assert_eq!(rows.len(), 2);
        assert_eq!(
            String::from_utf8_lossy(&rows[0]),
            r#"{"user":"a\nb","n":1}"#
        );
        assert_eq!(String::from_utf8_lossy(&rows[1]), r#"{"user":null,"n":2}"#);
    }
}
