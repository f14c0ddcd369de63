//! Message formats: message payloads to Arrow rows, and Arrow rows to payloads.

mod avro;
mod csv;
mod decimal_text;
mod json;
mod json_integers;
mod key_value;
mod primitive;
mod protobuf;
mod raw;

use arrow::record_batch::RecordBatch;
use arrow_schema::SchemaRef;

pub use avro::{AvroDecoder, AvroEncoder};
pub use csv::{CsvDecoder, CsvEncoder};
pub use json::{JsonDecoder, JsonEncoder};
pub use key_value::KeyValueDecoder;
pub use primitive::PrimitiveDecoder;
pub use prost_reflect::MessageDescriptor;
pub use protobuf::{
    ProtobufDecoder, message_descriptor, message_in_descriptor_set, protobuf_columns,
};
pub use raw::{RawDecoder, RawEncoder};

use crate::error::Result;
use crate::pulsar::ReceivedMessage;
use crate::schema::{SchemaInfo, SchemaKind, SchemaVersion};

/// A value format, by its Flink name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatKind {
    /// `json`: one JSON object per message.
    Json,
    /// `raw`: the whole payload is one column (BYTES or STRING).
    Raw,
    /// `csv`: one record per message, no header.
    Csv,
    /// `avro`: each payload is a bare Avro binary datum of the columns' Avro schema.
    Avro,
    /// `protobuf`: each payload is a protobuf message described by a descriptor file.
    Protobuf,
}

impl FormatKind {
    /// The name used in `'format'`.
    pub fn name(self) -> &'static str {
        match self {
            FormatKind::Json => "json",
            FormatKind::Raw => "raw",
            FormatKind::Csv => "csv",
            FormatKind::Avro => "avro",
            FormatKind::Protobuf => "protobuf",
        }
    }

    /// Every format, for option validation and documentation.
    pub const ALL: [FormatKind; 5] = [
        FormatKind::Json,
        FormatKind::Csv,
        FormatKind::Raw,
        FormatKind::Avro,
        FormatKind::Protobuf,
    ];
}

/// Rows decoded from a slice of messages.
#[derive(Debug)]
pub struct DecodedRows {
    /// One row per message in `rows`, in the table's payload schema.
    pub batch: RecordBatch,
    /// Index (into the input slice) of the message each row came from.
    pub rows: Vec<usize>,
    /// Messages that could not be decoded: index into the input slice, and why.
    pub errors: Vec<(usize, String)>,
}

impl DecodedRows {
    /// Rows made of `columns` (one row per entry of `rows`) in `schema`.
    pub fn from_columns(
        schema: SchemaRef,
        columns: Vec<arrow::array::ArrayRef>,
        rows: Vec<usize>,
        errors: Vec<(usize, String)>,
    ) -> Result<DecodedRows> {
        let batch = RecordBatch::try_new_with_options(
            schema,
            columns,
            &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows.len())),
        )?;
        Ok(DecodedRows {
            batch,
            rows,
            errors,
        })
    }
}

/// Decodes message payloads into Arrow rows.
pub trait PayloadDecoder: Send {
    /// Decodes `messages`; a message that cannot be decoded is reported in `errors`, never
    /// silently dropped.
    fn decode(&mut self, messages: &[ReceivedMessage]) -> Result<DecodedRows>;

    /// The schema of decoded rows.
    fn schema(&self) -> &SchemaRef;

    /// Writer schema versions `messages` carry that must be fetched before decoding them.
    fn missing_versions(&self, _messages: &[ReceivedMessage]) -> Vec<SchemaVersion> {
        Vec::new()
    }

    /// The registry's schema of `version`, or `None` when the registry does not have it
    /// (messages of that version are then reported as errors).
    fn add_version(&mut self, _version: SchemaVersion, _info: Option<&SchemaInfo>) {}

    /// Makes messages of `version` bad messages, for `reason` (its schema cannot be had).
    fn mark_unreadable(&mut self, _version: SchemaVersion, _reason: String) {}
}

/// Encodes Arrow rows into message payloads.
pub trait PayloadEncoder: Send {
    /// One payload per row of `batch`.
    fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<Vec<u8>>>;

    /// The schema kind and definition a producer announces for these payloads, if any.
    fn schema_definition(&self) -> Option<(SchemaKind, String)> {
        None
    }
}

/// Options of the `json` format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JsonOptions {
    /// Flink's `json.ignore-parse-errors`: a field of the wrong type becomes NULL, and a
    /// message that is not a JSON object is skipped (and counted) instead of failing.
    pub ignore_parse_errors: bool,
}

/// Options a format's decoder and encoder take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatOptions {
    /// JSON: fields of the wrong type read as NULL (rows that do not parse are reported).
    pub ignore_parse_errors: bool,
    /// CSV field delimiter.
    pub csv_delimiter: u8,
}

impl Default for FormatOptions {
    fn default() -> Self {
        Self {
            ignore_parse_errors: false,
            csv_delimiter: b',',
        }
    }
}

/// Makes the decoder for a format over the table's payload columns.
pub fn decoder_for(
    kind: FormatKind,
    schema: SchemaRef,
    options: FormatOptions,
) -> Result<Box<dyn PayloadDecoder>> {
    Ok(match kind {
        FormatKind::Json => Box::new(JsonDecoder::new(
            schema,
            JsonOptions {
                ignore_parse_errors: options.ignore_parse_errors,
            },
        )?),
        FormatKind::Csv => Box::new(CsvDecoder::new(
            schema,
            options.csv_delimiter,
            options.ignore_parse_errors,
        )),
        FormatKind::Raw => Box::new(RawDecoder::new(schema)?),
        FormatKind::Avro => Box::new(AvroDecoder::for_columns(&schema)?),
        FormatKind::Protobuf => return Err(needs_descriptor()),
    })
}

fn needs_descriptor() -> crate::error::ConnectorError {
    crate::error::ConnectorError::Registry {
        topic: String::new(),
        reason: "the protobuf format needs its message descriptor ('protobuf.descriptor-file')"
            .into(),
    }
}

/// Makes the encoder for a format.
pub fn encoder_for(
    kind: FormatKind,
    schema: SchemaRef,
    options: FormatOptions,
) -> Result<Box<dyn PayloadEncoder>> {
    Ok(match kind {
        FormatKind::Json => Box::new(JsonEncoder::new().with_schema(&schema)),
        FormatKind::Csv => Box::new(CsvEncoder::new(options.csv_delimiter)),
        FormatKind::Raw => Box::new(RawEncoder::new(schema)?),
        FormatKind::Avro => Box::new(AvroEncoder::new(&schema, None)?),
        FormatKind::Protobuf => {
            return Err(crate::error::ConnectorError::Registry {
                topic: String::new(),
                reason: "writing the protobuf format is not supported; use json or avro".into(),
            });
        }
    })
}
