//! Tab completion: keywords, table and column names, `WITH` option keys and their values,
//! `SET` keys and values. Works on the statement being typed, up to the cursor.

use magnetar::sql::options::{
    CONNECTORS, FILESYSTEM_OPTIONS, MEMORY_OPTIONS, OptionKind, OptionSpec, PULSAR_OPTIONS,
};

/// Keywords offered for completion (the SQL Magnetar runs, not every word the parser knows).
pub const KEYWORDS: &[&str] = &[
    "ALL",
    "AND",
    "AS",
    "ASC",
    "BETWEEN",
    "BIGINT",
    "BOOLEAN",
    "BY",
    "CASE",
    "CAST",
    "CREATE",
    "CUMULATE",
    "DATE",
    "DECIMAL",
    "DESC",
    "DESCRIBE",
    "DESCRIPTOR",
    "DISTINCT",
    "DOUBLE",
    "DROP",
    "ELSE",
    "END",
    "ENFORCED",
    "EXISTS",
    "EXPLAIN",
    "FALSE",
    "FLOAT",
    "FOR",
    "FROM",
    "FULL",
    "GROUP",
    "HAVING",
    "HOP",
    "IF",
    "IN",
    "INNER",
    "INSERT",
    "INT",
    "INTEGER",
    "INTERVAL",
    "INTO",
    "IS",
    "JOB",
    "JOBS",
    "JOIN",
    "KEY",
    "LEFT",
    "LIKE",
    "LIMIT",
    "METADATA",
    "NOT",
    "NULL",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "OVER",
    "PARTITION",
    "PRIMARY",
    "RESET",
    "RIGHT",
    "ROW_NUMBER",
    "SELECT",
    "SESSION",
    "SET",
    "SHOW",
    "STOP",
    "STRING",
    "TABLE",
    "TABLES",
    "THEN",
    "TIMESTAMP",
    "TIMESTAMP_LTZ",
    "TRUE",
    "TUMBLE",
    "UNION",
    "VARCHAR",
    "VIEW",
    "VIEWS",
    "VIRTUAL",
    "WATERMARK",
    "WHEN",
    "WHERE",
    "WITH",
];

/// What completion knows of the session.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Tables with their column names.
    pub tables: Vec<(String, Vec<String>)>,
    /// Settings (`SET` keys) with their enumerated values.
    pub settings: Vec<(&'static str, &'static [&'static str])>,
}

/// One completion: what replaces the typed word, and what the list shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Shown in the list of choices.
    pub display: String,
    /// Inserted in place of the word.
    pub replacement: String,
}

