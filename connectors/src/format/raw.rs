//! The `raw` format: the whole payload is the single column's value.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BinaryBuilder, StringBuilder};
use arrow::record_batch::RecordBatch;
use arrow_schema::{DataType, SchemaRef};

use super::{DecodedRows, PayloadDecoder, PayloadEncoder};
use crate::error::{ConnectorError, Result};
use crate::pulsar::ReceivedMessage;

fn check_schema(schema: &SchemaRef) -> Result<()> {
    let ok = schema.fields().len() == 1
        && matches!(
            schema.field(0).data_type(),
            DataType::Binary | DataType::LargeBinary | DataType::Utf8 | DataType::LargeUtf8
        );
    if ok {
        Ok(())
    } else {
        Err(ConnectorError::Decode {
            topic: String::new(),
            id: crate::message_id::MessageId::new(0, 0, -1),
            format: "raw",
            reason: format!(
                "the raw format needs exactly one physical column of type BYTES or STRING, the table has {}",
                schema
                    .fields()
                    .iter()
                    .map(|f| format!("{} {}", f.name(), f.data_type()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }
}

/// Reads each payload as one BYTES or STRING value; a tombstone is NULL.
#[derive(Debug)]
pub struct RawDecoder {
    schema: SchemaRef,
    utf8: bool,
}

impl RawDecoder {
    /// A decoder for a one-column schema of BYTES or STRING.
    pub fn new(schema: SchemaRef) -> Result<Self> {
        check_schema(&schema)?;
        let utf8 = matches!(
            schema.field(0).data_type(),
            DataType::Utf8 | DataType::LargeUtf8
        );
        Ok(Self { schema, utf8 })
    }
}

impl PayloadDecoder for RawDecoder {
    fn decode(&mut self, messages: &[ReceivedMessage]) -> Result<DecodedRows> {
        let mut rows = Vec::with_capacity(messages.len());
        let mut errors = Vec::new();
        let column: ArrayRef = if self.utf8 {
            let mut b = StringBuilder::with_capacity(messages.len(), 0);
            for (i, m) in messages.iter().enumerate() {
                if m.null_value {
                    b.append_null();
                    rows.push(i);
                    continue;
                }
                match std::str::from_utf8(&m.payload) {
                    Ok(s) => {
                        b.append_value(s);
                        rows.push(i);
                    }
                    Err(e) => errors.push((i, format!("payload is not UTF-8: {e}"))),
                }
            }
            Arc::new(b.finish())
        } else {
            let mut b = BinaryBuilder::with_capacity(messages.len(), 0);
            for (i, m) in messages.iter().enumerate() {
                if m.null_value {
                    b.append_null();
                } else {
                    b.append_value(&m.payload);
                }
                rows.push(i);
            }
            Arc::new(b.finish())
        };
        let column = if column.data_type() == self.schema.field(0).data_type() {
            column
        } else {
            arrow::compute::cast(&column, self.schema.field(0).data_type())?
        };
        Ok(DecodedRows {
            batch: RecordBatch::try_new(self.schema.clone(), vec![column])?,
            rows,
            errors,
        })
    }

    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

/// Writes the single column's value as the payload (NULL becomes an empty payload).
#[derive(Debug)]
pub struct RawEncoder;

impl RawEncoder {
    /// An encoder for a one-column schema of BYTES or STRING.
    pub fn new(schema: SchemaRef) -> Result<Self> {
        check_schema(&schema)?;
        Ok(RawEncoder)
    }
}

impl PayloadEncoder for RawEncoder {
    fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<Vec<u8>>> {
        let column = arrow::compute::cast(batch.column(0), &DataType::Binary)?;
        let values = column
            .as_any()
            .downcast_ref::<arrow::array::BinaryArray>()
            .ok_or_else(|| ConnectorError::Encode {
                topic: String::new(),
                format: "raw",
                reason: "column is not binary after cast".into(),
            })?;
        Ok((0..values.len())
            .map(|i| {
                if values.is_null(i) {
                    Vec::new()
                } else {
                    values.value(i).to_vec()
                }
            })
            .collect())
    }
}
