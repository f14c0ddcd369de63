//! Splitting SQL text into statements, keeping where each one starts.
//!
//! Splitting uses sqlparser's tokenizer, so a `;` inside a string, a quoted identifier or a
//! comment does not end a statement.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{Location, Result, SqlError, parser_message};

/// One statement of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptStatement {
    /// The statement's text, without the terminating `;`.
    pub text: String,
    /// Where its first token is in the script.
    pub start: Location,
}

fn tokenize(sql: &str) -> Result<Vec<TokenWithSpan>> {
    Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| {
            SqlError::syntax(
                parser_message(&e.message),
                Some(Location {
                    line: e.location.line,
                    column: e.location.column,
                }),
            )
        })
}

fn is_blank(token: &Token) -> bool {
    matches!(token, Token::Whitespace(_) | Token::EOF)
}

/// Byte offsets where each line starts, to turn token locations into slices.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, starts }
    }

    fn offset(&self, loc: Location) -> usize {
        let Some(&line_start) = self.starts.get(loc.line.saturating_sub(1) as usize) else {
            return self.text.len();
        };
        let line = &self.text[line_start..];
        let column = loc.column.saturating_sub(1) as usize;
        line_start
            + line
                .char_indices()
                .nth(column)
                .map(|(i, _)| i)
                .unwrap_or(line.len())
    }
}

/// Decides which semicolons end a statement: all of them, except those between the
/// `BEGIN` and the `END` of Flink's `EXECUTE STATEMENT SET BEGIN ...; ...; END`.
#[derive(Default)]
struct StatementEnds {
    /// The first words of the current statement, upper-cased (up to four).
    opening: Vec<String>,
    /// Inside a statement set's `BEGIN ... END`.
    in_set: bool,
    /// The last significant token was a `;` inside the set.
    after_semicolon: bool,
    /// The set's `END` was seen: the next `;` ends the statement.
    closing: bool,
}

const STATEMENT_SET: [&str; 4] = ["EXECUTE", "STATEMENT", "SET", "BEGIN"];

impl StatementEnds {
    /// Feeds a significant token; true when it is a `;` that ends the statement.
    fn ends(&mut self, token: &Token) -> bool {
        if *token == Token::SemiColon {
            if self.in_set && !self.closing {
                self.after_semicolon = true;
                return false;
            }
            *self = Self::default();
            return true;
        }
        if let Token::Word(w) = token {
            if self.in_set && self.after_semicolon && w.value.eq_ignore_ascii_case("END") {
                self.closing = true;
            }
            let explain = self.opening.is_empty() && w.value.eq_ignore_ascii_case("EXPLAIN");
            if self.opening.len() < STATEMENT_SET.len() && !self.in_set && !explain {
                self.opening.push(w.value.to_ascii_uppercase());
                self.in_set = self.opening == STATEMENT_SET;
            }
        } else if self.opening.len() < STATEMENT_SET.len() {
            // Not a statement set: stop looking.
            self.opening.push(String::new());
        }
        self.after_semicolon = false;
        false
    }
}

/// Splits `script` at top-level semicolons. Blank statements (and comment-only ones) are
/// dropped; a last statement without `;` is kept. A statement set (`EXECUTE STATEMENT SET
/// BEGIN ...; ...; END;`) is one statement.
pub fn split_statements(script: &str) -> Result<Vec<ScriptStatement>> {
    let tokens = tokenize(script)?;
    let index = LineIndex::new(script);
    let mut statements = Vec::new();
    let mut first: Option<&TokenWithSpan> = None;
    let mut last: Option<&TokenWithSpan> = None;
    let mut ends = StatementEnds::default();
    let mut flush = |first: Option<&TokenWithSpan>, last: Option<&TokenWithSpan>| {
        if let (Some(first), Some(last)) = (first, last) {
            let start = Location {
                line: first.span.start.line,
                column: first.span.start.column,
            };
            let end = Location {
                line: last.span.end.line,
                column: last.span.end.column,
            };
            let (from, to) = (index.offset(start), index.offset(end));
            statements.push(ScriptStatement {
                text: script[from..to.max(from)].to_string(),
                start,
            });
        }
    };
    for token in &tokens {
        match &token.token {
            t if is_blank(t) => {}
            t if ends.ends(t) => {
                flush(first.take(), last.take());
            }
            _ => {
                if first.is_none() {
                    first = Some(token);
                }
                last = Some(token);
            }
        }
    }
    flush(first, last);
    Ok(statements)
}

