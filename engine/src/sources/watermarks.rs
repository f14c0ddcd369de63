//! Watermark generation: one watermark per source partition (the maximum of the table's
//! watermark expression over the rows it delivered), merged by minimum over the partitions
//! that are neither finished nor idle. Emitted only when the merged value advances.

use std::time::Duration;

use crate::runtime::{Clock, EventTime, Watermark};

#[derive(Clone, Copy, Debug)]
struct Partition {
    /// Highest watermark-expression value seen; `None` before the first row.
    max: Option<i64>,
    /// When it last delivered a row (processing time).
    last_active: Duration,
    finished: bool,
}

/// Tracks partition watermarks and decides when the source's watermark advances.
#[derive(Debug)]
pub struct WatermarkGenerator {
    partitions: Vec<Partition>,
    idle_timeout: Option<Duration>,
    clock: Clock,
    emitted: Option<i64>,
}

impl WatermarkGenerator {
    /// A generator for `partitions` partitions.
    pub fn new(partitions: usize, idle_timeout: Option<Duration>, clock: Clock) -> Self {
        let now = clock.now();
        Self {
            partitions: vec![
                Partition {
                    max: None,
                    last_active: now,
                    finished: false,
                };
                partitions
            ],
            idle_timeout,
            clock,
            emitted: None,
        }
    }

    /// Makes room for partitions that joined the read (topics discovered while it runs):
    /// they start with no event time, like a partition that has delivered nothing yet.
    pub fn ensure_partitions(&mut self, partitions: usize) {
        let now = self.clock.now();
        while self.partitions.len() < partitions {
            self.partitions.push(Partition {
                max: None,
                last_active: now,
                finished: false,
            });
        }
    }

    /// The per-partition state, for a checkpoint, by partition name (`names[slot]`):
    /// highest event time, how long the partition has been idle, whether it finished; and
    /// the last watermark emitted.
    pub fn snapshot(&self, names: &[String]) -> serde_json::Value {
        let now = self.clock.now();
        let partitions: serde_json::Map<String, serde_json::Value> = self
            .partitions
            .iter()
            .zip(names)
            .map(|(p, name)| {
                (
                    name.clone(),
                    serde_json::json!({
                        "max": p.max,
                        "idle_ms": now.saturating_sub(p.last_active).as_millis() as u64,
                        "finished": p.finished,
                    }),
                )
            })
            .collect();
        serde_json::json!({ "emitted": self.emitted, "partitions": partitions })
    }

    /// Puts back the partitions named in [`Self::snapshot`]s of one or more instances
    /// (`names[slot]` is each of this generator's partitions; ones no snapshot names start
    /// fresh). The last watermark emitted is the least of the snapshots that held any of
    /// these partitions (the instance's own, when the parallelism did not change).
    pub fn restore(&mut self, states: &[&serde_json::Value], names: &[String]) {
        let now = self.clock.now();
        let mut emitted: Option<Option<i64>> = None;
        for state in states {
            let Some(saved) = state["partitions"].as_object() else {
                continue;
            };
            let mut holds_ours = false;
            for (p, name) in self.partitions.iter_mut().zip(names) {
                let Some(s) = saved.get(name) else { continue };
                holds_ours = true;
                p.max = s["max"].as_i64();
                p.last_active =
                    now.saturating_sub(Duration::from_millis(s["idle_ms"].as_u64().unwrap_or(0)));
                p.finished = s["finished"].as_bool().unwrap_or(false);
            }
            if holds_ours {
                let theirs = state["emitted"].as_i64();
                emitted = Some(match emitted {
                    None => theirs,
                    Some(e) => e.zip(theirs).map(|(a, b)| a.min(b)),
                });
            }
        }
        self.emitted = emitted.flatten();
    }

    /// The last watermark emitted (a restored one, before anything was read).
    pub fn current(&self) -> Option<Watermark> {
        self.emitted.map(|ms| Watermark(EventTime(ms)))
    }

