//! Numbers arrow's text-to-decimal parser cannot read safely. arrow-cast 59's `parse_decimal`
//! counts digits in a `u8` and the exponent in an `i16` with unchecked arithmetic: past 255
//! integer digits or an exponent beyond ±3276 it overflows (a panic in debug builds, a
//! wrapped, silently wrong value in release). When a schema has a DECIMAL column, the JSON
//! and CSV decoders refuse a message holding such a number before decoding it.

use arrow_schema::DataType;

/// Most significant digits in one run; DECIMAL's precision stops at 76.
const MAX_DIGITS: usize = 200;
/// Largest exponent magnitude; DECIMAL's precision and scale stop at 76.
const MAX_EXPONENT: u32 = 200;

/// Whether `ty` is, or holds, a DECIMAL.
pub(crate) fn has_decimal(ty: &DataType) -> bool {
    match ty {
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => true,
        DataType::Struct(fields) => fields.iter().any(|f| has_decimal(f.data_type())),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => has_decimal(f.data_type()),
        DataType::Dictionary(_, values) => has_decimal(values),
        _ => false,
    }
}

/// Why `payload` holds a number too long for the decimal parser, if it does: a run of more
/// than [`MAX_DIGITS`] significant digits, or an exponent beyond [`MAX_EXPONENT`]. It looks at
/// every digit run, inside strings too (DECIMAL fields may be written as strings), so a long
/// digit run in another field of the same message is refused as well, never misread.
pub(crate) fn unreadable_number(payload: &[u8]) -> Option<String> {
    let mut i = 0;
    while i < payload.len() {
        if !payload[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < payload.len() && payload[i].is_ascii_digit() {
            i += 1;
        }
        let run = &payload[start..i];
        if is_exponent(payload, start) {
            let value = run.iter().fold(0u32, |v, d| {
                v.saturating_mul(10).saturating_add(u32::from(d - b'0'))
            });
            if value > MAX_EXPONENT {
                return Some(format!(
                    "a number with exponent {} at byte {start}, beyond the ±{MAX_EXPONENT} a DECIMAL column reads",
                    shorten(run)
                ));
            }
        } else {
            let significant = run.iter().skip_while(|d| **d == b'0').count();
            if significant > MAX_DIGITS {
                return Some(format!(
                    "a number of {significant} digits at byte {start}, more than the {MAX_DIGITS} a DECIMAL column reads"
                ));
            }
        }
    }
    None
}

/// Whether the digit run at `start` follows `e`/`E` (and a sign) after a mantissa digit or point.
fn is_exponent(payload: &[u8], start: usize) -> bool {
    let mut j = start;
    if j > 0 && matches!(payload[j - 1], b'+' | b'-') {
        j -= 1;
    }
    j >= 2 && matches!(payload[j - 1], b'e' | b'E') && matches!(payload[j - 2], b'0'..=b'9' | b'.')
}

fn shorten(run: &[u8]) -> String {
    let text = String::from_utf8_lossy(run);
    if text.len() > 12 {
        format!("{}… ({} digits)", &text[..12], text.len())
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_numbers_pass() {
        for ok in [
            r#"{"d":1.25,"e":-3.5e10,"f":"12.5E-40","g":0.000001e+76}"#,
            "1,2.5,3e200",
        ] {
            assert_eq!(unreadable_number(ok.as_bytes()), None, "{ok}");
        }
        // Leading zeros are not significant.
        let zeros = format!("{{\"d\":{}1}}", "0".repeat(500));
        assert_eq!(unreadable_number(zeros.as_bytes()), None);
    }

    #[test]
    fn long_runs_and_large_exponents_are_named() {
        let long = format!("{{\"d\":{}}}", "9".repeat(256));
        let why = unreadable_number(long.as_bytes()).expect("256 digits");
        assert!(why.contains("256 digits at byte 5"), "{why}");
        for big in [r#"{"d":1e99999}"#, r#"{"d":"1.5E-32768"}"#, "x,2.e+201"] {
            let why = unreadable_number(big.as_bytes()).expect(big);
            assert!(why.contains("exponent"), "{why}");
        }
    }

    #[test]
    fn decimals_are_found_nested() {
        use arrow_schema::Field;
        use std::sync::Arc;
        let nested = DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(vec![Field::new("x", DataType::Decimal128(10, 2), true)].into()),
            true,
        )));
        assert!(has_decimal(&nested));
        assert!(!has_decimal(&DataType::Float64));
    }
}
