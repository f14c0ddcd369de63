//! A progress bar for backfills from tiered storage: ledgers, bytes, messages, rate, ETA.
//! Drawn on stderr only when it is a terminal; a summary line is printed either way.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use magnetar::ReadStatsHandle;
use magnetar::connectors::tiered::BackfillSnapshot;

/// How often the bar is refreshed.
const TICK: Duration = Duration::from_millis(200);

/// The bar's task; dropping the guard clears the bar.
pub struct BackfillBar {
    task: tokio::task::JoinHandle<()>,
}

impl BackfillBar {
    /// Watches `stats` and draws a bar while any partition is backfilling.
    pub fn start(stats: ReadStatsHandle) -> BackfillBar {
        let task = tokio::spawn(async move {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "backfill [{bar:30}] {bytes}/{total_bytes} {msg} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            let started = Instant::now();
            loop {
                let now = stats.get().backfill;
                if now.ledgers_total > 0 {
                    bar.set_length(now.bytes_total);
                    bar.set_position(now.bytes_read);
                    bar.set_message(describe(&now, started.elapsed()));
                    if now.partitions_active == 0 {
                        break;
                    }
                }
                tokio::time::sleep(TICK).await;
            }
            bar.finish_and_clear();
        });
        BackfillBar { task }
    }
}

impl Drop for BackfillBar {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `ledgers 3/8 · 1204332 msgs · 401444 msg/s`.
pub fn describe(now: &BackfillSnapshot, elapsed: Duration) -> String {
    let rate = now.messages as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "ledgers {}/{} · {} msgs · {:.0} msg/s",
        now.ledgers_done, now.ledgers_total, now.messages, rate
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_ledgers_messages_and_rate() {
        let now = BackfillSnapshot {
            ledgers_total: 8,
            ledgers_done: 3,
            bytes_total: 100,
            bytes_read: 40,
            messages: 1000,
            partitions_active: 2,
        };
        assert_eq!(
            describe(&now, Duration::from_secs(2)),
            "ledgers 3/8 · 1000 msgs · 500 msg/s"
        );
    }
}
