//! Flink's `PATTERN (...) WITHIN INTERVAL '10' MINUTE`, which sqlparser does not read: the
//! clause is blanked out where it stands (so every other position stays exact) and carried
//! to the planner as one more `DEFINE` entry, `__magnetar_within AS INTERVAL '10' MINUTE`,
//! appended before the clause's closing parenthesis.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{Location, Result, SqlError};
use crate::parser::{offset, significant_tokens};

/// The `DEFINE` name that carries a `WITHIN` interval to the planner.
pub const WITHIN_SYMBOL: &str = "__magnetar_within";

fn is_word(t: &Token, word: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

/// Index of the parenthesis closing the one at `open`.
fn closing(tokens: &[TokenWithSpan], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Rewrites every `WITHIN` of a `MATCH_RECOGNIZE` in `sql`; text without one comes back
/// unchanged.
pub fn rewrite_within(sql: &str) -> Result<String> {
    if !sql.to_ascii_uppercase().contains("WITHIN") {
        return Ok(sql.to_string());
    }
    let Some((tokens, line_starts)) = significant_tokens(sql) else {
        return Ok(sql.to_string());
    };
    let at = |loc| offset(&line_starts, sql, loc);
    // (start, end, replacement), applied from the back.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if !is_word(&t.token, "MATCH_RECOGNIZE")
            || tokens.get(i + 1).map(|t| &t.token) != Some(&Token::LParen)
        {
            continue;
        }
        let Some(close) = closing(&tokens, i + 1) else {
            continue;
        };
        let Some(pattern) = (i + 2..close).find(|&j| {
            is_word(&tokens[j].token, "PATTERN")
                && tokens.get(j + 1).map(|t| &t.token) == Some(&Token::LParen)
        }) else {
            continue;
        };
        let Some(pattern_close) = closing(&tokens, pattern + 1) else {
            continue;
        };
        let within = pattern_close + 1;
        if within >= close || !is_word(&tokens[within].token, "WITHIN") {
            continue;
        }
        let Some(define) = (within + 1..close).find(|&j| is_word(&tokens[j].token, "DEFINE"))
        else {
            return Err(SqlError::syntax(
                "expected DEFINE after PATTERN (...) WITHIN <interval>",
                Location::from_parser(tokens[within].span.start),
            ));
        };
        if define == within + 1 {
            return Err(SqlError::syntax(
                "expected an interval after WITHIN, e.g. WITHIN INTERVAL '10' MINUTE",
                Location::from_parser(tokens[define].span.start),
            ));
        }
        let from = at(tokens[within].span.start);
        let interval_from = at(tokens[within + 1].span.start);
        let to = at(tokens[define - 1].span.end);
        let blank: String = sql[from..to]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        edits.push((from, to, blank));
        let before_close = at(tokens[close].span.start);
        edits.push((
            before_close,
            before_close,
            format!(", {WITHIN_SYMBOL} AS {}", &sql[interval_from..to]),
        ));
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = sql.to_string();
    for (from, to, text) in edits {
        out.replace_range(from..to, &text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_becomes_a_definition_and_keeps_positions() {
        let sql = "SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts PATTERN (A B) WITHIN INTERVAL '5' SECOND\nDEFINE A AS A.x > 1) AS m";
        let out = rewrite_within(sql).expect("rewrite");
        assert_eq!(
            out,
            "SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts PATTERN (A B)                           \nDEFINE A AS A.x > 1, __magnetar_within AS INTERVAL '5' SECOND) AS m"
        );
        // The DEFINE line's text before the insertion is where it was.
        assert_eq!(out.find("DEFINE"), sql.find("DEFINE"));
    }

    #[test]
    fn text_without_within_is_unchanged() {
        let sql = "SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts PATTERN (A) DEFINE A AS true)";
        assert_eq!(rewrite_within(sql).expect("rewrite"), sql);
    }

    #[test]
    fn within_without_an_interval_is_an_error_at_its_place() {
        let sql =
            "SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts PATTERN (A) WITHIN DEFINE A AS true)";
        let e = rewrite_within(sql).expect_err("no interval");
        assert_eq!(e.location().map(|l| l.column), Some(65));
    }
}
