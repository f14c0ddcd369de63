//! SQL text with its secrets masked, for error messages and the shell's history: the value
//! of every `'key' = 'value'` pair whose key names a secret (in `WITH` and `SET`), and the
//! user info and secret parameters of URLs in any string literal.

use magnetar_connectors::redact::{self, MASK, is_secret_name};

/// A token of SQL text as far as masking needs it: a quoted text (single or double quotes,
/// or backticks) with the byte range of its contents, a bare word, or one other character.
enum Token {
    Quoted {
        start: usize,
        end: usize,
        text: String,
    },
    Word(String),
    Symbol(u8),
}

/// The tokens of `sql`, skipping blanks and comments (nested `/* */` too, as the parser
/// allows); a doubled quote inside a quoted text is one quote.
fn tokens(sql: &str) -> Vec<Token> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_whitespace() {
            i += 1;
        } else if b == b'-' && bytes.get(i + 1) == Some(&b'-') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if b == b'/' && bytes.get(i + 1) == Some(&b'*') {
            let mut depth = 0usize;
            while i < bytes.len() {
                if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                    depth = depth.saturating_sub(1);
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if matches!(b, b'\'' | b'"' | b'`') {
            let quote = b;
            let start = i + 1;
            let mut text = String::new();
            let mut run = start;
            i += 1;
            loop {
                match bytes.get(i) {
                    None => break,
                    Some(&c) if c == quote && bytes.get(i + 1) == Some(&quote) => {
                        text.push_str(&sql[run..i + 1]);
                        i += 2;
                        run = i;
                    }
                    Some(&c) if c == quote => break,
                    Some(_) => i += 1,
                }
            }
            let end = i.min(bytes.len());
            text.push_str(&sql[run..end]);
            out.push(Token::Quoted { start, end, text });
            i += 1;
        } else if b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric()
                    || matches!(bytes[i], b'_' | b'.' | b'-')
                    || bytes[i] >= 0x80)
            {
                i += 1;
            }
            out.push(Token::Word(sql[start..i].to_string()));
        } else {
            out.push(Token::Symbol(b));
            i += 1;
        }
    }
    out
}

/// `sql` with the values of secret options and the secrets in URLs masked: a quoted value
/// after `<key> =` or `<key> TO` whose key (quoted or bare) names a secret, and URL user info
/// and secret parameters in any quoted text.
pub fn statement(sql: &str) -> String {
    let tokens = tokens(sql);
    let mut replacements: Vec<(usize, usize, String)> = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let Token::Quoted { start, end, text } = token else {
            continue;
        };
        let assigns = i >= 2
            && match &tokens[i - 1] {
                Token::Symbol(b'=') => true,
                Token::Word(w) => w.eq_ignore_ascii_case("to"),
                _ => false,
            };
        let secret_key = assigns
            && match &tokens[i - 2] {
                Token::Quoted { text, .. } | Token::Word(text) => is_secret_name(text),
                Token::Symbol(_) => false,
            };
        if secret_key {
            replacements.push((*start, *end, MASK.to_string()));
        } else if text.contains("://") {
            let masked = redact::text(text);
            if masked != *text {
                let quote = char::from(sql.as_bytes()[start - 1]);
                let doubled: String = [quote, quote].iter().collect();
                replacements.push((*start, *end, masked.replace(quote, &doubled)));
            }
        }
    }
    if replacements.is_empty() {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for (start, end, text) in replacements {
        out.push_str(&sql[at..start]);
        out.push_str(&text);
        at = end;
    }
    out.push_str(&sql[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_option_values_and_url_secrets_are_masked() {
        let sql = "CREATE TABLE t (a INT) WITH (\n  'connector' = 'pulsar', -- 'token' = 'not a value'\n  'pulsar.client.authParams' = 'token:s3cr3t''x',\n  'admin-url' = 'http://u:s3cr3t@h:8080',\n  'key.fields' = 'a'\n)";
        let shown = statement(sql);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(
            shown.contains("'pulsar.client.authParams' = '******'"),
            "{shown}"
        );
        assert!(shown.contains("'http://******@h:8080'"), "{shown}");
        assert!(shown.contains("'key.fields' = 'a'"), "{shown}");
        assert!(shown.contains("'connector' = 'pulsar'"), "{shown}");
        assert_eq!(shown.lines().count(), sql.lines().count());
        let set =
            statement("SET 'execution.checkpointing.dir' = 's3://b/c?secret_access_key=s3cr3t'");
        assert_eq!(
            set,
            "SET 'execution.checkpointing.dir' = 's3://b/c?secret_access_key=******'"
        );
        assert_eq!(statement("SELECT 'token' FROM t"), "SELECT 'token' FROM t");
        // An unterminated literal is left as it is, without a panic.
        assert_eq!(
            statement("SET 'password' = 'abc"),
            "SET 'password' = '******"
        );
        // The other spellings the parser takes: bare and double-quoted keys, `TO`,
        // double-quoted values; comments nest.
        for sql in [
            "SET pulsar.client.authParams = 'token:s3cr3t'",
            "SET 'pulsar.client.authParams' TO \"token:s3cr3t\"",
            "CREATE TABLE t (a INT) WITH (\"pulsar.client.authParams\" = \"token:s3cr3t\")",
            "/* a /* nested */ 'x' */ SET 'token' = 's3cr3t' -- 'y'",
            "SET 'é' = 'x'; SET 'token' = 's3cr3t'",
        ] {
            let shown = statement(sql);
            assert!(!shown.contains("s3cr3t"), "{sql} -> {shown}");
            assert!(shown.contains("******"), "{shown}");
        }
    }
}