/// Where the word under the cursor starts, and its completions.
pub fn complete(buffer: &str, pos: usize, catalog: &Catalog) -> (usize, Vec<Completion>) {
    let before = &buffer[..pos.min(buffer.len())];
    let after = &buffer[pos.min(buffer.len())..];
    let scan = scan(before);
    let statement = &before[scan.statement_start..];
    match scan.state {
        State::Comment | State::QuotedIdentifier => (pos, Vec::new()),
        State::String(open) => {
            let word = &before[open + 1..];
            let prefix = &before[scan.statement_start..open];
            let close = if after.starts_with('\'') { "" } else { "'" };
            let choices = string_choices(statement, prefix, catalog);
            let items = choices
                .into_iter()
                .filter(|c| starts_with_ignore_case(&c.text, word))
                .map(|c| Completion {
                    replacement: match c.role {
                        Role::Key => format!("{}{close} = '", c.text),
                        Role::Value => format!("{}{close}", c.text),
                    },
                    display: c.text,
                })
                .collect();
            (open + 1, items)
        }
        State::Code => {
            let start = before
                .char_indices()
                .rev()
                .take_while(|(_, c)| c.is_alphanumeric() || *c == '_' || *c == '.')
                .last()
                .map_or(before.len(), |(i, _)| i);
            let word = &before[start..];
            let words = previous_words(&before[scan.statement_start..start]);
            // Tables named after the cursor count too (`SELECT u| FROM clicks`).
            let whole = &buffer[scan.statement_start..];
            (start, code_choices(word, whole, &words, catalog))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Code,
    /// Inside a `'string'` that opened at this byte.
    String(usize),
    QuotedIdentifier,
    Comment,
}

struct Scan {
    state: State,
    statement_start: usize,
}

/// Where the text before the cursor stands: in code, a string, an identifier or a comment,
/// and where its statement starts (after the last top-level `;`).
fn scan(text: &str) -> Scan {
    let mut state = State::Code;
    let mut statement_start = 0;
    let mut chars = text.char_indices().peekable();
    let mut line_comment = false;
    while let Some((i, c)) = chars.next() {
        match state {
            State::Code => match c {
                '\'' => state = State::String(i),
                '"' => state = State::QuotedIdentifier,
                '-' if chars.peek().is_some_and(|(_, n)| *n == '-') => {
                    chars.next();
                    state = State::Comment;
                    line_comment = true;
                }
                '/' if chars.peek().is_some_and(|(_, n)| *n == '*') => {
                    chars.next();
                    state = State::Comment;
                    line_comment = false;
                }
                ';' => statement_start = i + 1,
                _ => {}
            },
            State::String(_) => {
                if c == '\'' {
                    // `''` is an escaped quote inside the string.
                    if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                        chars.next();
                    } else {
                        state = State::Code;
                    }
                }
            }
            State::QuotedIdentifier => {
                if c == '"' {
                    state = State::Code;
                }
            }
            State::Comment => {
                if line_comment && c == '\n' {
                    state = State::Code;
                } else if !line_comment && c == '*' && chars.peek().is_some_and(|(_, n)| *n == '/')
                {
                    chars.next();
                    state = State::Code;
                }
            }
        }
    }
    Scan {
        state,
        statement_start,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Key,
    Value,
}

struct Choice {
    text: String,
    role: Role,
}

/// Completions inside a string: a setting or option key, or one of its values.
fn string_choices(statement: &str, before_quote: &str, catalog: &Catalog) -> Vec<Choice> {
    let head = before_quote.trim_end();
    let first_word = statement
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let is_set = first_word == "SET" || first_word == "RESET";
    if let Some(rest) = head.strip_suffix('=') {
        // A value: the key is the string before `=`.
        let Some(key) = last_string(rest.trim_end()) else {
            return Vec::new();
        };
        let values: Vec<&str> = if is_set {
            catalog
                .settings
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&key))
                .map(|(_, v)| v.to_vec())
                .unwrap_or_default()
        } else if key.eq_ignore_ascii_case("connector") {
            CONNECTORS.to_vec()
        } else {
            option_specs(statement)
                .iter()
                .find(|s| s.key.eq_ignore_ascii_case(&key))
                .map(|s| match s.kind {
                    OptionKind::OneOf(v) => v.to_vec(),
                    OptionKind::Bool => vec!["true", "false"],
                    OptionKind::Text | OptionKind::Integer => Vec::new(),
                })
                .unwrap_or_default()
        };
        return values
            .into_iter()
            .map(|v| Choice {
                text: v.to_string(),
                role: Role::Value,
            })
            .collect();
    }
    if is_set {
        return catalog
            .settings
            .iter()
            .map(|(k, _)| Choice {
                text: k.to_string(),
                role: if first_word == "SET" {
                    Role::Key
                } else {
                    Role::Value
                },
            })
            .collect();
    }
    let in_with = statement.to_ascii_uppercase().contains("WITH")
        && (head.ends_with('(') || head.ends_with(','));
    if !in_with {
        return Vec::new();
    }
    let given = given_keys(statement);
    let mut keys: Vec<&str> = option_specs(statement).iter().map(|s| s.key).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !given.iter().any(|g| g.eq_ignore_ascii_case(k)))
        .map(|k| Choice {
            text: k.to_string(),
            role: Role::Key,
        })
        .collect()
}

/// The options of the statement's connector (`'connector' = '...'`), or of every connector
/// while none is named yet.
fn option_specs(statement: &str) -> Vec<&'static OptionSpec> {
    let connector = option_value(statement, "connector");
    let all: [(&str, &[OptionSpec]); 3] = [
        ("pulsar", PULSAR_OPTIONS),
        ("filesystem", FILESYSTEM_OPTIONS),
        ("memory", MEMORY_OPTIONS),
    ];
    all.iter()
        .filter(|(name, _)| {
            connector
                .as_deref()
                .is_none_or(|c| c.eq_ignore_ascii_case(name))
        })
        .flat_map(|(_, specs)| specs.iter())
        .collect()
}

