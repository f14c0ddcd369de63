//! `WITH (...)` options: every key a connector accepts is declared once, with its kind,
//! default and description. Validation, "did you mean" hints and the README's option
//! table all come from these declarations.

pub mod common;
mod custom;
mod filesystem;
mod memory;
mod pulsar;
mod pulsar_client;

pub use common::{EmitStrategy, ValueFormat};
pub use custom::{CustomConnectorSpec, CustomConnectors, CustomTableOptions};
pub use filesystem::{FILESYSTEM_OPTIONS, FileTableOptions};
pub use memory::{MEMORY_OPTIONS, MemoryTableOptions};
pub use pulsar::{DeliveryGuarantee, KeyFormat, PULSAR_OPTIONS, PulsarTableOptions};
pub use pulsar_client::{FLINK_KEYS_NOT_USED, PulsarClientOptions};

use crate::error::{Location, Result, SqlError, nearest};

/// The connectors Magnetar has, by name.
pub const CONNECTORS: &[&str] = &["pulsar", "filesystem", "memory"];

/// A table's connector and its validated options.
// One per table, never in a hot path: boxing the big variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Connector {
    /// Apache Pulsar topics.
    Pulsar(PulsarTableOptions),
    /// Files (bounded).
    Filesystem(FileTableOptions),
    /// In-process rows.
    Memory(MemoryTableOptions),
    /// A connector the embedding program registered.
    Custom(CustomTableOptions),
}

impl Connector {
    /// Validates a `WITH` clause, choosing the connector by its `'connector'` entry among
    /// the built-in ones and those in `custom`.
    pub fn parse(
        table: &str,
        entries: &[OptionEntry],
        location: Option<Location>,
        custom: &CustomConnectors,
    ) -> Result<Self> {
        let known: Vec<&str> = CONNECTORS.iter().copied().chain(custom.names()).collect();
        let Some(entry) = entries.iter().find(|e| e.key == "connector") else {
            return Err(SqlError::MissingOption {
                table: table.to_string(),
                key: "connector".into(),
                what: format!("one of {}", known.join(", ")),
                location,
            });
        };
        match entry.value.to_ascii_lowercase().as_str() {
            "pulsar" => Ok(Connector::Pulsar(PulsarTableOptions::parse(
                table, entries, location,
            )?)),
            "filesystem" => Ok(Connector::Filesystem(FileTableOptions::parse(
                table, entries, location,
            )?)),
            "memory" => Ok(Connector::Memory(MemoryTableOptions::parse(
                table, entries, location,
            )?)),
            name => match custom.get(name) {
                Some(spec) => Ok(Connector::Custom(CustomTableOptions::parse(
                    spec, table, entries, location,
                )?)),
                None => Err(SqlError::InvalidOption {
                    key: "connector".into(),
                    value: entry.value.clone(),
                    reason: format!(
                        "expected one of {}{}",
                        known.join(", "),
                        nearest(&entry.value, known.iter().copied())
                            .map(|n| format!("; did you mean '{n}'?"))
                            .unwrap_or_default()
                    ),
                    location: entry.value_location,
                }),
            },
        }
    }

    /// The value format.
    pub fn format(&self) -> ValueFormat {
        match self {
            Connector::Pulsar(o) => o.format,
            Connector::Filesystem(o) => o.format,
            // Rows arrive as Arrow batches; JSON only names what a memory log stores.
            Connector::Memory(_) | Connector::Custom(_) => ValueFormat {
                kind: magnetar_connectors::format::FormatKind::Json,
                ignore_parse_errors: false,
                csv_delimiter: b',',
            },
        }
    }

    /// Watermark emission and idle timeout.
    pub fn event_time(&self) -> (EmitStrategy, Option<std::time::Duration>) {
        match self {
            Connector::Pulsar(o) => (o.emit, o.idle_timeout),
            Connector::Filesystem(o) => (o.emit, o.idle_timeout),
            Connector::Memory(o) => (o.emit, o.idle_timeout),
            Connector::Custom(o) => (o.emit, o.idle_timeout),
        }
    }

    /// Most instances of the table's source (`scan.parallelism`).
    pub fn scan_parallelism(&self) -> Option<usize> {
        match self {
            Connector::Pulsar(o) => o.scan_parallelism,
            Connector::Filesystem(o) => o.scan_parallelism,
            Connector::Memory(o) => o.scan_parallelism,
            Connector::Custom(_) => Some(1),
        }
    }

