//! Barrier injection: one injector per running graph numbers the epochs and tells every
//! source instance which barriers are due. Every source emits every epoch in order, so each
//! channel carries the same sequence of barriers and tasks can align them.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Epoch;

/// What is asked of the sources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Injection {
    /// Barriers up to this epoch are due.
    pub epoch: Epoch,
    /// Before emitting barriers up to this one, a source takes every row available to it now
    /// and lets idle partitions release the watermark (settling).
    pub drain: Epoch,
    /// After emitting this barrier, sources end (a stop: the last checkpoint).
    pub stop: Option<Epoch>,
}

/// Injects barriers into a graph's sources.
#[derive(Debug)]
pub struct BarrierInjector {
    tx: watch::Sender<Injection>,
}

impl Default for BarrierInjector {
    fn default() -> Self {
        Self {
            tx: watch::channel(Injection::default()).0,
        }
    }
}

impl BarrierInjector {
    /// Where a source instance watches for injections.
    pub fn subscribe(&self) -> watch::Receiver<Injection> {
        self.tx.subscribe()
    }

    /// The latest epoch injected.
    pub fn latest(&self) -> Epoch {
        self.tx.borrow().epoch
    }

    /// Injects the next barrier; returns its epoch.
    pub fn inject(&self) -> Epoch {
        let mut epoch = Epoch(0);
        self.tx.send_modify(|i| {
            i.epoch = i.epoch.next();
            epoch = i.epoch;
        });
        epoch
    }

    /// Injects the next barrier, to be emitted once the sources have taken what is
    /// available to them now.
    pub fn inject_drained(&self) -> Epoch {
        let mut epoch = Epoch(0);
        self.tx.send_modify(|i| {
            i.epoch = i.epoch.next();
            i.drain = i.epoch;
            epoch = i.epoch;
        });
        epoch
    }

    /// Injects a barrier after `seen` unless one is already due (a source that wants what
    /// it read acknowledged soon: after each batch of a query, or at its input's end).
    pub fn request_after(&self, seen: Epoch) {
        self.tx.send_if_modified(|i| {
            if i.epoch > seen {
                return false;
            }
            i.epoch = seen.next();
            true
        });
    }

    /// Asks the sources to end after one more barrier; returns its epoch (the same one if
    /// a stop was asked already).
    pub fn stop(&self) -> Epoch {
        let mut epoch = Epoch(0);
        self.tx.send_modify(|i| {
            if let Some(stop) = i.stop {
                epoch = stop;
                return;
            }
            i.epoch = i.epoch.next();
            i.stop = Some(i.epoch);
            epoch = i.epoch;
        });
        epoch
    }

    /// Whether a stop was asked.
    pub fn stopping(&self) -> bool {
        self.tx.borrow().stop.is_some()
    }

    /// A task injecting a barrier every `interval` until it is aborted or the sources
    /// are told to stop.
    pub fn every(self: &std::sync::Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let weak = std::sync::Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate.
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(injector) = weak.upgrade() else {
                    return;
                };
                if injector.stopping() {
                    return;
                }
                injector.inject();
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_coalesce_and_a_stop_is_asked_once() {
        let injector = BarrierInjector::default();
        injector.request_after(Epoch(0));
        injector.request_after(Epoch(0));
        assert_eq!(
            injector.latest(),
            Epoch(1),
            "two requests after 0: one barrier"
        );
        injector.request_after(Epoch(1));
        assert_eq!(injector.latest(), Epoch(2));
        assert_eq!(injector.inject_drained(), Epoch(3));
        assert_eq!(injector.stop(), Epoch(4));
        assert_eq!(injector.stop(), Epoch(4));
        let rx = injector.subscribe();
        assert_eq!(
            *rx.borrow(),
            Injection {
                epoch: Epoch(4),
                drain: Epoch(3),
                stop: Some(Epoch(4))
            }
        );
    }
}