/// The quoted strings of the statement that stand before an `=`: option keys given.
fn given_keys(statement: &str) -> Vec<String> {
    let strings = quoted_strings(statement);
    strings
        .iter()
        .filter(|(_, end)| statement[*end..].trim_start().starts_with('='))
        .map(|(s, _)| s.clone())
        .collect()
}

/// The value given to `key` in the statement, if any.
fn option_value(statement: &str, key: &str) -> Option<String> {
    let strings = quoted_strings(statement);
    strings.windows(2).find_map(|w| {
        let ((k, end), (v, _)) = (&w[0], &w[1]);
        (k.eq_ignore_ascii_case(key) && statement[*end..].trim_start().starts_with('='))
            .then(|| v.clone())
    })
}

/// Every complete `'string'` with the byte after its closing quote.
fn quoted_strings(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (&mut current, c) {
            (None, '\'') => current = Some(String::new()),
            (Some(s), '\'') => {
                if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                    chars.next();
                    s.push('\'');
                } else {
                    out.push((std::mem::take(s), i + 1));
                    current = None;
                }
            }
            (Some(s), c) => s.push(c),
            (None, _) => {}
        }
    }
    out
}

/// The string that ends `text` (`... 'key'`), if it ends with one.
fn last_string(text: &str) -> Option<String> {
    quoted_strings(text)
        .last()
        .filter(|(_, end)| *end == text.len())
        .map(|(s, _)| s.clone())
}

/// The two words before the cursor's word, upper-cased (`["CREATE", "TABLE"]`).
fn previous_words(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ',')
        .filter(|w| !w.is_empty())
        .rev()
        .take(2)
        .map(str::to_ascii_uppercase)
        .collect()
}

