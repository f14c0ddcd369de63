//! Errors of the SQL layer, with the place in the SQL text they refer to.

use std::fmt;

use datafusion::error::DataFusionError;

/// A place in SQL text: 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// Line, from 1.
    pub line: u64,
    /// Column (in characters), from 1.
    pub column: u64,
}

impl Location {
    /// Line 1, column 1.
    pub const START: Location = Location { line: 1, column: 1 };

    /// Moves a location that is relative to a statement to the script it came from,
    /// where the statement starts at `base`.
    pub fn offset_by(self, base: Location) -> Location {
        if self.line <= 1 {
            Location {
                line: base.line,
                column: base.column + self.column.saturating_sub(1),
            }
        } else {
            Location {
                line: base.line + self.line - 1,
                column: self.column,
            }
        }
    }

    /// From sqlparser's location; sqlparser uses 0 for "unknown".
    pub fn from_parser(loc: datafusion::sql::sqlparser::tokenizer::Location) -> Option<Location> {
        (loc.line > 0).then_some(Location {
            line: loc.line,
            column: loc.column.max(1),
        })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Errors of parsing, validating and planning SQL.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The text is not valid SQL.
    #[error("syntax error: {message}")]
    Syntax {
        /// What the parser expected.
        message: String,
        /// Where.
        location: Option<Location>,
    },

    /// A `WITH` option key that the connector does not know.
    #[error("unknown option '{key}' for the {connector} connector{}", suggestion_text(.suggestion))]
    UnknownOption {
        /// The key as written.
        key: String,
        /// The connector.
        connector: String,
        /// The closest valid key, if one is close.
        suggestion: Option<String>,
        /// Where the key is.
        location: Option<Location>,
    },

    /// A key of another system's connector (Flink's) that Magnetar does not use.
    #[error(
        "'{key}' is a key of Flink's {connector} connector that Magnetar does not use; remove it (see the {connector} connector's options in the README)"
    )]
    UnusedOption {
        /// The key as written.
        key: String,
        /// The connector.
        connector: String,
        /// Where the key is.
        location: Option<Location>,
    },

    /// A `WITH` option with a value it cannot take.
    #[error("invalid value '{value}' for option '{key}': {reason}")]
    InvalidOption {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// Why it is not valid (and what is).
        reason: String,
        /// Where the value is.
        location: Option<Location>,
    },

    /// A required option is missing.
    #[error("table '{table}' needs option '{key}' ({what})")]
    MissingOption {
        /// The table.
        table: String,
        /// The missing key.
        key: String,
        /// What it is for.
        what: String,
        /// Where the table is declared.
        location: Option<Location>,
    },

    /// A table that does not exist.
    #[error("table '{name}' does not exist{}", suggestion_text(.suggestion))]
    UnknownTable {
        /// The name.
        name: String,
        /// The closest existing table.
        suggestion: Option<String>,
        /// Where.
        location: Option<Location>,
    },

    /// A table that exists already.
    #[error("table '{name}' already exists (use CREATE TABLE IF NOT EXISTS, or DROP TABLE first)")]
    TableExists {
        /// The name.
        name: String,
        /// Where.
        location: Option<Location>,
    },

    /// A view that does not exist.
    #[error("view '{name}' does not exist{}", suggestion_text(.suggestion))]
    UnknownView {
        /// The name.
        name: String,
        /// The closest existing view.
        suggestion: Option<String>,
        /// Where.
        location: Option<Location>,
    },

    /// A name already taken by a table or a view.
    #[error("'{name}' is already a {kind}; DROP {} {name} first, or choose another name", kind.to_ascii_uppercase())]
    NameTaken {
        /// The name.
        name: String,
        /// `table` or `view`.
        kind: &'static str,
        /// Where.
        location: Option<Location>,
    },

    /// A table or view that a view still reads.
    #[error("{kind} '{name}' is read by {}; drop {} first", readers_text(.views), if .views.len() == 1 { "it" } else { "them" })]
    StillRead {
        /// The table or view.
        name: String,
        /// `table` or `view`.
        kind: &'static str,
        /// The views that read it.
        views: Vec<String>,
        /// Where.
        location: Option<Location>,
    },

    /// Valid SQL that Magnetar does not run (yet).
    #[error("{what}")]
    Unsupported {
        /// What is not supported, and what to do instead.
        what: String,
        /// Where.
        location: Option<Location>,
    },

    /// A table declares no payload column and has no registry schema to take them from.
    #[error(
        "table '{table}' declares no columns; declare them, or read them from the topic's schema registry entry ('connector'='pulsar' with 'admin-url')"
    )]
    NoColumns {
        /// The table.
        table: String,
        /// Where.
        location: Option<Location>,
    },

    /// Declared columns and the topic's registry schema disagree, or the schema cannot
    /// become columns.
    #[error("table '{table}': {message}")]
    Schema {
        /// The table.
        table: String,
        /// What disagrees, naming the field and topic.
        message: String,
        /// Where.
        location: Option<Location>,
    },

    /// An error from DataFusion's planner.
    #[error("{message}")]
    Plan {
        /// DataFusion's message.
        message: String,
        /// Where, when DataFusion knows.
        location: Option<Location>,
        /// The underlying error.
        #[source]
        source: Box<DataFusionError>,
    },
}

