//! Pulsar's primitive schemas: the payload is one value in the Java client's fixed binary
//! layout (big-endian numbers, UTF-8 text, epoch-based times).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder,
    Int8Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder, Time32MillisecondBuilder,
    Time64NanosecondBuilder, TimestampMillisecondBuilder, TimestampNanosecondBuilder,
};
use arrow_schema::{Field, Schema, SchemaRef};

use super::{DecodedRows, PayloadDecoder};
use crate::error::{ConnectorError, Result};
use crate::pulsar::ReceivedMessage;
use crate::schema::SchemaKind;
use crate::schema::arrow_columns::primitive_type;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const NANOS_PER_DAY: i64 = 86_400 * NANOS_PER_SECOND;

/// Decodes payloads of one primitive schema kind into a single column.
#[derive(Debug)]
pub struct PrimitiveDecoder {
    kind: SchemaKind,
    schema: SchemaRef,
}

impl PrimitiveDecoder {
    /// A decoder of `kind` into a column named `column`.
    pub fn new(kind: SchemaKind, column: &str) -> Result<PrimitiveDecoder> {
        let data_type = primitive_type(&kind).ok_or_else(|| ConnectorError::Registry {
            topic: String::new(),
            reason: format!("{} is not a primitive schema", kind.name()),
        })?;
        Ok(PrimitiveDecoder {
            kind,
            schema: Arc::new(Schema::new(vec![Field::new(column, data_type, true)])),
        })
    }
}

/// The payload as exactly `N` bytes.
fn fixed<const N: usize>(
    payload: &[u8],
    kind: &SchemaKind,
) -> std::result::Result<[u8; N], String> {
    payload.try_into().map_err(|_| {
        format!(
            "a {} value is {N} bytes, this payload has {}",
            kind.name(),
            payload.len()
        )
    })
}

fn long(bytes: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    i64::from_be_bytes(b)
}

/// Fills one builder per message; a payload that does not fit is reported and skipped.
macro_rules! decode_with {
    ($builder:expr, $messages:expr, $errors:expr, $rows:expr, |$p:ident| $value:expr) => {{
        let mut b = $builder;
        for (i, m) in $messages.iter().enumerate() {
            if m.null_value {
                b.append_null();
                $rows.push(i);
                continue;
            }
            let $p: &[u8] = &m.payload;
            #[allow(clippy::redundant_closure_call)]
            let value: std::result::Result<_, String> = (|| $value)();
            match value {
                Ok(v) => {
                    b.append_value(v);
                    $rows.push(i);
                }
                Err(reason) => $errors.push((i, reason)),
            }
        }
        Arc::new(b.finish()) as ArrayRef
    }};
}

