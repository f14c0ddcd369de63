//! What the kill -9 tests share: a replayable seed, random kill moments, and killing a job.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A seed from the clock (printed, so a failing run can be replayed with
/// `MAGNETAR_CRASH_SEED`).
pub fn seed() -> u64 {
    let seed = std::env::var("MAGNETAR_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("crash test seed: {seed} (replay with MAGNETAR_CRASH_SEED={seed})");
    seed
}

/// xorshift64*: enough randomness for kill moments.
pub struct Moments(pub u64);

impl Moments {
    /// A duration between `lo_ms` and `hi_ms`.
    pub fn next_in(&mut self, lo_ms: u64, hi_ms: u64) -> Duration {
        let mut x = self.0 | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        Duration::from_millis(lo_ms + r % (hi_ms - lo_ms))
    }
}

/// Kills `child` with SIGKILL after `after`, and returns what it printed.
pub async fn kill_after(mut child: tokio::process::Child, after: Duration) -> String {
    tokio::time::sleep(after).await;
    child.start_kill().expect("kill -9 the job");
    let out = child
        .wait_with_output()
        .await
        .expect("wait for the killed job");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The checkpoint a run's log says it resumed from.
pub fn resumed_from(stderr: &str) -> Option<u64> {
    stderr
        .split("resumed from checkpoint ")
        .nth(1)?
        .split(')')
        .next()?
        .parse()
        .ok()
}

/// Starts a job with `spawn` and kills it with SIGKILL after a random 0.8–2.5 s, `times`
/// times in a row, saying each time which checkpoint the killed run had resumed from.
pub async fn kill_repeatedly(
    times: usize,
    moments: &mut Moments,
    spawn: impl Fn() -> tokio::process::Child,
) {
    for kill in 1..=times {
        let after = moments.next_in(800, 2_500);
        let stderr = kill_after(spawn(), after).await;
        eprintln!(
            "kill {kill} after {after:?}; resumed from {:?}",
            resumed_from(&stderr)
        );
    }
}
