//! Numbers with a fraction read into integer columns. arrow-json truncates `1.5` to `1` when
//! it fills an integer column; a silently changed value is a wrong answer, so the JSON decoder
//! asks this scanner, before decoding, whether a top-level integer field holds such a number.

/// A top-level field whose number is not whole: its name and the number as written.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FractionalInteger {
    /// The field's name.
    pub field: String,
    /// The number's text.
    pub number: String,
}

/// The first top-level field of the object in `json` that is one of `integer_fields` and holds
/// a number with a non-zero fraction (`1.5`, `2.5e-1`). Whole numbers in any notation (`1.0`,
/// `1e3`) are fine, as they read exactly. Malformed JSON is left to the decoder: this finds
/// nothing in it that it cannot read.
pub(crate) fn fractional_integer(
    json: &[u8],
    integer_fields: &[String],
) -> Option<FractionalInteger> {
    let mut depth = 0usize;
    let mut i = 0usize;
    // At depth 1, the key of the value being read.
    let mut key: Option<(usize, usize)> = None;
    let mut expecting_key = false;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let start = i + 1;
                let end = string_end(json, start)?;
                if depth == 1 && expecting_key {
                    key = Some((start, end));
                    expecting_key = false;
                }
                i = end + 1;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth == 1 {
                    expecting_key = json[i] == b'{';
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => {
                expecting_key = true;
                key = None;
            }
            b'-' | b'0'..=b'9' if depth == 1 => {
                let start = i;
                while i < json.len()
                    && matches!(json[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let number = &json[start..i];
                if let Some((ks, ke)) = key
                    && number.iter().any(|b| matches!(b, b'.' | b'e' | b'E'))
                    && let Ok(name) = std::str::from_utf8(&json[ks..ke])
                    && integer_fields.iter().any(|f| f == name)
                    && let Ok(text) = std::str::from_utf8(number)
                    && text.parse::<f64>().is_ok_and(|v| v.fract() != 0.0)
                {
                    return Some(FractionalInteger {
                        field: name.to_string(),
                        number: text.to_string(),
                    });
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the quote that ends the string starting at `start` (after its opening quote).
fn string_end(json: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    while i < json.len() {
        match json[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(json: &str) -> Option<(String, String)> {
        fractional_integer(json.as_bytes(), &["n".into(), "m".into()]).map(|f| (f.field, f.number))
    }

    #[test]
    fn finds_fractions_in_integer_fields_only() {
        assert_eq!(find(r#"{"n": 1.5}"#), Some(("n".into(), "1.5".into())));
        assert_eq!(
            find(r#"{"x": 2.5, "m": -3.25e0, "n": 1}"#),
            Some(("m".into(), "-3.25e0".into()))
        );
        assert_eq!(find(r#"{"x": 2.5, "n": 1}"#), None);
        assert_eq!(find(r#"{"n": 1.0, "m": 1e3}"#), None);
        assert_eq!(find(r#"{"n": 25e-1}"#), Some(("n".into(), "25e-1".into())));
    }

    #[test]
    fn strings_and_nested_values_are_not_fields() {
        assert_eq!(find(r#"{"s": "n\": 1.5", "n": 2}"#), None);
        assert_eq!(
            find(r#"{"inner": {"n": 1.5}, "list": [1.5], "n": 3}"#),
            None
        );
        assert_eq!(
            find(r#"{"inner": {"a": 1}, "n": 0.5}"#),
            Some(("n".into(), "0.5".into()))
        );
        assert_eq!(find(r#"{"n\"": 1.5}"#), None);
    }

    #[test]
    fn malformed_input_finds_nothing_and_does_not_panic() {
        for bad in [
            "",
            "{",
            "{\"n\": ",
            "{\"n",
            "\"",
            "{\"n\": 1.5",
            "}}}]]",
            "{\"a\\",
        ] {
            let _ = fractional_integer(bad.as_bytes(), &["n".into()]);
        }
        assert_eq!(find("{\"n\": 1.5"), Some(("n".into(), "1.5".into())));
    }
}
