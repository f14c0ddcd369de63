//! Flink's window table-valued functions, rewritten into table-function calls DataFusion
//! can plan:
//!
//! ```text
//! TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
//!    →  tumble('clicks', 'ts', INTERVAL '1' MINUTE)
//! TABLE(SESSION(TABLE clicks PARTITION BY user_id, DESCRIPTOR(ts), INTERVAL '5' MINUTE))
//!    →  session('clicks', 'user_id', 'ts', INTERVAL '5' MINUTE)
//! ```
//!
//! sqlparser cannot read `TABLE t` as a function argument, so this works on tokens. The
//! rewrite keeps every other character where it was (the replaced text is padded with
//! spaces), so error positions in the rest of the statement stay exact. Named arguments
//! (`DATA => TABLE t, TIMECOL => DESCRIPTOR(ts), SIZE => ...`) are accepted in any order.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{Location, Result, SqlError};

/// The window functions and their parameters in call order (after the table).
const FUNCTIONS: &[(&str, &[&str])] = &[
    ("TUMBLE", &["TIMECOL", "SIZE", "OFFSET"]),
    ("HOP", &["TIMECOL", "SLIDE", "SIZE", "OFFSET"]),
    ("CUMULATE", &["TIMECOL", "STEP", "SIZE", "OFFSET"]),
    ("SESSION", &["TIMECOL", "GAP"]),
];

fn location(t: &TokenWithSpan) -> Option<Location> {
    Location::from_parser(t.span.start)
}

fn is_word(t: &Token, word: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

/// Byte offsets of line starts, to turn token locations into string offsets.
pub(crate) fn offset(
    line_starts: &[usize],
    text: &str,
    loc: datafusion::sql::sqlparser::tokenizer::Location,
) -> usize {
    let Some(&start) = line_starts.get(loc.line.saturating_sub(1) as usize) else {
        return text.len();
    };
    let line = &text[start..];
    start
        + line
            .char_indices()
            .nth(loc.column.saturating_sub(1) as usize)
            .map(|(i, _)| i)
            .unwrap_or(line.len())
}

/// The tokens of `sql` other than whitespace, and the byte offsets of its line starts (for
/// [`offset`]); `None` when it does not tokenize (the parser then reports where).
pub(crate) fn significant_tokens(sql: &str) -> Option<(Vec<TokenWithSpan>, Vec<usize>)> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .ok()?
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let mut line_starts = vec![0];
    line_starts.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
    Some((tokens, line_starts))
}

/// Rewrites every window TVF in `sql`; text without one comes back unchanged.
pub fn rewrite_window_tvfs(sql: &str) -> Result<String> {
    if !sql.to_ascii_uppercase().contains("TABLE") {
        return Ok(sql.to_string());
    }
    let Some((tokens, line_starts)) = significant_tokens(sql) else {
        // Let the parser report tokenizer errors with their positions.
        return Ok(sql.to_string());
    };
    let mut out = sql.to_string();
    let mut i = 0;
    while i + 3 < tokens.len() {
        let function = FUNCTIONS
            .iter()
            .find(|(name, _)| is_word(&tokens[i + 2].token, name));
        let is_tvf = is_word(&tokens[i].token, "TABLE")
            && tokens[i + 1].token == Token::LParen
            && function.is_some()
            && tokens[i + 3].token == Token::LParen;
        let Some((name, params)) = function.filter(|_| is_tvf) else {
            i += 1;
            continue;
        };
        let call = parse_call(&tokens, i, name, params)?;
        let replacement = call.replacement(sql, &line_starts);
        let from = offset(&line_starts, sql, tokens[i].span.start);
        let to = offset(&line_starts, sql, tokens[call.end].span.end);
        out.replace_range(from..to, &fit(&replacement, &sql[from..to]));
        i = call.end + 1;
    }
    Ok(out)
}