    /// Whether every partition that has not finished is idle (and one has not).
    pub fn all_idle(&self) -> bool {
        let now = self.clock.now();
        let mut open = self.partitions.iter().filter(|p| !p.finished).peekable();
        open.peek().is_some()
            && self
                .idle_timeout
                .is_some_and(|t| open.all(|p| now.saturating_sub(p.last_active) >= t))
    }

    /// The idle timeout, if partitions can go idle.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// The clock used for idleness.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Records a row of partition `slot` whose watermark expression is `value`.
    pub fn observe(&mut self, slot: usize, value: Option<i64>, now: Duration) {
        let Some(p) = self.partitions.get_mut(slot) else {
            return;
        };
        p.last_active = now;
        if let Some(v) = value {
            p.max = Some(p.max.map_or(v, |m| m.max(v)));
        }
    }

    /// Marks partition `slot` finished: it no longer holds the watermark back.
    pub fn finish(&mut self, slot: usize) {
        if let Some(p) = self.partitions.get_mut(slot) {
            p.finished = true;
        }
    }

    /// Whether every partition has finished.
    pub fn all_finished(&self) -> bool {
        self.partitions.iter().all(|p| p.finished)
    }

    /// The merged watermark if it advanced since the last call that returned one.
    pub fn advance(&mut self) -> Option<Watermark> {
        let now = self.clock.now();
        let mut merged: Option<i64> = None;
        let mut any_active = false;
        for p in &self.partitions {
            if p.finished {
                continue;
            }
            let idle = self
                .idle_timeout
                .is_some_and(|t| now.saturating_sub(p.last_active) >= t);
            if idle {
                continue;
            }
            any_active = true;
            // An active partition that has delivered nothing yet holds everything back.
            let max = p.max?;
            merged = Some(merged.map_or(max, |m| m.min(max)));
        }
        if !any_active {
            // Every partition is idle or finished: idle ones do not advance the watermark
            // (Flink marks the whole source idle), finished ones are covered by END.
            return None;
        }
        let merged = merged?;
        if self.emitted.is_some_and(|e| merged <= e) {
            return None;
        }
        self.emitted = Some(merged);
        Some(Watermark(EventTime(merged)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wm(ms: i64) -> Option<Watermark> {
        Some(Watermark(EventTime(ms)))
    }

    #[test]
    fn merges_by_minimum_and_only_advances() {
        let (clock, _) = Clock::manual();
        let mut g = WatermarkGenerator::new(2, None, clock.clone());
        g.observe(0, Some(100), clock.now());
        assert_eq!(g.advance(), None, "partition 1 has delivered nothing yet");
        g.observe(1, Some(50), clock.now());
        assert_eq!(g.advance(), wm(50));
        g.observe(1, Some(40), clock.now());
        assert_eq!(g.advance(), None, "a lower value does not move it back");
        g.observe(1, Some(200), clock.now());
        assert_eq!(g.advance(), wm(100));
        g.finish(0);
        assert_eq!(
            g.advance(),
            wm(200),
            "a finished partition stops holding it back"
        );
    }

    #[test]
    fn an_idle_partition_stops_holding_the_watermark_back() {
        let (clock, manual) = Clock::manual();
        let mut g = WatermarkGenerator::new(2, Some(Duration::from_secs(5)), clock.clone());
        g.observe(0, Some(1000), clock.now());
        assert_eq!(g.advance(), None);
        manual.advance(Duration::from_secs(4));
        g.observe(0, Some(1500), clock.now());
        assert_eq!(g.advance(), None, "not idle yet");
        manual.advance(Duration::from_secs(2));
        assert_eq!(g.advance(), wm(1500), "partition 1 is idle after 5 s");
        manual.advance(Duration::from_secs(10));
        assert_eq!(g.advance(), None, "all idle: no advance");
        g.observe(1, Some(1200), clock.now());
        assert_eq!(
            g.advance(),
            None,
            "partition 1 is back, behind: the watermark waits"
        );
    }
}
