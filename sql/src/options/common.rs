//! Options several connectors share: the value format and event-time behaviour.

use std::time::Duration;

use magnetar_connectors::format::{FormatKind, JsonOptions};

use super::{OptionKind, OptionScope, OptionSpec, ValidatedOptions};
use crate::error::Result;

/// Value formats by name.
pub const FORMATS: &[&str] = &["json", "csv", "raw", "avro", "protobuf"];

/// `format`.
pub const FORMAT: OptionSpec = OptionSpec {
    key: "format",
    kind: OptionKind::OneOf(FORMATS),
    default: Some("json"),
    required: false,
    scope: OptionScope::Table,
    description: "Value format: `json` (one object per message or line), `csv` (one record per message or line, no header), `raw` (one BYTES or STRING column holds the payload), `avro` (a bare Avro binary datum of the columns' Avro schema, nullable columns as `[\"null\", T]` unions), or `protobuf` (Pulsar tables: a protobuf message described by `protobuf.descriptor-file` and `protobuf.message-name`; columns are read by field name). A Pulsar table whose topic has a registry schema (see `admin-url`) reads by that schema instead.",
};

/// `value.format`.
pub const VALUE_FORMAT: OptionSpec = OptionSpec {
    key: "value.format",
    kind: OptionKind::OneOf(FORMATS),
    default: None,
    required: false,
    scope: OptionScope::Table,
    description: "Same as `format` (Flink's name when a key format is set too).",
};

/// `json.ignore-parse-errors`.
pub const JSON_IGNORE_PARSE_ERRORS: OptionSpec = OptionSpec {
    key: "json.ignore-parse-errors",
    kind: OptionKind::Bool,
    default: Some("false"),
    required: false,
    scope: OptionScope::Source,
    description: "`false`: a message that is not valid JSON for the columns fails the query, naming topic and message id. `true`: it is skipped and counted, and fields of the wrong type read as NULL.",
};

/// `value.ignore-parse-errors`.
pub const VALUE_IGNORE_PARSE_ERRORS: OptionSpec = OptionSpec {
    key: "value.ignore-parse-errors",
    kind: OptionKind::Bool,
    default: Some("false"),
    required: false,
    scope: OptionScope::Source,
    description: "For any format: `true` skips (and counts) a message that cannot be decoded, whatever the format or registry schema; `false` fails the query naming topic and message id.",
};

/// `csv.ignore-parse-errors`.
pub const CSV_IGNORE_PARSE_ERRORS: OptionSpec = OptionSpec {
    key: "csv.ignore-parse-errors",
    kind: OptionKind::Bool,
    default: Some("false"),
    required: false,
    scope: OptionScope::Source,
    description: "`false`: a record that does not parse fails the query, naming its place. `true`: fields that do not parse read as NULL (as in Flink), and a record with the wrong number of fields is skipped and counted.",
};

/// `csv.field-delimiter`.
pub const CSV_FIELD_DELIMITER: OptionSpec = OptionSpec {
    key: "csv.field-delimiter",
    kind: OptionKind::Text,
    default: Some(","),
    required: false,
    scope: OptionScope::Table,
    description: "The csv format's field delimiter (one character).",
};

/// `scan.watermark.emit.strategy`.
pub const WATERMARK_EMIT: OptionSpec = OptionSpec {
    key: "scan.watermark.emit.strategy",
    kind: OptionKind::OneOf(&["on-periodic", "on-event"]),
    default: Some("on-periodic"),
    required: false,
    scope: OptionScope::Source,
    description: "When the source emits a watermark (Flink's option): `on-periodic` after each batch of messages; `on-event` after every row, exactly as Flink's on-event strategy (slower; for exact comparisons and low rates).",
};

/// `source.idle-timeout`.
pub const IDLE_TIMEOUT: OptionSpec = OptionSpec {
    key: "source.idle-timeout",
    kind: OptionKind::Text,
    default: None,
    required: false,
    scope: OptionScope::Source,
    description: "A partition that receives nothing for this long (`10 s`, `500 ms`) stops holding the watermark back until it receives data again. Default: `SET 'table.exec.source.idle-timeout'`, else never.",
};

/// `scan.parallelism`.
pub const SCAN_PARALLELISM: OptionSpec = OptionSpec {
    key: "scan.parallelism",
    kind: OptionKind::Integer,
    default: None,
    required: false,
    scope: OptionScope::Source,
    description: "Most instances of the table's source (Flink's option), whatever `parallelism.default` says; a source never runs more instances than the table has partitions (or file splits). `1` reads every partition in one instance, whose watermark then merges theirs exactly.",
};

/// Reads `scan.parallelism`.
pub fn scan_parallelism(o: &ValidatedOptions<'_>) -> Result<Option<usize>> {
    match o.get("scan.parallelism") {
        None => Ok(None),
        Some(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=32767).contains(n))
            .map(Some)
            .ok_or_else(|| o.invalid("scan.parallelism", "expected 1 to 32767")),
    }
}

/// When a source emits watermarks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitStrategy {
    /// After each batch.
    Periodic,
    /// After every row.
    OnEvent,
}