/// `replacement` laid over `original`: padded with spaces, keeping the original's line
/// breaks where they fall after the replacement's end.
fn fit(replacement: &str, original: &str) -> String {
    let first_line = original.split('\n').next().unwrap_or("");
    if replacement.chars().count() <= first_line.chars().count() {
        let mut out = replacement.to_string();
        let mut taken = replacement.chars().count();
        for c in original.chars() {
            if taken > 0 {
                taken -= 1;
                continue;
            }
            out.push(if c == '\n' { '\n' } else { ' ' });
        }
        out
    } else {
        // Does not fit on the first line: keep the line count, lose columns on this line.
        let newlines = original.matches('\n').count();
        format!("{replacement}{}", "\n".repeat(newlines))
    }
}

struct Call {
    function: String,
    table: String,
    partition_keys: Vec<String>,
    time_column: String,
    /// Remaining arguments' source text, in the function's parameter order.
    scalars: Vec<String>,
    /// Index of the outer closing parenthesis.
    end: usize,
}

impl Call {
    fn replacement(&self, _sql: &str, _lines: &[usize]) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let mut args = vec![quote(&self.table)];
        if self.function == "session" {
            args.push(quote(&self.partition_keys.join(",")));
        }
        args.push(quote(&self.time_column));
        args.extend(self.scalars.iter().cloned());
        format!("{}({})", self.function, args.join(", "))
    }
}