impl PayloadDecoder for PrimitiveDecoder {
    fn decode(&mut self, messages: &[ReceivedMessage]) -> Result<DecodedRows> {
        let mut rows = Vec::with_capacity(messages.len());
        let mut errors = Vec::new();
        let n = messages.len();
        let kind = &self.kind;
        let array = match kind {
            SchemaKind::String => {
                decode_with!(
                    StringBuilder::with_capacity(n, n * 16),
                    messages,
                    errors,
                    rows,
                    |p| { std::str::from_utf8(p).map_err(|e| format!("not UTF-8 text: {e}")) }
                )
            }
            SchemaKind::None => {
                decode_with!(
                    BinaryBuilder::with_capacity(n, n * 16),
                    messages,
                    errors,
                    rows,
                    |p| { Ok(p) }
                )
            }
            SchemaKind::Boolean => {
                decode_with!(
                    BooleanBuilder::with_capacity(n),
                    messages,
                    errors,
                    rows,
                    |p| { fixed::<1>(p, kind).map(|b| b[0] != 0) }
                )
            }
            SchemaKind::Int8 => {
                decode_with!(Int8Builder::with_capacity(n), messages, errors, rows, |p| {
                    fixed::<1>(p, kind).map(i8::from_be_bytes)
                })
            }
            SchemaKind::Int16 => decode_with!(
                Int16Builder::with_capacity(n),
                messages,
                errors,
                rows,
                |p| { fixed::<2>(p, kind).map(i16::from_be_bytes) }
            ),
            SchemaKind::Int32 => decode_with!(
                Int32Builder::with_capacity(n),
                messages,
                errors,
                rows,
                |p| { fixed::<4>(p, kind).map(i32::from_be_bytes) }
            ),
            SchemaKind::Int64 => decode_with!(
                Int64Builder::with_capacity(n),
                messages,
                errors,
                rows,
                |p| { fixed::<8>(p, kind).map(i64::from_be_bytes) }
            ),
            SchemaKind::Float => decode_with!(
                Float32Builder::with_capacity(n),
                messages,
                errors,
                rows,
                |p| { fixed::<4>(p, kind).map(f32::from_be_bytes) }
            ),
            SchemaKind::Double => decode_with!(
                Float64Builder::with_capacity(n),
                messages,
                errors,
                rows,
                |p| { fixed::<8>(p, kind).map(f64::from_be_bytes) }
            ),
            SchemaKind::Date | SchemaKind::Timestamp => decode_with!(
                TimestampMillisecondBuilder::with_capacity(n),
                messages,
                errors,
                rows,
                |p| fixed::<8>(p, kind).map(i64::from_be_bytes)
            ),
            SchemaKind::Time => decode_with!(
                Time32MillisecondBuilder::with_capacity(n),
                messages,
                errors,
                rows,
                |p| {
                    let ms = fixed::<8>(p, kind).map(i64::from_be_bytes)?;
                    i32::try_from(ms).map_err(|_| format!("TIME of {ms} ms is out of range"))
                }
            ),
            SchemaKind::Instant => decode_with!(
                TimestampNanosecondBuilder::with_capacity(n).with_timezone("+00:00"),
                messages,
                errors,
                rows,
                |p| {
                    let b = fixed::<12>(p, kind)?;
                    let seconds = long(&b);
                    let nanos = i32::from_be_bytes([b[8], b[9], b[10], b[11]]) as i64;
                    seconds
                        .checked_mul(NANOS_PER_SECOND)
                        .and_then(|s| s.checked_add(nanos))
                        .ok_or_else(|| format!("INSTANT of {seconds} s is out of range"))
                }
            ),
            SchemaKind::LocalDate => decode_with!(
                Date32Builder::with_capacity(n),
                messages,
                errors,
                rows,
                |p| {
                    let day = fixed::<8>(p, kind).map(i64::from_be_bytes)?;
                    i32::try_from(day).map_err(|_| format!("LOCAL_DATE day {day} is out of range"))
                }
            ),
            SchemaKind::LocalTime => decode_with!(
                Time64NanosecondBuilder::with_capacity(n),
                messages,
                errors,
                rows,
                |p| fixed::<8>(p, kind).map(i64::from_be_bytes)
            ),
            SchemaKind::LocalDateTime => decode_with!(
                TimestampNanosecondBuilder::with_capacity(n),
                messages,
                errors,
                rows,
                |p| {
                    let b = fixed::<16>(p, kind)?;
                    let (day, nanos) = (long(&b), long(&b[8..]));
                    day.checked_mul(NANOS_PER_DAY)
                        .and_then(|d| d.checked_add(nanos))
                        .ok_or_else(|| format!("LOCAL_DATE_TIME day {day} is out of range"))
                }
            ),
            other => {
                return Err(ConnectorError::Registry {
                    topic: String::new(),
                    reason: format!("{} is not a primitive schema", other.name()),
                });
            }
        };
        DecodedRows::from_columns(self.schema.clone(), vec![array], rows, errors)
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{
        Date32Type, Int16Type, Int64Type, Time64NanosecondType, TimestampNanosecondType,
    };
    use bytes::Bytes;

    use super::*;
    use crate::message_id::MessageId;

    fn messages(payloads: &[&[u8]]) -> Vec<ReceivedMessage> {
        payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                ReceivedMessage::local(
                    MessageId::new(1, i as u64, -1),
                    Arc::from("t"),
                    Arc::from("p"),
                    Bytes::copy_from_slice(p),
                )
            })
            .collect()
    }

    #[test]
    fn reads_the_java_client_layouts() {
        // INT64 / INT16: big-endian, as Java's LongSchema / ShortSchema write them.
        let mut d = PrimitiveDecoder::new(SchemaKind::Int64, "value").expect("kind");
        let rows = d
            .decode(&messages(&[&(-5i64).to_be_bytes(), &[1, 2, 3]]))
            .expect("decode");
        assert_eq!(rows.rows, vec![0]);
        assert_eq!(
            rows.batch.column(0).as_primitive::<Int64Type>().value(0),
            -5
        );
        assert!(rows.errors[0].1.contains("8 bytes"), "{:?}", rows.errors);
        let mut d = PrimitiveDecoder::new(SchemaKind::Int16, "value").expect("kind");
        let rows = d.decode(&messages(&[&[0x01, 0x02]])).expect("decode");
        assert_eq!(
            rows.batch.column(0).as_primitive::<Int16Type>().value(0),
            258
        );

        // INSTANT: epoch seconds (8 bytes) then nanoseconds (4 bytes).
        let mut instant = Vec::from(1_700_000_000i64.to_be_bytes());
        instant.extend(5i32.to_be_bytes());
        let mut d = PrimitiveDecoder::new(SchemaKind::Instant, "value").expect("kind");
        let rows = d.decode(&messages(&[&instant])).expect("decode");
        assert_eq!(
            rows.batch
                .column(0)
                .as_primitive::<TimestampNanosecondType>()
                .value(0),
            1_700_000_000 * NANOS_PER_SECOND + 5
        );

        // LOCAL_DATE: epoch day; LOCAL_TIME: nanosecond of day; LOCAL_DATE_TIME: both.
        let mut d = PrimitiveDecoder::new(SchemaKind::LocalDate, "value").expect("kind");
        let rows = d
            .decode(&messages(&[&19_000i64.to_be_bytes()]))
            .expect("decode");
        assert_eq!(
            rows.batch.column(0).as_primitive::<Date32Type>().value(0),
            19_000
        );
        let mut d = PrimitiveDecoder::new(SchemaKind::LocalTime, "value").expect("kind");
        let rows = d
            .decode(&messages(&[&42i64.to_be_bytes()]))
            .expect("decode");
        assert_eq!(
            rows.batch
                .column(0)
                .as_primitive::<Time64NanosecondType>()
                .value(0),
            42
        );
        let mut ldt = Vec::from(2i64.to_be_bytes());
        ldt.extend(7i64.to_be_bytes());
        let mut d = PrimitiveDecoder::new(SchemaKind::LocalDateTime, "value").expect("kind");
        let rows = d.decode(&messages(&[&ldt])).expect("decode");
        assert_eq!(
            rows.batch
                .column(0)
                .as_primitive::<TimestampNanosecondType>()
                .value(0),
            2 * NANOS_PER_DAY + 7
        );

        // STRING: UTF-8, and invalid text is reported, not dropped.
        let mut d = PrimitiveDecoder::new(SchemaKind::String, "value").expect("kind");
        let rows = d
            .decode(&messages(&["héllo".as_bytes(), &[0xff, 0xfe]]))
            .expect("decode");
        assert_eq!(rows.batch.column(0).as_string::<i32>().value(0), "héllo");
        assert_eq!(rows.errors.len(), 1);
        assert_eq!(rows.batch.column(0).len(), 1);
    }
}
