//! Deterministic click events for tests: keyed by user, with NULLs and non-ASCII text, so a
//! test can compute the exact expected output of a query from its own input.

use serde_json::{Value, json};

/// One click event.
#[derive(Clone, Debug)]
pub struct Click {
    /// Message key and `user_id` column.
    pub user_id: String,
    /// Page.
    pub url: String,
    /// Time on page; the filter in tests keys on it.
    pub dwell_ms: i64,
    /// Country code, sometimes missing (NULL).
    pub country: Option<String>,
    /// Event time as `YYYY-MM-DD HH:MM:SS.mmm`.
    pub ts: String,
}

impl Click {
    /// The JSON payload.
    pub fn to_json(&self) -> String {
        let mut v = json!({
            "user_id": self.user_id,
            "url": self.url,
            "dwell_ms": self.dwell_ms,
            "ts": self.ts,
        });
        if let Some(c) = &self.country {
            v["country"] = Value::String(c.clone());
        }
        v.to_string()
    }
}

/// `n` clicks from a fixed linear congruential sequence (no randomness between runs).
pub fn generate(n: usize) -> Vec<Click> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |m: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % m
    };
    let urls = [
        "/",
        "/search?q=ünïcödé",
        "/product/17",
        "/cart",
        "/checkout",
        "/checkout/confirm",
    ];
    let countries = ["de", "fr", "us", "jp", "ng"];
    (0..n)
        .map(|i| {
            let user = next(97);
            let user_id = if user % 13 == 0 {
                format!("usér-{user:02}")
            } else {
                format!("user-{user:02}")
            };
            let country = (next(10) != 0).then(|| countries[next(5) as usize].to_string());
            let ms = 1_764_000_000_000u64 + i as u64 * 1000 + next(1000);
            Click {
                user_id,
                url: urls[next(urls.len() as u64) as usize].to_string(),
                dwell_ms: next(5000) as i64,
                country,
                ts: format_ts(ms),
            }
        })
        .collect()
}

/// `YYYY-MM-DD HH:MM:SS.mmm` (UTC), Flink's SQL timestamp text.
pub fn format_ts(ms: u64) -> String {
    datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(ms as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

/// The clicks as `(key, payload)` pairs for [`crate::write_messages_file`].
pub fn as_messages(clicks: &[Click]) -> Vec<(Option<String>, String)> {
    clicks
        .iter()
        .map(|c| (Some(c.user_id.clone()), c.to_json()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_and_varied() {
        let a = generate(500);
        let b = generate(500);
        assert_eq!(
            a.iter().map(Click::to_json).collect::<Vec<_>>(),
            b.iter().map(Click::to_json).collect::<Vec<_>>()
        );
        assert!(a.iter().any(|c| c.country.is_none()));
        assert!(a.iter().any(|c| c.user_id.contains('é')));
        assert_eq!(format_ts(0), "1970-01-01 00:00:00.000");
    }
}