/// Completions outside strings: table names after `FROM`/`JOIN`/`INTO`/`TABLE`/`DESCRIBE`,
/// columns after `table.`, else keywords, columns of the statement's tables and tables.
fn code_choices(
    word: &str,
    statement: &str,
    previous: &[String],
    catalog: &Catalog,
) -> Vec<Completion> {
    let plain = |text: &str| Completion {
        display: text.to_string(),
        replacement: text.to_string(),
    };
    let last = previous.first().map(String::as_str).unwrap_or_default();
    let before_last = previous.get(1).map(String::as_str).unwrap_or_default();
    let wants_table = matches!(last, "FROM" | "JOIN" | "INTO" | "DESCRIBE" | "DESC")
        || (last == "TABLE" && before_last != "CREATE");
    if last == "TABLE" && before_last == "CREATE" {
        // A new table's name.
        return Vec::new();
    }
    if wants_table {
        return catalog
            .tables
            .iter()
            .filter(|(t, _)| starts_with_ignore_case(t, word))
            .map(|(t, _)| plain(t))
            .collect();
    }
    if let Some((qualifier, column)) = word.rsplit_once('.') {
        return catalog
            .tables
            .iter()
            .filter(|(t, _)| t.eq_ignore_ascii_case(qualifier))
            .flat_map(|(_, columns)| columns)
            .filter(|c| starts_with_ignore_case(c, column))
            .map(|c| plain(&format!("{qualifier}.{c}")))
            .collect();
    }
    if word.is_empty() {
        return Vec::new();
    }
    let lower = word.chars().next().is_some_and(char::is_lowercase);
    let mut out: Vec<Completion> = KEYWORDS
        .iter()
        .filter(|k| starts_with_ignore_case(k, word))
        .map(|k| {
            plain(&if lower {
                k.to_ascii_lowercase()
            } else {
                k.to_string()
            })
        })
        .collect();
    let mentioned: Vec<&(String, Vec<String>)> = catalog
        .tables
        .iter()
        .filter(|(t, _)| contains_word(statement, t))
        .collect();
    let mut columns: Vec<&String> = mentioned
        .iter()
        .flat_map(|(_, columns)| columns)
        .filter(|c| starts_with_ignore_case(c, word))
        .collect();
    columns.sort();
    columns.dedup();
    out.extend(columns.into_iter().map(|c| plain(c)));
    out.extend(
        catalog
            .tables
            .iter()
            .filter(|(t, _)| starts_with_ignore_case(t, word))
            .map(|(t, _)| plain(t)),
    );
    out
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.is_char_boundary(prefix.len())
        && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn contains_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|w| w.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog {
            tables: vec![
                (
                    "clicks".into(),
                    vec!["user_id".into(), "url".into(), "ts".into()],
                ),
                (
                    "fraud_alerts".into(),
                    vec!["user_id".into(), "clicks".into()],
                ),
            ],
            settings: vec![
                (
                    "sql-client.execution.result-mode",
                    &["table", "tableau", "changelog"],
                ),
                ("pipeline.name", &[]),
            ],
        }
    }

    fn replacements(buffer: &str) -> Vec<String> {
        let (_, items) = complete(buffer, buffer.len(), &catalog());
        items.into_iter().map(|c| c.replacement).collect()
    }

    #[test]
    fn tables_after_from_and_into() {
        assert_eq!(replacements("SELECT * FROM cl"), ["clicks"]);
        assert_eq!(replacements("INSERT INTO fr"), ["fraud_alerts"]);
        assert_eq!(
            replacements("SELECT * FROM TABLE(TUMBLE(TABLE c"),
            ["clicks"]
        );
        assert!(replacements("CREATE TABLE c").is_empty());
    }

    #[test]
    fn columns_of_the_statements_tables_and_keywords_in_the_users_case() {
        // No table named yet: no columns to offer.
        assert!(replacements("SELECT us").is_empty());
        let (start, items) = complete("SELECT u FROM clicks", 8, &catalog());
        assert_eq!(start, 7);
        let texts: Vec<String> = items.into_iter().map(|c| c.replacement).collect();
        assert!(
            texts.contains(&"user_id".to_string()) && texts.contains(&"url".to_string()),
            "{texts:?}"
        );
        assert!(texts.contains(&"union".to_string()), "{texts:?}");
        assert_eq!(
            replacements("SELECT clicks.u"),
            ["clicks.user_id", "clicks.url"]
        );
        assert_eq!(replacements("sel"), ["select"]);
        assert_eq!(replacements("SEL"), ["SELECT"]);
    }

    #[test]
    fn option_keys_of_the_named_connector_and_their_values() {
        let create = "CREATE TABLE t (a INT) WITH ('connector' = 'pulsar', 'sou";
        let keys = replacements(create);
        assert!(
            keys.contains(&"source.start.message-id' = '".to_string()),
            "{keys:?}"
        );
        assert!(keys.iter().all(|k| k.starts_with("source.")), "{keys:?}");
        // Keys already given are not offered again; another connector's keys are not.
        let keys = replacements("CREATE TABLE t (a INT) WITH ('connector' = 'memory', '");
        assert!(keys.contains(&"partitions' = '".to_string()), "{keys:?}");
        assert!(!keys.iter().any(|k| k.starts_with("connector")), "{keys:?}");
        assert!(!keys.iter().any(|k| k.starts_with("topics")), "{keys:?}");
        assert_eq!(
            replacements("CREATE TABLE t (a INT) WITH ('connector' = 'pul"),
            ["pulsar'"]
        );
        let values =
            replacements("CREATE TABLE t (a INT) WITH ('connector' = 'pulsar', 'format' = '");
        assert!(
            values.contains(&"avro'".to_string()) && values.contains(&"json'".to_string()),
            "{values:?}"
        );
        // The closing quote is not doubled when it is already there.
        let buffer = "CREATE TABLE t (a INT) WITH ('connector' = 'pul')";
        let (_, items) = complete(buffer, buffer.len() - 2, &catalog());
        assert_eq!(items[0].replacement, "pulsar");
    }

    #[test]
    fn settings_and_their_values() {
        assert_eq!(
            replacements("SET 'sql-client.exec"),
            ["sql-client.execution.result-mode' = '"]
        );
        assert_eq!(
            replacements("SET 'sql-client.execution.result-mode' = 'ch"),
            ["changelog'"]
        );
        assert_eq!(replacements("RESET 'pipe"), ["pipeline.name'"]);
    }

    #[test]
    fn nothing_inside_comments_and_semicolons_in_strings_do_not_split() {
        assert!(replacements("SELECT 1 -- FROM cl").is_empty());
        assert_eq!(replacements("SELECT ';' AS x FROM cl"), ["clicks"]);
        assert_eq!(replacements("SELECT 1; SELECT * FROM fr"), ["fraud_alerts"]);
    }
}
