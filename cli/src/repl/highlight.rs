//! Syntax highlighting of the input line: keywords, strings, numbers, comments. Used only
//! on a terminal, and not when `NO_COLOR` is set.

use std::borrow::Cow;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

const KEYWORD: &str = "\x1b[1;34m";
const STRING: &str = "\x1b[32m";
const NUMBER: &str = "\x1b[33m";
const COMMENT: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// `line` with ANSI colours; unchanged when it does not tokenize (an unterminated string
/// while it is being typed).
pub fn highlight(line: &str) -> Cow<'_, str> {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, line).tokenize_with_location() else {
        return Cow::Borrowed(line);
    };
    let starts = line_starts(line);
    let offset = |l: u64, c: u64| -> Option<usize> {
        let line_start = *starts.get(usize::try_from(l).ok()?.checked_sub(1)?)?;
        let rest = &line[line_start..];
        let column = usize::try_from(c).ok()?.checked_sub(1)?;
        Some(
            line_start
                + rest
                    .char_indices()
                    .nth(column)
                    .map_or(rest.len(), |(i, _)| i),
        )
    };
    let mut out = String::with_capacity(line.len() + 32);
    let mut copied = 0;
    for t in &tokens {
        let colour = match &t.token {
            Token::Word(w) if w.quote_style.is_none() && w.keyword != Keyword::NoKeyword => KEYWORD,
            Token::SingleQuotedString(_) => STRING,
            Token::Number(..) => NUMBER,
            Token::Whitespace(
                Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_),
            ) => COMMENT,
            _ => continue,
        };
        let (Some(start), Some(end)) = (
            offset(t.span.start.line, t.span.start.column),
            offset(t.span.end.line, t.span.end.column),
        ) else {
            return Cow::Borrowed(line);
        };
        if start < copied || end < start || end > line.len() {
            return Cow::Borrowed(line);
        }
        // A line comment's span includes its newline; keep the newline uncoloured.
        let end = if line[start..end].ends_with('\n') {
            end - 1
        } else {
            end
        };
        out.push_str(&line[copied..start]);
        out.push_str(colour);
        out.push_str(&line[start..end]);
        out.push_str(RESET);
        copied = end;
    }
    out.push_str(&line[copied..]);
    Cow::Owned(out)
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_keywords_strings_numbers_and_comments_and_keeps_the_text() {
        let line = "SELECT 'a;b', 42 FROM t -- note\nWHERE x";
        let out = highlight(line);
        assert!(out.contains("\x1b[1;34mSELECT\x1b[0m"), "{out:?}");
        assert!(out.contains("\x1b[32m'a;b'\x1b[0m"), "{out:?}");
        assert!(out.contains("\x1b[33m42\x1b[0m"), "{out:?}");
        assert!(out.contains("\x1b[2m-- note\x1b[0m\n"), "{out:?}");
        let plain = console::strip_ansi_codes(&out);
        assert_eq!(plain, line);
    }

    #[test]
    fn an_unterminated_string_is_left_alone() {
        assert_eq!(highlight("SELECT 'abc"), "SELECT 'abc");
    }
}
