//! Limits on a statement's shape, checked on its tokens before anything recursive sees it:
//! parsing, planning, optimizing and evaluating an expression recurse once per level, so a
//! statement nested thousands deep (`1+1+...`, thousands of `AND`s or `UNION ALL`s, deeply
//! nested `ARRAY<...>`) would overflow the stack and take the process down. Past a limit the
//! statement fails, with the place, and the process goes on.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::{DIALECT, location_of};
use crate::error::{Result, SqlError};

/// Most binary operators in a row within one expression (`a + b + ...`, `p AND q AND ...`).
pub const MAX_OPERATOR_CHAIN: usize = 1000;
/// Deepest nesting of `ARRAY<`, `MAP<`, `ROW<` and `MULTISET<` types.
pub const MAX_TYPE_NESTING: usize = 32;
/// Most `UNION`, `INTERSECT` and `EXCEPT` operations in one statement.
pub const MAX_SET_OPERATIONS: usize = 500;

/// Checks `sql` against the limits; a statement that does not tokenize is left to the parser.
pub fn check_statement_shape(sql: &str) -> Result<()> {
    let Ok(tokens) = Tokenizer::new(&DIALECT, sql).tokenize_with_location() else {
        return Ok(());
    };
    // Per parenthesis level: binary operators since the last separator.
    let mut chains: Vec<usize> = vec![0];
    let mut type_depth = 0usize;
    let mut set_operations = 0usize;
    let mut previous_was_type_word = false;
    for token in tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
    {
        let was_type_word = std::mem::take(&mut previous_was_type_word);
        let is_operator = match &token.token {
            Token::LParen => {
                chains.push(0);
                false
            }
            Token::RParen => {
                if chains.len() > 1 {
                    chains.pop();
                }
                false
            }
            Token::Comma | Token::SemiColon => {
                if let Some(chain) = chains.last_mut() {
                    *chain = 0;
                }
                false
            }
            Token::Lt if was_type_word => {
                type_depth += 1;
                if type_depth > MAX_TYPE_NESTING {
                    return Err(SqlError::unsupported(
                        format!("types nested more than {MAX_TYPE_NESTING} deep are not supported"),
                        location_of(token),
                    ));
                }
                false
            }
            Token::Gt if type_depth > 0 => {
                type_depth -= 1;
                false
            }
            Token::ShiftRight if type_depth > 0 => {
                type_depth = type_depth.saturating_sub(2);
                false
            }
            Token::Word(w) => match w.keyword {
                Keyword::ARRAY | Keyword::MAP | Keyword::ROW | Keyword::MULTISET => {
                    previous_was_type_word = true;
                    false
                }
                Keyword::AND | Keyword::OR => true,
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
                    reset(&mut chains);
                    false
                }
                Keyword::SELECT
                | Keyword::FROM
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::HAVING
                | Keyword::ORDER
                | Keyword::LIMIT
                | Keyword::ON
                | Keyword::WHEN
                | Keyword::THEN
                | Keyword::ELSE
                | Keyword::VALUES => {
                    reset(&mut chains);
                    false
                }
                _ => false,
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
            | Token::Pipe => true,
            _ => false,
        };
        if is_operator && let Some(chain) = chains.last_mut() {
            *chain += 1;
            if *chain > MAX_OPERATOR_CHAIN {
                return Err(SqlError::unsupported(
                    format!(
                        "an expression of more than {MAX_OPERATOR_CHAIN} operators in a row is not supported; split it (for many alternatives, use IN (...))"
                    ),
                    location_of(token),
                ));
            }
        }
    }
    Ok(())
}

/// A separator at the current level (a clause keyword) ends its chain.
fn reset(chains: &mut [usize]) {
    if let Some(chain) = chains.last_mut() {
        *chain = 0;
    }
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
        assert!(err.to_string().contains("operators in a row"), "{err}");
        assert!(err.location().is_some());
        // Many short expressions are fine.
        let list = format!("SELECT {}", vec!["1 + 1"; 5000].join(", "));
        assert!(check_statement_shape(&list).is_ok());
        let ands = format!(
            "SELECT * FROM t WHERE {}",
            (0..20_000)
                .map(|i| format!("n <> {i}"))
                .collect::<Vec<_>>()
                .join(" AND ")
        );
        assert!(check_statement_shape(&ands).is_err());
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