fn suggestion_text(s: &Option<String>) -> String {
    match s {
        Some(s) => format!("; did you mean '{s}'?"),
        None => String::new(),
    }
}

/// "view 'v'" or "views 'v', 'w'".
fn readers_text(views: &[String]) -> String {
    let names: Vec<String> = views.iter().map(|v| format!("'{v}'")).collect();
    match names.len() {
        1 => format!("view {}", names[0]),
        _ => format!("views {}", names.join(", ")),
    }
}

impl SqlError {
    /// Where in the statement the error is, if known.
    pub fn location(&self) -> Option<Location> {
        match self {
            SqlError::Syntax { location, .. }
            | SqlError::UnknownOption { location, .. }
            | SqlError::UnusedOption { location, .. }
            | SqlError::InvalidOption { location, .. }
            | SqlError::MissingOption { location, .. }
            | SqlError::UnknownTable { location, .. }
            | SqlError::TableExists { location, .. }
            | SqlError::UnknownView { location, .. }
            | SqlError::NameTaken { location, .. }
            | SqlError::StillRead { location, .. }
            | SqlError::Unsupported { location, .. }
            | SqlError::Schema { location, .. }
            | SqlError::NoColumns { location, .. }
            | SqlError::Plan { location, .. } => *location,
        }
    }

    /// Moves the error's location from statement-relative to script-relative.
    pub fn offset_by(mut self, base: Location) -> Self {
        let slot = match &mut self {
            SqlError::Syntax { location, .. }
            | SqlError::UnknownOption { location, .. }
            | SqlError::UnusedOption { location, .. }
            | SqlError::InvalidOption { location, .. }
            | SqlError::MissingOption { location, .. }
            | SqlError::UnknownTable { location, .. }
            | SqlError::TableExists { location, .. }
            | SqlError::UnknownView { location, .. }
            | SqlError::NameTaken { location, .. }
            | SqlError::StillRead { location, .. }
            | SqlError::Unsupported { location, .. }
            | SqlError::Schema { location, .. }
            | SqlError::NoColumns { location, .. }
            | SqlError::Plan { location, .. } => location,
        };
        *slot = slot.map(|l| l.offset_by(base));
        self
    }

    /// A syntax error at `location`.
    pub fn syntax(message: impl Into<String>, location: Option<Location>) -> Self {
        SqlError::Syntax {
            message: message.into(),
            location,
        }
    }

    /// An unsupported-feature error at `location`.
    pub fn unsupported(what: impl Into<String>, location: Option<Location>) -> Self {
        SqlError::Unsupported {
            what: what.into(),
            location,
        }
    }
}

impl From<DataFusionError> for SqlError {
    fn from(e: DataFusionError) -> Self {
        let location = e
            .diagnostic()
            .and_then(|d| d.span)
            .map(|s| Location {
                line: s.start.line,
                column: s.start.column,
            })
            .filter(|l| l.line > 0);
        let message = match &e {
            DataFusionError::SQL(inner, _) => parser_message(&inner.to_string()),
            other => strip_prefixes(other),
        };
        SqlError::Plan {
            message,
            location,
            source: Box::new(e),
        }
    }
}

/// DataFusion's message without its "Error during planning:" style prefixes.
fn strip_prefixes(e: &DataFusionError) -> String {
    let text = e.strip_backtrace();
    for prefix in [
        "Error during planning: ",
        "Schema error: ",
        "This feature is not implemented: ",
        "Execution error: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    text
}

/// sqlparser's message without the "sql parser error:" prefix and trailing position.
pub(crate) fn parser_message(text: &str) -> String {
    let text = text
        .strip_prefix("sql parser error: ")
        .unwrap_or(text)
        .to_string();
    match text.find(" at Line: ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Finds the closest candidate to `word` (for "did you mean" hints).
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&word, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

/// Result alias for this crate.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_locations_into_the_script() {
        let base = Location {
            line: 10,
            column: 5,
        };
        assert_eq!(
            Location { line: 1, column: 3 }.offset_by(base),
            Location {
                line: 10,
                column: 7
            }
        );
        assert_eq!(
            Location { line: 2, column: 3 }.offset_by(base),
            Location {
                line: 11,
                column: 3
            }
        );
    }

    #[test]
    fn suggests_near_keys_only() {
        let keys = [
            "source.subscription-name",
            "source.subscription-type",
            "topics",
        ];
        assert_eq!(
            nearest("source.subscription-nam", keys).as_deref(),
            Some("source.subscription-name")
        );
        assert_eq!(nearest("topic", keys).as_deref(), Some("topics"));
        assert_eq!(nearest("completely-different", keys), None);
    }

    #[test]
    fn strips_parser_positions() {
        assert_eq!(
            parser_message("sql parser error: Expected: ), found: x at Line: 1, Column: 5"),
            "Expected: ), found: x"
        );
    }
}
