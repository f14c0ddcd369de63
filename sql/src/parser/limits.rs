//! Limits on a statement's shape, checked on its tokens before anything recursive sees it:
//! parsing, planning, optimizing and evaluating an expression recurse once per level, so a
//! statement nested thousands deep (`1+1+...`, thousands of `AND`s or `UNION ALL`s, deeply
//! nested `ARRAY<...>`) would overflow the stack and take the process down. Past a limit the
//! statement fails, with the place, and the process goes on.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::{DIALECT, location_of};
use crate::error::{Result, SqlError};

/// Deepest an expression may nest through operators (`a + b + ...`, `x::INT::INT`, `p AND q AND
/// ...`, counting the enclosing expressions' too): each is a level of the expression tree that
/// planning and evaluation recurse through. Measured: about 1000 levels overflow a 2 MiB thread
/// stack in a debug build.
pub const MAX_OPERATOR_CHAIN: usize = 256;
/// Deepest nesting of `ARRAY<`, `MAP<`, `ROW<` and `MULTISET<` types.
pub const MAX_TYPE_NESTING: usize = 32;
/// Most `UNION`, `INTERSECT` and `EXCEPT` operations in one statement.
pub const MAX_SET_OPERATIONS: usize = 500;

/// Checks `sql` against the limits; a statement that does not tokenize is left to the parser.
pub fn check_statement_shape(sql: &str) -> Result<()> {
    let Ok(tokens) = Tokenizer::new(&DIALECT, sql).tokenize_with_location() else {
        return Ok(());
    };
    let tokens: Vec<_> = tokens
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    // One level per parenthesis and per CASE ... END.
    let mut levels: Vec<Level> = vec![Level::default()];
    let mut type_depth = 0usize;
    let mut set_operations = 0usize;
    for (i, token) in tokens.iter().enumerate() {
        let previous = i.checked_sub(1).map(|p| &tokens[p].token);
        let next = tokens.get(i + 1).map(|t| &t.token);
        let step = match &token.token {
            Token::LParen => Step::Open,
            Token::RParen => Step::Close,
            Token::Comma | Token::SemiColon => Step::Separator,
            // `ARRAY<INT>`: a type bracket when a type word comes before and a name after.
            Token::Lt
                if previous.is_some_and(is_type_word) && matches!(next, Some(Token::Word(_))) =>
            {
                type_depth += 1;
                if type_depth > MAX_TYPE_NESTING {
                    return Err(SqlError::unsupported(
                        format!("types nested more than {MAX_TYPE_NESTING} deep are not supported"),
                        location_of(token),
                    ));
                }
                Step::Other
            }
            Token::Gt if type_depth > 0 => {
                type_depth -= 1;
                Step::Other
            }
            Token::ShiftRight if type_depth > 0 => {
                type_depth = type_depth.saturating_sub(2);
                Step::Other
            }
            Token::Word(w) => match w.keyword {
                Keyword::AND | Keyword::OR => Step::Logical,
                Keyword::IS
                | Keyword::IN
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::BETWEEN
                | Keyword::COLLATE
                | Keyword::AT
                | Keyword::DIV => Step::Operator,
                Keyword::CASE => Step::Open,
                Keyword::END => Step::Close,
                Keyword::WHEN | Keyword::THEN | Keyword::ELSE => Step::Separator,
                Keyword::UNION | Keyword::INTERSECT | Keyword::EXCEPT => {
                    set_operations += 1;
                    if set_operations > MAX_SET_OPERATIONS {
                        return Err(SqlError::unsupported(
                            format!(
                                "a statement with more than {MAX_SET_OPERATIONS} UNION, INTERSECT or EXCEPT operations is not supported; combine the inputs in fewer steps (a VALUES list, or a table)"
                            ),
                            location_of(token),
                        ));
                    }
                    Step::Separator
                }
                Keyword::SELECT
                | Keyword::FROM
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::HAVING
                | Keyword::ORDER
                | Keyword::LIMIT
                | Keyword::ON
                | Keyword::VALUES => Step::Separator,
                _ => Step::Other,
            },
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Spaceship
            | Token::Caret
            | Token::Ampersand
            | Token::Pipe
            | Token::DoubleColon
            | Token::Arrow
            | Token::LongArrow => Step::Operator,
            _ => Step::Other,
        };
        let depth = levels.last().map_or(0, Level::depth);
        match step {
            Step::Open => levels.push(Level {
                base: depth,
                ..Level::default()
            }),
            Step::Close => {
                if levels.len() > 1 {
                    levels.pop();
                }
            }
            Step::Separator => {
                if let Some(level) = levels.last_mut() {
                    level.logical = 0;
                    level.term = 0;
                }
            }
            Step::Logical | Step::Operator => {
                if let Some(level) = levels.last_mut() {
                    if matches!(step, Step::Logical) {
                        level.logical += 1;
                        level.term = 0;
                    } else {
                        level.term += 1;
                    }
                    if level.depth() > MAX_OPERATOR_CHAIN {
                        return Err(SqlError::unsupported(
                            format!(
                                "an expression nested more than {MAX_OPERATOR_CHAIN} operators deep is not supported; split it (for many alternatives, use IN (...))"
                            ),
                            location_of(token),
                        ));
                    }
                }
            }
            Step::Other => {}
        }
    }
    Ok(())
}