    /// Whether reads end by themselves.
    pub fn is_bounded(&self) -> bool {
        match self {
            Connector::Pulsar(o) => o.is_bounded(),
            Connector::Filesystem(_) => true,
            Connector::Memory(o) => o.bounded,
            Connector::Custom(o) => o.bounded,
        }
    }

    /// The connector's name.
    pub fn name(&self) -> &str {
        match self {
            Connector::Pulsar(_) => "pulsar",
            Connector::Filesystem(_) => "filesystem",
            Connector::Memory(_) => "memory",
            Connector::Custom(o) => &o.connector,
        }
    }
}
use crate::statement::OptionEntry;

/// What values an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    /// Any text.
    Text,
    /// `true` or `false`.
    Bool,
    /// A whole number.
    Integer,
    /// One of these words (case-insensitive).
    OneOf(&'static [&'static str]),
}

impl OptionKind {
    /// How the kind reads in the docs.
    pub fn describe(&self) -> String {
        match self {
            OptionKind::Text => "text".into(),
            OptionKind::Bool => "`true` / `false`".into(),
            OptionKind::Integer => "integer".into(),
            OptionKind::OneOf(values) => values
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(" / "),
        }
    }
}

/// Which side of a table an option concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionScope {
    /// Reading and writing.
    Table,
    /// Reading (`SELECT ... FROM t`).
    Source,
    /// Writing (`INSERT INTO t`).
    Sink,
}

/// One declared option.
#[derive(Clone, Copy, Debug)]
pub struct OptionSpec {
    /// The key, as Flink names it.
    pub key: &'static str,
    /// What values it takes.
    pub kind: OptionKind,
    /// Default, if any.
    pub default: Option<&'static str>,
    /// Whether the table cannot do without it.
    pub required: bool,
    /// Where it applies.
    pub scope: OptionScope,
    /// One line for the docs.
    pub description: &'static str,
}

/// The options of one `WITH` clause, checked against a connector's specs.
#[derive(Debug)]
pub struct ValidatedOptions<'a> {
    table: String,
    specs: &'a [OptionSpec],
    entries: &'a [OptionEntry],
    table_location: Option<Location>,
}

/// How the value of option `key` may be shown: masked when the key names a secret, with
/// URL user info and secret parameters masked otherwise.
pub fn shown_value(key: &str, value: &str) -> String {
    if magnetar_connectors::redact::is_secret_name(key) {
        magnetar_connectors::redact::MASK.to_string()
    } else {
        magnetar_connectors::redact::text(value)
    }
}

/// `a` then `b`, in a constant (`C` = `A + B`).
pub(crate) const fn concat_specs<const A: usize, const B: usize, const C: usize>(
    a: [OptionSpec; A],
    b: [OptionSpec; B],
) -> [OptionSpec; C] {
    assert!(A > 0 && A + B == C);
    let mut out = [a[0]; C];
    let mut i = 0;
    while i < B {
        out[A + i] = b[i];
        i += 1;
    }
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    out
}

impl<'a> ValidatedOptions<'a> {
    /// Rejects unknown keys (naming the nearest valid one) and values of the wrong kind.
    pub fn new(
        connector: &str,
        table: &str,
        specs: &'a [OptionSpec],
        entries: &'a [OptionEntry],
        table_location: Option<Location>,
    ) -> Result<Self> {
        Self::new_with_foreign(connector, table, specs, &[], entries, table_location)
    }

