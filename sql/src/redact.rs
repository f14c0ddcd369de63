//! SQL text with its secrets masked, for error messages and the shell's history: the value
//! of every `'key' = 'value'` pair whose key names a secret (in `WITH` and `SET`), and the
//! user info and secret parameters of URLs in any string literal.

use magnetar_connectors::redact::{self, MASK, is_secret_name};

/// A single-quoted literal: byte range of its contents (between the quotes) and its text.
struct Literal {
    start: usize,
    end: usize,
    text: String,
}

/// The single-quoted literals of `sql`, skipping comments and double-quoted identifiers;
/// `''` inside a literal is one quote.
fn literals(sql: &str) -> Vec<Literal> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b'"' | b'`' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                i += 1;
            }
            b'\'' => {
                let start = i + 1;
                let mut text = String::new();
                i += 1;
                let mut run = start;
                loop {
                    match bytes.get(i) {
                        None => break,
                        Some(b'\'') if bytes.get(i + 1) == Some(&b'\'') => {
                            text.push_str(&sql[run..i + 1]);
                            i += 2;
                            run = i;
                        }
                        Some(b'\'') => break,
                        Some(_) => i += 1,
                    }
                }
                let end = i.min(bytes.len());
                text.push_str(&sql[run..end]);
                out.push(Literal { start, end, text });
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// `sql` with the values of secret options and the secrets in URLs masked.
pub fn statement(sql: &str) -> String {
    let literals = literals(sql);
    let mut replacements: Vec<(usize, usize, String)> = Vec::new();
    for (i, literal) in literals.iter().enumerate() {
        let follows_secret_key = i > 0 && {
            let key = &literals[i - 1];
            // Only `=` (and blanks) between the key's closing quote and the value's opening one.
            let between = &sql[(key.end + 1).min(literal.start - 1)..literal.start - 1];
            between.trim() == "=" && is_secret_name(&key.text)
        };
        if follows_secret_key {
            replacements.push((literal.start, literal.end, MASK.to_string()));
        } else if literal.text.contains("://") {
            let masked = redact::text(&literal.text);
            if masked != literal.text {
                replacements.push((literal.start, literal.end, masked.replace('\'', "''")));
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
    }
}
