//! A job's input rate: messages per second over the last few seconds, from samples of its
//! read counter taken once a second while it runs.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How far back the rate looks.
const WINDOW: Duration = Duration::from_secs(10);

/// Samples of a counter, newest last.
#[derive(Debug, Default)]
pub struct InputRate {
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl InputRate {
    /// Records the counter's value at `now`.
    pub fn sample(&self, now: Instant, total: u64) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.push_back((now, total));
        // Keep one sample at or beyond the window's start, so the rate spans all of it.
        while samples.len() > 2 && samples[1].0 + WINDOW <= now {
            samples.pop_front();
        }
    }

    /// Messages per second between the oldest kept sample and `(now, total)`; `None` before
    /// there is a sample to compare with.
    pub fn per_second(&self, now: Instant, total: u64) -> Option<f64> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let (then, before) = *samples.front()?;
        let elapsed = now.checked_duration_since(then)?.as_secs_f64();
        (elapsed >= 0.5).then(|| total.saturating_sub(before) as f64 / elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_covers_the_last_ten_seconds() {
        let rate = InputRate::default();
        let t0 = Instant::now();
        assert_eq!(rate.per_second(t0, 0), None);
        // 100 msg/s for 20 s, then nothing for 5 s.
        for s in 0..=20u64 {
            rate.sample(t0 + Duration::from_secs(s), s * 100);
        }
        for s in 21..=25u64 {
            rate.sample(t0 + Duration::from_secs(s), 2000);
        }
        let now = t0 + Duration::from_secs(25);
        // From 15 s (1500) to 25 s (2000): 50 msg/s.
        let r = rate.per_second(now, 2000).expect("a rate");
        assert!((r - 50.0).abs() < 1e-9, "{r}");
    }
}