/// Value format settings of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueFormat {
    /// The format.
    pub kind: FormatKind,
    /// Skip (and count) rows that do not parse, instead of failing.
    pub ignore_parse_errors: bool,
    /// CSV delimiter.
    pub csv_delimiter: u8,
}

impl ValueFormat {
    /// JSON decoder options.
    pub fn json(&self) -> JsonOptions {
        JsonOptions {
            ignore_parse_errors: self.ignore_parse_errors,
        }
    }
}

/// Reads the shared format options.
pub fn value_format(o: &ValidatedOptions<'_>) -> Result<ValueFormat> {
    if let (Some(a), Some(b)) = (o.entry("format"), o.entry("value.format"))
        && !a.value.eq_ignore_ascii_case(&b.value)
    {
        return Err(o.invalid("value.format", "conflicts with 'format'"));
    }
    let kind = match o
        .get_choice("value.format")
        .or_else(|| o.get_choice("format"))
    {
        Some("raw") => FormatKind::Raw,
        Some("csv") => FormatKind::Csv,
        Some("avro") => FormatKind::Avro,
        Some("protobuf") => FormatKind::Protobuf,
        _ => FormatKind::Json,
    };
    let delimiter = o.get("csv.field-delimiter").unwrap_or(",");
    let csv_delimiter = match delimiter.as_bytes() {
        [b] => *b,
        _ if delimiter == "\\t" => b'\t',
        _ => {
            return Err(o.invalid("csv.field-delimiter", "expected one character (or \\t)"));
        }
    };
    let ignore_parse_errors = o.get_bool("value.ignore-parse-errors")
        || match kind {
            FormatKind::Csv => o.get_bool("csv.ignore-parse-errors"),
            FormatKind::Json => o.get_bool("json.ignore-parse-errors"),
            FormatKind::Raw | FormatKind::Avro | FormatKind::Protobuf => false,
        };
    Ok(ValueFormat {
        kind,
        ignore_parse_errors,
        csv_delimiter,
    })
}

/// Reads the shared event-time options.
pub fn event_time(o: &ValidatedOptions<'_>) -> Result<(EmitStrategy, Option<Duration>)> {
    let emit = match o.get_choice("scan.watermark.emit.strategy") {
        Some("on-event") => EmitStrategy::OnEvent,
        _ => EmitStrategy::Periodic,
    };
    let idle = match o.get("source.idle-timeout") {
        None => None,
        Some(text) => Some(parse_duration(text).map_err(|e| o.invalid("source.idle-timeout", e))?),
    };
    Ok((emit, idle))
}

/// Parses Flink-style durations: `10s`, `10 s`, `500 ms`, `2 min`, `1h`, or plain milliseconds.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("expected a duration such as '10 s' or '500 ms', got '{text}'"))?;
    let unit_ms: u64 = match unit.trim() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1000,
        "min" | "m" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        other => return Err(format!("unknown time unit '{other}' (use ms, s, min or h)")),
    };
    let ms = n
        .checked_mul(unit_ms)
        .filter(|ms| *ms <= MAX_DURATION_MS)
        .ok_or_else(|| {
            format!("'{text}' is out of range: a duration is at most 3650 days ('87600 h')")
        })?;
    Ok(Duration::from_millis(ms))
}

/// Parses sizes: `512 mb`, `2 gb`, `64 kb` (whole numbers only), or plain bytes; units are powers of 1024 (`mb` = MiB), as Flink's `MemorySize` reads them.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("expected a size such as '512 mb' or '2 gb', got '{text}'"))?;
    let unit_bytes: u64 = match unit.trim() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit '{other}' (use b, kb, mb, gb or tb)"
            ));
        }
    };
    n.checked_mul(unit_bytes)
        .filter(|b| *b <= MAX_SIZE_BYTES)
        .ok_or_else(|| format!("'{text}' is out of range: a size is at most 1024 tb"))
}

/// The largest size a setting takes (1 PiB): sums of sizes stay far from `u64::MAX`.
pub const MAX_SIZE_BYTES: u64 = 1 << 50;

/// The longest duration an option or setting takes (ten years): timers and deadlines built
/// from it stay far from the clock's limits.
pub const MAX_DURATION_MS: u64 = 3650 * 24 * 3_600_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("512 mb"), Ok(512 << 20));
        assert_eq!(parse_size("2GB"), Ok(2 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("1.5 gb").is_err());
        assert!(parse_size("3 parsecs").is_err());
        assert!(parse_size("99999999999999999999 b").is_err());
        for huge in ["99999999999 tb", "2000 tb"] {
            assert!(parse_size(huge).expect_err(huge).contains("out of range"));
        }
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500 ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2 min"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("ten s").is_err());
        assert!(parse_duration("5 fortnights").is_err());
        assert_eq!(
            parse_duration("87600 h"),
            Ok(Duration::from_millis(MAX_DURATION_MS))
        );
        for huge in ["99999999999999999 h", "99999999999999999 ms", "87601 h"] {
            let e = parse_duration(huge).expect_err(huge);
            assert!(e.contains("out of range"), "{e}");
        }
        assert!(parse_duration("999999999999999999999999 s").is_err());
    }
}
