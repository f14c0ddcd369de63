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
/// a number that does not read exactly as an integer (`1.5`, `2.5e-1`, `1e30`). Whole numbers
/// in any notation (`1.0`, `1e3`) are fine, as they read exactly. Malformed JSON is left to the decoder: this finds
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
                    && let Some(name) = key_name(&json[ks - 1..=ke])
                    && integer_fields.iter().any(|f| *f == name)
                    && let Ok(text) = std::str::from_utf8(number)
                    && !reads_exactly_as_integer(text)
                {
                    return Some(FractionalInteger {
                        field: name.into_owned(),
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

/// Whether a number written with a fraction or an exponent (`2.0`, `1e3`, `1.5`) is a whole
/// number that arrow-json reads exactly: decided on the digits, not through `f64` (which would
/// call `12345678901234567.5` whole), and small enough that arrow-json's `f64` fallback for
/// such numbers keeps every digit (below 2^53).
fn reads_exactly_as_integer(text: &str) -> bool {
    let unsigned = text.trim_start_matches(['-', '+']);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], &unsigned[at + 1..]),
        None => (unsigned, "0"),
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return false;
    };
    let (int_digits, frac_digits) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: Vec<u8> = int_digits.bytes().chain(frac_digits.bytes()).collect();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    // Where the decimal point falls in `digits` once the exponent is applied.
    let point = int_digits.len() as i64 + i64::from(exponent);
    let whole_part = point.clamp(0, digits.len() as i64) as usize;
    if digits[whole_part..].iter().any(|d| *d != b'0') {
        return false;
    }
    // The integer's value: its significant digits and the zeros the exponent adds.
    let significant = digits[..whole_part]
        .iter()
        .skip_while(|d| **d == b'0')
        .count() as i64
        + (point - digits.len() as i64).max(0);
    // 2^53 has 16 digits: up to 15 are always exact in an f64.
    significant <= 15
}

/// A key's name as arrow-json matches it: escapes (`"\u006e"` is `n`) decoded. `quoted`
/// includes both quotes.
fn key_name(quoted: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    let inner = &quoted[1..quoted.len() - 1];
    if inner.contains(&b'\\') {
        serde_json::from_slice::<String>(quoted)
            .ok()
            .map(Into::into)
    } else {
        std::str::from_utf8(inner).ok().map(Into::into)
    }
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
    fn escaped_keys_are_matched_as_the_decoder_reads_them() {
        assert_eq!(find(r#"{"\u006e": 1.5}"#), Some(("n".into(), "1.5".into())));
        assert_eq!(find(r#"{"\"n": 1.5}"#), None);
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
    fn wholeness_is_decided_on_the_digits() {
        for whole in [
            "1.0",
            "1e3",
            "-2.50e1",
            "0.0",
            "100",
            "1.000000",
            "9007199254740.0",
        ] {
            assert!(reads_exactly_as_integer(whole), "{whole}");
        }
        for not in [
            "1.5",
            "12345678901234567.5",
            "1.0000000000000000001",
            "9007199254740993.0",
            "1e30",
            "25e-1",
            "1e",
            ".",
        ] {
            assert!(!reads_exactly_as_integer(not), "{not}");
        }
        assert_eq!(
            find(r#"{"n": 9007199254740993.0}"#).map(|f| f.0),
            Some("n".into())
        );
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
