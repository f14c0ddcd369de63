//! Processing time, for idle-partition detection. The system clock in production; a manual
//! clock lets tests advance time explicitly, so idleness is deterministic.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// A source of processing time.
#[derive(Clone, Debug)]
pub enum Clock {
    /// Real time.
    System(Instant),
    /// Time that moves only when told to.
    Manual(Arc<ManualClock>),
}

impl Default for Clock {
    fn default() -> Self {
        Clock::System(Instant::now())
    }
}

impl Clock {
    /// A clock under the caller's control, starting at zero.
    pub fn manual() -> (Clock, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock {
            now: watch::channel(Duration::ZERO).0,
        });
        (Clock::Manual(clock.clone()), clock)
    }

    /// Time elapsed since the clock's start.
    pub fn now(&self) -> Duration {
        match self {
            Clock::System(start) => start.elapsed(),
            Clock::Manual(m) => *m.now.borrow(),
        }
    }

    /// Resolves when time may have moved enough to re-check `timeout`-based conditions:
    /// after a fraction of `timeout` for the system clock, on every advance for a manual one.
    pub async fn tick(&self, timeout: Duration) {
        match self {
            Clock::System(_) => {
                tokio::time::sleep((timeout / 4).max(Duration::from_millis(10))).await
            }
            Clock::Manual(m) => {
                let mut rx = m.now.subscribe();
                rx.mark_unchanged();
                let _ = rx.changed().await;
            }
        }
    }
}

/// A clock advanced by hand.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<Duration>,
}

impl ManualClock {
    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|now| *now += by);
    }
}