/// What a token does to the expression depth.
enum Step {
    /// `(` or `CASE`: a nested level.
    Open,
    /// `)` or `END`.
    Close,
    /// A comma, a clause keyword, `WHEN`/`THEN`/`ELSE`: siblings follow, not children.
    Separator,
    /// `AND`/`OR`: they bind loosest, so a run of them nests once per operator, over terms.
    Logical,
    /// Any other binary (or postfix) operator.
    Operator,
    /// Anything else.
    Other,
}

/// Operators counted at one level (a parenthesis or a CASE).
#[derive(Clone, Copy, Default)]
struct Level {
    /// The depth where the level opened.
    base: usize,
    /// `AND`/`OR`s since the last separator.
    logical: usize,
    /// Other operators since the last `AND`/`OR` or separator.
    term: usize,
}

impl Level {
    /// The nesting of the expression tree at the current token, at most.
    fn depth(&self) -> usize {
        self.base + self.logical + self.term
    }
}

/// Words that open a type with `<`.
fn is_type_word(token: &Token) -> bool {
    matches!(token, Token::Word(w) if matches!(w.keyword, Keyword::ARRAY | Keyword::MAP | Keyword::ROW | Keyword::MULTISET))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(terms: usize) -> String {
        format!("SELECT {}", vec!["1"; terms].join(" + "))
    }

    #[test]
    fn long_chains_are_refused_where_they_pass_the_limit() {
        assert!(check_statement_shape(&sum(MAX_OPERATOR_CHAIN + 1)).is_ok());
        let err = check_statement_shape(&sum(MAX_OPERATOR_CHAIN + 2)).expect_err("too long");
        assert!(err.to_string().contains("operators deep"), "{err}");
        assert!(err.location().is_some());
        // Many short expressions are fine.
        let list = format!("SELECT {}", vec!["1 + 1"; 5000].join(", "));
        assert!(check_statement_shape(&list).is_ok());
        let args = format!("SELECT f({})", vec!["n * 2 + 1"; 1000].join(", "));
        assert!(check_statement_shape(&args).is_ok());
        let arms: String = (0..1000)
            .map(|i| format!(" WHEN n = {i} THEN n + {i}"))
            .collect();
        assert!(check_statement_shape(&format!("SELECT CASE{arms} END")).is_ok());
        // An OR of comparisons nests once per OR.
        let alternatives = (0..MAX_OPERATOR_CHAIN)
            .map(|i| format!("a = {i}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        assert!(check_statement_shape(&format!("SELECT 1 WHERE {alternatives}")).is_ok());
        let ands = format!(
            "SELECT * FROM t WHERE {}",
            (0..20_000)
                .map(|i| format!("n <> {i}"))
                .collect::<Vec<_>>()
                .join(" AND ")
        );
        assert!(check_statement_shape(&ands).is_err());
        // Nesting, CASE and postfix chains do not get around the limit.
        let half = vec!["n"; MAX_OPERATOR_CHAIN / 2 + 1].join(" + ");
        for sneaky in [
            format!("SELECT {half} + ({half} + ({half}))"),
            format!("SELECT {half} + CASE WHEN {half} THEN 1 END + {half}"),
            format!("SELECT n{}", "::INT".repeat(MAX_OPERATOR_CHAIN + 1)),
            format!("SELECT n{}", " IS NULL".repeat(MAX_OPERATOR_CHAIN + 1)),
        ] {
            assert!(check_statement_shape(&sneaky).is_err(), "{}", &sneaky[..80]);
        }
    }

    #[test]
    fn columns_named_like_types_are_compared_freely() {
        let where_clause = (0..100)
            .map(|i| format!("row < {i}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        assert!(check_statement_shape(&format!("SELECT 1 FROM t WHERE {where_clause}")).is_ok());
    }

    #[test]
    fn deep_types_and_many_unions_are_refused() {
        let deep = format!(
            "CREATE TABLE t (a {}INT{}) WITH ('connector' = 'memory')",
            "ARRAY<".repeat(1000),
            ">".repeat(1000)
        );
        let err = check_statement_shape(&deep).expect_err("too deep");
        assert!(err.to_string().contains("nested more than"), "{err}");
        let fine =
            "CREATE TABLE t (a ARRAY<MAP<STRING, ARRAY<INT>>>) WITH ('connector' = 'memory')";
        assert!(check_statement_shape(fine).is_ok());
        let unions = vec!["SELECT 1"; 3000].join(" UNION ALL ");
        let err = check_statement_shape(&unions).expect_err("too many");
        assert!(err.to_string().contains("UNION"), "{err}");
    }
}