fn token_text(sql_tokens: &[TokenWithSpan]) -> String {
    sql_tokens
        .iter()
        .map(|t| t.token.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_call(tokens: &[TokenWithSpan], start: usize, name: &str, params: &[&str]) -> Result<Call> {
    let err = |message: String, at: &TokenWithSpan| SqlError::syntax(message, location(at));
    // Split the arguments of NAME( ... ) at top-level commas.
    let mut depth = 0usize;
    let mut args: Vec<Vec<TokenWithSpan>> = vec![Vec::new()];
    let mut j = start + 4;
    let inner_end = loop {
        let Some(t) = tokens.get(j) else {
            return Err(err(format!("{name}(...) is not closed"), &tokens[start]));
        };
        match &t.token {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => break j,
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                args.push(Vec::new());
                j += 1;
                continue;
            }
            Token::EOF => return Err(err(format!("{name}(...) is not closed"), t)),
            _ => {}
        }
        if let Some(last) = args.last_mut() {
            last.push(t.clone());
        }
        j += 1;
    };
    let end = inner_end + 1;
    if tokens.get(end).map(|t| &t.token) != Some(&Token::RParen) {
        return Err(err(
            format!("expected ')' closing TABLE({name}(...))"),
            tokens.get(end).unwrap_or(&tokens[inner_end]),
        ));
    }
    // `PARTITION BY a, b` lists keys with commas: fold them back into the table argument.
    if args
        .first()
        .is_some_and(|a| a.iter().any(|t| is_word(&t.token, "PARTITION")))
    {
        while args.len() > 1
            && !args[1]
                .first()
                .is_some_and(|t| is_word(&t.token, "DESCRIPTOR") || is_word(&t.token, "TIMECOL"))
        {
            let key = args.remove(1);
            if let Some(first) = args.first_mut() {
                first.push(TokenWithSpan::wrap(Token::Comma));
                first.extend(key);
            }
        }
    }
    // Named arguments: NAME => value.
    let mut named: Vec<(Option<String>, Vec<TokenWithSpan>)> = Vec::new();
    for arg in args {
        match arg.as_slice() {
            [n, arrow, rest @ ..]
                if matches!(n.token, Token::Word(_)) && arrow.token == Token::RArrow =>
            {
                named.push((
                    Some(n.token.to_string().to_ascii_uppercase()),
                    rest.to_vec(),
                ))
            }
            _ => named.push((None, arg)),
        }
    }
    let mut ordered: Vec<Option<Vec<TokenWithSpan>>> = vec![None; params.len() + 1];
    let mut next_positional = 0;
    for (n, value) in named {
        let slot = match n {
            Some(n) if n == "DATA" => 0,
            Some(n) => {
                1 + params.iter().position(|p| *p == n).ok_or_else(|| {
                    err(
                        format!(
                            "{name} has no parameter {n} (it takes DATA, {})",
                            params.join(", ")
                        ),
                        &tokens[start + 2],
                    )
                })?
            }
            None => {
                while ordered.get(next_positional).is_some_and(Option::is_some) {
                    next_positional += 1;
                }
                next_positional
            }
        };
        if slot >= ordered.len() {
            return Err(err(
                format!("too many arguments to {name}"),
                &tokens[start + 2],
            ));
        }
        ordered[slot] = Some(value);
    }
    // DATA: TABLE name [PARTITION BY a, b] (PARTITION BY lists commas, so it spans arguments).
    let data = ordered[0].take().ok_or_else(|| {
        err(
            format!("{name} needs a table: {name}(TABLE t, ...)"),
            &tokens[start + 2],
        )
    })?;
    if !data.first().is_some_and(|t| is_word(&t.token, "TABLE")) {
        return Err(err(
            format!("the first argument of {name} is TABLE <name>"),
            data.first().unwrap_or(&tokens[start + 2]),
        ));
    }
    let by = data.iter().position(|t| is_word(&t.token, "PARTITION"));
    let table_tokens = &data[1..by.unwrap_or(data.len())];
    if table_tokens.is_empty() {
        return Err(err(
            format!("{name}(TABLE ...) needs a table name"),
            &data[0],
        ));
    }
    if table_tokens[0].token == Token::LParen {
        return Err(err(
            format!(
                "{name}(TABLE ...) takes the name of a table or view, not a query: CREATE VIEW the query first"
            ),
            &table_tokens[0],
        ));
    }
    let table: String = table_tokens.iter().map(|t| t.token.to_string()).collect();
    let mut partition_keys = Vec::new();
    if let Some(by) = by {
        if name != "SESSION" {
            return Err(err(
                format!("PARTITION BY is for SESSION windows, not {name}"),
                &data[by],
            ));
        }
        let keys = &data[by + 1..];
        if !keys.first().is_some_and(|t| is_word(&t.token, "BY")) || keys.len() < 2 {
            return Err(err("expected PARTITION BY column".into(), &data[by]));
        }
        for key in keys[1..].split(|t| t.token == Token::Comma) {
            partition_keys.push(token_text(key));
        }
    }
    let time = ordered[1].take().ok_or_else(|| {
        err(
            format!("{name} needs DESCRIPTOR(time column)"),
            &tokens[start + 2],
        )
    })?;
    let time_column = match time.as_slice() {
        [d, open, column, close]
            if is_word(&d.token, "DESCRIPTOR")
                && open.token == Token::LParen
                && close.token == Token::RParen =>
        {
            column.token.to_string()
        }
        _ => {
            return Err(err(
                format!("the time argument of {name} is DESCRIPTOR(column)"),
                time.first().unwrap_or(&tokens[start + 2]),
            ));
        }
    };
    let mut scalars = Vec::new();
    for (k, arg) in ordered.into_iter().enumerate().skip(2) {
        match arg {
            Some(tokens) => scalars.push(token_text(&tokens)),
            None if k == params.len() && params.last() == Some(&"OFFSET") => {}
            None => {
                return Err(err(
                    format!("{name} needs its {} argument", params[k - 1]),
                    &tokens[start + 2],
                ));
            }
        }
    }
    Ok(Call {
        function: name.to_ascii_lowercase(),
        table,
        partition_keys,
        time_column,
        scalars,
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_window_function_is_documented() {
        let parsed: Vec<&str> = FUNCTIONS.iter().map(|(name, _)| *name).collect();
        let documented: Vec<&str> = crate::window::WINDOW_FUNCTIONS
            .iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(parsed, documented);
        for (name, params) in FUNCTIONS {
            let doc = crate::window::WINDOW_FUNCTIONS
                .iter()
                .find(|f| f.name == *name)
                .map(|f| f.syntax.to_ascii_uppercase())
                .unwrap_or_default();
            assert!(doc.starts_with(&format!("{name}(")), "{name}: {doc}");
            // Each documented argument beyond the table and time column is a parameter.
            let args = doc.split("]]").last().unwrap_or_default();
            let documented_args = args.matches(',').count() - 1;
            assert_eq!(documented_args, params.len() - 1, "{name}: {doc}");
        }
    }

    #[test]
    fn rewrites_each_kind_in_place() {
        let sql = "SELECT * FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) WHERE x";
        let out = rewrite_window_tvfs(sql).expect("rewrite");
        assert!(
            out.starts_with("SELECT * FROM tumble('clicks', 'ts', INTERVAL '1' MINUTE)"),
            "{out}"
        );
        assert_eq!(out.len(), sql.len(), "positions kept");
        assert!(out.ends_with(" WHERE x"));

        let out = rewrite_window_tvfs(
            "FROM TABLE(HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '1' MINUTE))",
        )
        .expect("hop");
        assert!(
            out.contains("hop('t', 'ts', INTERVAL '1' SECOND, INTERVAL '1' MINUTE)"),
            "{out}"
        );

        let out = rewrite_window_tvfs(
            "FROM TABLE(SESSION(TABLE t PARTITION BY a, b, DESCRIPTOR(ts), INTERVAL '5' MINUTE))",
        )
        .expect("session");
        assert!(
            out.contains("session('t', 'a,b', 'ts', INTERVAL '5' MINUTE)"),
            "{out}"
        );

        let out = rewrite_window_tvfs(
            "FROM TABLE(CUMULATE(DATA => TABLE t, TIMECOL => DESCRIPTOR(ts), SIZE => INTERVAL '1' HOUR, STEP => INTERVAL '10' MINUTE))",
        )
        .expect("named");
        assert!(
            out.contains("cumulate('t', 'ts', INTERVAL '10' MINUTE, INTERVAL '1' HOUR)"),
            "{out}"
        );
    }

    #[test]
    fn keeps_lines_of_multi_line_calls() {
        let sql = "SELECT 1 FROM TABLE(\n  TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' MINUTE))\nWHERE y";
        let out = rewrite_window_tvfs(sql).expect("rewrite");
        assert_eq!(out.lines().count(), sql.lines().count(), "{out}");
        assert!(out.ends_with("\nWHERE y"), "{out}");
    }

    #[test]
    fn leaves_other_sql_alone() {
        for sql in [
            "SELECT * FROM t",
            "CREATE TABLE t (a INT) WITH ('x'='y')",
            "SELECT 'TABLE(TUMBLE(' FROM t",
        ] {
            assert_eq!(rewrite_window_tvfs(sql).expect("ok"), sql);
        }
    }

    #[test]
    fn explains_malformed_calls() {
        let err =
            rewrite_window_tvfs("FROM TABLE(TUMBLE(clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE))")
                .expect_err("no TABLE");
        assert!(err.to_string().contains("TABLE <name>"), "{err}");
        let err = rewrite_window_tvfs("FROM TABLE(TUMBLE(TABLE t, ts, INTERVAL '1' MINUTE))")
            .expect_err("no descriptor");
        assert!(err.to_string().contains("DESCRIPTOR(column)"), "{err}");
        let err =
            rewrite_window_tvfs("FROM TABLE(HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND))")
                .expect_err("no size");
        assert!(err.to_string().contains("needs its SIZE argument"), "{err}");
        let err = rewrite_window_tvfs(
            "FROM TABLE(TUMBLE(TABLE (SELECT * FROM t), DESCRIPTOR(ts), INTERVAL '1' MINUTE))",
        )
        .expect_err("a query");
        assert!(
            err.to_string().contains("CREATE VIEW the query first"),
            "{err}"
        );
        assert_eq!(
            err.location(),
            Some(crate::error::Location {
                line: 1,
                column: 25
            })
        );
    }
}