/// Whether `input` ends a statement: its last token (ignoring whitespace and comments) is a
/// `;` outside any string, quoted identifier or comment.
pub fn ends_statement(input: &str) -> bool {
    let Ok(tokens) = tokenize(input) else {
        // An unterminated string or comment: keep reading lines.
        return false;
    };
    let mut ends = StatementEnds::default();
    let mut ended = false;
    for token in tokens.iter().filter(|t| !is_blank(&t.token)) {
        ended = ends.ends(&token.token);
    }
    ended
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let script = "SELECT ';' AS a; -- c;omment\n\nSELECT \"x;y\" /* ; */ FROM t;\n  SELECT 3";
        let stmts = split_statements(script).expect("split");
        let texts: Vec<&str> = stmts.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "SELECT ';' AS a",
                "SELECT \"x;y\" /* ; */ FROM t",
                "SELECT 3"
            ]
        );
        assert_eq!(stmts[0].start, Location { line: 1, column: 1 });
        assert_eq!(stmts[1].start, Location { line: 3, column: 1 });
        assert_eq!(stmts[2].start, Location { line: 4, column: 3 });
    }

    #[test]
    fn drops_blank_and_comment_only_statements() {
        let stmts = split_statements(";; -- nothing\n;\n/* x */").expect("split");
        assert!(stmts.is_empty());
    }

    #[test]
    fn handles_multibyte_text() {
        let stmts = split_statements("SELECT 'ünï;cödé';SELECT 2").expect("split");
        assert_eq!(stmts[0].text, "SELECT 'ünï;cödé'");
        assert_eq!(stmts[1].text, "SELECT 2");
        assert_eq!(stmts[1].start.column, 19);
    }

    #[test]
    fn knows_when_a_statement_ends() {
        assert!(ends_statement("SELECT 1;"));
        assert!(ends_statement("SELECT 1; -- done\n"));
        assert!(!ends_statement("SELECT ';'"));
        assert!(!ends_statement("SELECT 'a;"));
        assert!(!ends_statement("SELECT 1 /* ; */"));
        assert!(!ends_statement(""));
    }

    #[test]
    fn a_statement_set_is_one_statement() {
        let script = "SET 'a' = 'b';\nEXECUTE STATEMENT SET\nBEGIN\n  INSERT INTO x SELECT 1;\n  INSERT INTO y SELECT ';';\nEND;\nSELECT 2;";
        let stmts = split_statements(script).expect("split");
        let texts: Vec<&str> = stmts.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "SET 'a' = 'b'",
                "EXECUTE STATEMENT SET\nBEGIN\n  INSERT INTO x SELECT 1;\n  INSERT INTO y SELECT ';';\nEND",
                "SELECT 2"
            ]
        );
        assert!(!ends_statement(
            "execute statement set begin insert into x select 1;"
        ));
        assert!(!ends_statement(
            "EXECUTE STATEMENT SET BEGIN INSERT INTO x SELECT 1; END"
        ));
        assert!(ends_statement(
            "EXECUTE STATEMENT SET BEGIN INSERT INTO x SELECT 1; END;"
        ));
        assert!(!ends_statement(
            "EXPLAIN EXECUTE STATEMENT SET BEGIN INSERT INTO x SELECT 1;"
        ));
        // A column named `end` in a plain statement changes nothing.
        assert!(ends_statement("SELECT a AS end FROM t;"));
    }

    #[test]
    fn unterminated_strings_are_located_errors() {
        let err = split_statements("SELECT 1;\nSELECT 'oops").expect_err("unterminated");
        assert_eq!(err.location().map(|l| l.line), Some(2));
    }
}
