//! The `filesystem` connector: a bounded table over a file, or over the files of a directory
//! (each file a partition, read in name order), one JSON object or CSV record per line —
//! Flink's option names, for feeding the same rows to Magnetar and to Flink.

use std::path::PathBuf;
use std::time::Duration;

use super::common::{
    self, CSV_FIELD_DELIMITER, CSV_IGNORE_PARSE_ERRORS, EmitStrategy, FORMAT, IDLE_TIMEOUT,
    JSON_IGNORE_PARSE_ERRORS, SCAN_PARALLELISM, VALUE_FORMAT, VALUE_IGNORE_PARSE_ERRORS,
    ValueFormat, WATERMARK_EMIT,
};
use super::{OptionKind, OptionScope, OptionSpec, ValidatedOptions};
use crate::error::{Location, Result};
use crate::statement::OptionEntry;

/// Every option of the `filesystem` connector.
pub const FILESYSTEM_OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        key: "connector",
        kind: OptionKind::OneOf(&["filesystem"]),
        default: None,
        required: true,
        scope: OptionScope::Table,
        description: "The connector: `filesystem`.",
    },
    OptionSpec {
        key: "path",
        kind: OptionKind::Text,
        default: None,
        required: true,
        scope: OptionScope::Table,
        description: "A file, or a directory whose files (in name order) are the table's partitions. Relative paths are relative to the working directory.",
    },
    FORMAT,
    VALUE_FORMAT,
    JSON_IGNORE_PARSE_ERRORS,
    VALUE_IGNORE_PARSE_ERRORS,
    CSV_IGNORE_PARSE_ERRORS,
    CSV_FIELD_DELIMITER,
    WATERMARK_EMIT,
    IDLE_TIMEOUT,
    SCAN_PARALLELISM,
];

/// Validated options of a file table.
#[derive(Clone, Debug)]
pub struct FileTableOptions {
    /// File or directory.
    pub path: PathBuf,
    /// Value format.
    pub format: ValueFormat,
    /// Watermark emission.
    pub emit: EmitStrategy,
    /// Idle timeout of a partition.
    pub idle_timeout: Option<Duration>,
    /// Most source instances (`scan.parallelism`).
    pub scan_parallelism: Option<usize>,
}

impl FileTableOptions {
    /// Validates the `WITH` entries of table `table`.
    pub fn parse(table: &str, entries: &[OptionEntry], location: Option<Location>) -> Result<Self> {
        let o = ValidatedOptions::new("filesystem", table, FILESYSTEM_OPTIONS, entries, location)?;
        let path = PathBuf::from(o.get("path").unwrap_or_default());
        let (emit, idle_timeout) = common::event_time(&o)?;
        let scan_parallelism = common::scan_parallelism(&o)?;
        let format = common::value_format(&o)?;
        if matches!(
            format.kind,
            magnetar_connectors::format::FormatKind::Avro
                | magnetar_connectors::format::FormatKind::Protobuf
        ) {
            // Binary messages carry no delimiter, so they cannot be lines of a file.
            return Err(o.invalid(
                "format",
                "files are read line by line: use json, csv or raw",
            ));
        }
        Ok(Self {
            path,
            format,
            emit,
            idle_timeout,
            scan_parallelism,
        })
    }
}