    /// [`Self::new`], refusing the keys in `foreign` (another system's keys for the same
    /// connector, such as Flink's) as known but not used, rather than as unknown.
    pub fn new_with_foreign(
        connector: &str,
        table: &str,
        specs: &'a [OptionSpec],
        foreign: &[&str],
        entries: &'a [OptionEntry],
        table_location: Option<Location>,
    ) -> Result<Self> {
        for entry in entries {
            if foreign.contains(&entry.key.as_str()) {
                return Err(SqlError::UnusedOption {
                    key: entry.key.clone(),
                    connector: connector.to_string(),
                    location: entry.key_location,
                });
            }
            let Some(spec) = specs.iter().find(|s| s.key == entry.key) else {
                let case_insensitive = specs
                    .iter()
                    .find(|s| s.key.eq_ignore_ascii_case(&entry.key));
                return Err(SqlError::UnknownOption {
                    key: entry.key.clone(),
                    connector: connector.to_string(),
                    suggestion: case_insensitive
                        .map(|s| s.key.to_string())
                        .or_else(|| nearest(&entry.key, specs.iter().map(|s| s.key))),
                    location: entry.key_location,
                });
            };
            check_kind(spec, entry)?;
        }
        let options = Self {
            table: table.to_string(),
            specs,
            entries,
            table_location,
        };
        for spec in specs.iter().filter(|s| s.required) {
            if options.entry(spec.key).is_none() {
                return Err(SqlError::MissingOption {
                    table: table.to_string(),
                    key: spec.key.to_string(),
                    what: spec.description.to_string(),
                    location: table_location,
                });
            }
        }
        Ok(options)
    }

    /// The entry for `key`, if given.
    pub fn entry(&self, key: &str) -> Option<&'a OptionEntry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The value for `key`, or its declared default.
    pub fn get(&self, key: &str) -> Option<&str> {
        match self.entry(key) {
            Some(e) => Some(e.value.as_str()),
            None => self.spec(key).and_then(|s| s.default),
        }
    }

    /// A boolean option (validated already).
    pub fn get_bool(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A `OneOf` option, normalised to the declared spelling.
    pub fn get_choice(&self, key: &str) -> Option<&'static str> {
        let value = self.get(key)?;
        match self.spec(key)?.kind {
            OptionKind::OneOf(values) => values
                .iter()
                .copied()
                .find(|v| v.eq_ignore_ascii_case(value)),
            _ => None,
        }
    }

    fn spec(&self, key: &str) -> Option<&'a OptionSpec> {
        self.specs.iter().find(|s| s.key == key)
    }

    /// An error about the value of `key`.
    pub fn invalid(&self, key: &str, reason: impl Into<String>) -> SqlError {
        let entry = self.entry(key);
        SqlError::InvalidOption {
            key: key.to_string(),
            value: entry
                .map(|e| shown_value(key, &e.value))
                .unwrap_or_default(),
            reason: reason.into(),
            location: entry.and_then(|e| e.value_location).or(self.table_location),
        }
    }

    /// The table these options belong to.
    pub fn table(&self) -> &str {
        &self.table
    }
}

fn check_kind(spec: &OptionSpec, entry: &OptionEntry) -> Result<()> {
    let invalid = |reason: String| SqlError::InvalidOption {
        key: entry.key.clone(),
        value: shown_value(&entry.key, &entry.value),
        reason,
        location: entry.value_location,
    };
    match spec.kind {
        OptionKind::Text => Ok(()),
        OptionKind::Bool => {
            if entry.value.eq_ignore_ascii_case("true") || entry.value.eq_ignore_ascii_case("false")
            {
                Ok(())
            } else {
                Err(invalid("expected true or false".into()))
            }
        }
        OptionKind::Integer => entry
            .value
            .trim()
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| invalid("expected a whole number".into())),
        OptionKind::OneOf(values) => {
            if values.iter().any(|v| v.eq_ignore_ascii_case(&entry.value)) {
                Ok(())
            } else {
                let hint = nearest(&entry.value, values.iter().copied())
                    .map(|n| format!("; did you mean '{n}'?"))
                    .unwrap_or_default();
                Err(invalid(format!(
                    "expected one of {}{hint}",
                    values.join(", ")
                )))
            }
        }
    }
}

/// A markdown table of `specs`, for the README.
pub fn options_markdown(specs: &[OptionSpec]) -> String {
    let mut out = String::from(
        "| option | values | default | applies to | meaning |\n|---|---|---|---|---|\n",
    );
    for spec in specs {
        let default = match (spec.required, spec.default) {
            (true, _) => "required".to_string(),
            (false, Some(d)) => format!("`{d}`"),
            (false, None) => "".to_string(),
        };
        let scope = match spec.scope {
            OptionScope::Table => "source, sink",
            OptionScope::Source => "source",
            OptionScope::Sink => "sink",
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            spec.key,
            spec.kind.describe(),
            default,
            scope,
            spec.description
        ));
    }
    out
}
