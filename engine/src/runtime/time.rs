//! Event time and watermarks.

use std::fmt;

/// A point in event time: milliseconds since the epoch (the value of a `TIMESTAMP(3)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventTime(pub i64);

impl EventTime {
    /// Before every event.
    pub const MIN: EventTime = EventTime(i64::MIN);
    /// After every event: the watermark of an input that has ended.
    pub const MAX: EventTime = EventTime(i64::MAX);
    /// The earliest time a row may have: `0000-01-01 00:00:00.000`, the start of Flink's
    /// `TIMESTAMP(3)` range.
    pub const FIRST_VALID: EventTime = EventTime(-62_167_219_200_000);
    /// The latest time a row may have: `9999-12-31 23:59:59.999`. Window arithmetic on times
    /// in this range cannot overflow.
    pub const LAST_VALID: EventTime = EventTime(253_402_300_799_999);

    /// Why `ms` cannot be a row's event time, if it cannot.
    pub fn check_row_time(ms: i64) -> Option<String> {
        (!(Self::FIRST_VALID.0..=Self::LAST_VALID.0).contains(&ms)).then(|| {
            format!("event time {ms} ms is outside the range of TIMESTAMP(3) (years 0000 to 9999)")
        })
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EventTime::MIN => write!(f, "-inf"),
            EventTime::MAX => write!(f, "+inf"),
            EventTime(ms) => {
                match datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime(ms) {
                    Some(t) => write!(f, "{}", t.format("%Y-%m-%d %H:%M:%S%.3f")),
                    None => write!(f, "{ms} ms"),
                }
            }
        }
    }
}

/// "No row with an event time at or before this will arrive any more" (as far as the
/// source can tell; rows that do are late).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Watermark(pub EventTime);

impl Watermark {
    /// The watermark of an ended input: every window can fire.
    pub const END: Watermark = Watermark(EventTime::MAX);

    /// Whether a window ending (exclusively) at `end` has fired under this watermark:
    /// Flink's rule, `end - 1 <= watermark`.
    pub fn has_passed_end(&self, end: EventTime) -> bool {
        end.0.saturating_sub(1) <= (self.0).0
    }
}

impl fmt::Display for Watermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "watermark {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_fires_when_the_watermark_reaches_its_last_millisecond() {
        let end = EventTime(10_000);
        assert!(!Watermark(EventTime(9_998)).has_passed_end(end));
        assert!(Watermark(EventTime(9_999)).has_passed_end(end));
        assert!(Watermark::END.has_passed_end(EventTime::MAX));
        assert_eq!(EventTime(0).to_string(), "1970-01-01 00:00:00.000");
    }
}
