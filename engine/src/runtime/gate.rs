//! The input side of a task: the channels from every upstream instance of every input,
//! merged into one sequence of events.
//!
//! - Watermarks: each channel's latest watermark is kept; the task's watermark is the least
//!   over channels that are neither ended nor idle, forwarded only when it advances.
//! - Barriers: once a channel delivers barrier N it is not read again until every other
//!   channel has delivered N too (alignment); then the task sees N once. Its data meanwhile
//!   waits in the channel, so backpressure still reaches its sender.
//! - A channel that ends stops counting for both; when all have ended, so has the input.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;

use super::{Epoch, StreamMessage, Watermark};
use crate::error::EngineError;

/// One channel into a task.
#[derive(Debug)]
pub struct InputChannel {
    /// The task's input it feeds (a union's inputs all feed the same one).
    pub input: usize,
    /// The channel.
    pub rx: mpsc::Receiver<StreamMessage>,
}

/// What the task does next.
#[derive(Debug)]
pub enum GateEvent {
    /// Rows on an input.
    Batch(usize, RecordBatch),
    /// The task's watermark advanced.
    Watermark(Watermark),
    /// Every live input is idle.
    Idle,
    /// Every live channel delivered this barrier.
    Barrier(Epoch),
    /// Every channel ended.
    End,
    /// An upstream task failed.
    Error(Arc<EngineError>),
}

#[derive(Debug)]
struct Channel {
    input: usize,
    rx: mpsc::Receiver<StreamMessage>,
    watermark: Option<Watermark>,
    idle: bool,
    blocked: bool,
    ended: bool,
}

/// Merges a task's input channels.
#[derive(Debug)]
pub struct InputGate {
    channels: Vec<Channel>,
    /// Where the next poll starts, so every channel gets its turn.
    next: usize,
    aligning: Option<Epoch>,
    emitted: Option<Watermark>,
    idle_sent: bool,
    ended: bool,
}

impl InputGate {
    /// A gate over `channels`.
    pub fn new(channels: Vec<InputChannel>) -> Self {
        Self {
            channels: channels
                .into_iter()
                .map(|c| Channel {
                    input: c.input,
                    rx: c.rx,
                    watermark: None,
                    idle: false,
                    blocked: false,
                    ended: false,
                })
                .collect(),
            next: 0,
            aligning: None,
            emitted: None,
            idle_sent: false,
            ended: false,
        }
    }

    /// The task's current watermark.
    pub fn watermark(&self) -> Option<Watermark> {
        self.emitted
    }

    /// The next event; after [`GateEvent::End`] or [`GateEvent::Error`] there are none.
    pub async fn next(&mut self) -> GateEvent {
        loop {
            if self.ended {
                return GateEvent::End;
            }
            let (index, message) = self.recv().await;
            let event = match message {
                Some(message) => self.on_message(index, message),
                None => Some(GateEvent::Error(Arc::new(EngineError::Pipeline(
                    "an upstream task stopped without ending its stream".into(),
                )))),
            };
            if let Some(event) = event {
                return event;
            }
        }
    }

    /// A message from a channel that is neither blocked nor ended.
    async fn recv(&mut self) -> (usize, Option<StreamMessage>) {
        poll_fn(|cx| {
            let n = self.channels.len();
            for k in 0..n {
                let i = (self.next + k) % n;
                let channel = &mut self.channels[i];
                if channel.blocked || channel.ended {
                    continue;
                }
                if let Poll::Ready(message) = channel.rx.poll_recv(cx) {
                    self.next = (i + 1) % n;
                    return Poll::Ready((i, message));
                }
            }
            Poll::Pending
        })
        .await
    }

    fn on_message(&mut self, index: usize, message: StreamMessage) -> Option<GateEvent> {
        match message {
            StreamMessage::Batch(batch) => {
                let channel = &mut self.channels[index];
                channel.idle = false;
                self.idle_sent = false;
                Some(GateEvent::Batch(channel.input, batch))
            }
            StreamMessage::Watermark(w) => {
                let channel = &mut self.channels[index];
                channel.idle = false;
                channel.watermark = Some(channel.watermark.map_or(w, |old| old.max(w)));
                self.combined()
            }
            StreamMessage::Idle => {
                self.channels[index].idle = true;
                self.combined()
            }
            StreamMessage::Barrier(epoch) => {
                if let Some(aligning) = self.aligning
                    && aligning != epoch
                {
                    return Some(GateEvent::Error(Arc::new(EngineError::Internal(format!(
                        "barrier {} arrived while aligning barrier {}",
                        epoch.0, aligning.0
                    )))));
                }
                self.aligning = Some(epoch);
                self.channels[index].blocked = true;
                self.release_barrier()
            }
            StreamMessage::End => {
                self.channels[index].ended = true;
                if let Some(barrier) = self.release_barrier() {
                    return Some(barrier);
                }
                if self.channels.iter().all(|c| c.ended) {
                    self.ended = true;
                    return Some(GateEvent::End);
                }
                // The ended channel no longer holds the watermark back.
                self.combined()
            }
            StreamMessage::Error(e) => {
                self.ended = true;
                Some(GateEvent::Error(e))
            }
        }
    }

    /// The barrier being aligned, once every live channel has delivered it.
    fn release_barrier(&mut self) -> Option<GateEvent> {
        let epoch = self.aligning?;
        if self.channels.iter().any(|c| !c.ended && !c.blocked) {
            return None;
        }
        self.aligning = None;
        for c in &mut self.channels {
            c.blocked = false;
        }
        Some(GateEvent::Barrier(epoch))
    }

    /// The watermark over live, active channels, when it advanced; or idleness.
    fn combined(&mut self) -> Option<GateEvent> {
        let mut active = self
            .channels
            .iter()
            .filter(|c| !c.ended && !c.idle)
            .peekable();
        if active.peek().is_none() {
            if self.channels.iter().all(|c| c.ended) || self.idle_sent {
                return None;
            }
            self.idle_sent = true;
            return Some(GateEvent::Idle);
        }
        let mut least: Option<Watermark> = None;
        for c in active {
            // A channel without a watermark yet holds everything back.
            let w = c.watermark?;
            least = Some(least.map_or(w, |l| l.min(w)));
        }
        let least = least?;
        self.idle_sent = false;
        if self.emitted.is_some_and(|e| least <= e) {
            return None;
        }
        self.emitted = Some(least);
        Some(GateEvent::Watermark(least))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::EventTime;

    fn wm(ms: i64) -> StreamMessage {
        StreamMessage::Watermark(Watermark(EventTime(ms)))
    }

    fn gate(n: usize) -> (InputGate, Vec<mpsc::Sender<StreamMessage>>) {
        let mut senders = Vec::new();
        let mut channels = Vec::new();
        for i in 0..n {
            let (tx, rx) = mpsc::channel(16);
            senders.push(tx);
            channels.push(InputChannel { input: i % 2, rx });
        }
        (InputGate::new(channels), senders)
    }

    async fn next_watermark(g: &mut InputGate) -> Option<i64> {
        match tokio::time::timeout(std::time::Duration::from_millis(50), g.next()).await {
            Ok(GateEvent::Watermark(w)) => Some(w.0.0),
            _ => None,
        }
    }

    #[tokio::test]
    async fn the_watermark_is_the_least_of_the_channels_and_only_advances() {
        let (mut g, tx) = gate(2);
        tx[0].send(wm(100)).await.expect("send");
        assert_eq!(next_watermark(&mut g).await, None, "channel 1 has none yet");
        tx[1].send(wm(50)).await.expect("send");
        assert_eq!(next_watermark(&mut g).await, Some(50));
        tx[1].send(wm(200)).await.expect("send");
        assert_eq!(next_watermark(&mut g).await, Some(100));
        // An idle channel stops holding it back; the other one then leads.
        tx[0].send(StreamMessage::Idle).await.expect("send");
        assert_eq!(next_watermark(&mut g).await, Some(200));
        // Back with rows: it holds the watermark again (at 100, which is not re-sent).
        tx[0].send(wm(150)).await.expect("send");
        assert_eq!(next_watermark(&mut g).await, None);
        tx[0].send(wm(300)).await.expect("send");
        tx[1].send(wm(400)).await.expect("send");
        assert_eq!(next_watermark(&mut g).await, Some(300));
    }

    #[tokio::test]
    async fn barriers_are_aligned_and_the_aligned_channel_is_not_read() {
        let (mut g, tx) = gate(2);
        let batch = RecordBatch::new_empty(Arc::new(datafusion::arrow::datatypes::Schema::empty()));
        tx[0]
            .send(StreamMessage::Barrier(Epoch(1)))
            .await
            .expect("send");
        tx[0]
            .send(StreamMessage::Batch(batch.clone()))
            .await
            .expect("send");
        tx[1]
            .send(StreamMessage::Batch(batch.clone()))
            .await
            .expect("send");
        // Channel 0's batch comes after its barrier: it waits until channel 1 aligns.
        assert!(matches!(g.next().await, GateEvent::Batch(1, _)));
        tx[1]
            .send(StreamMessage::Barrier(Epoch(1)))
            .await
            .expect("send");
        assert!(matches!(g.next().await, GateEvent::Barrier(Epoch(1))));
        assert!(matches!(g.next().await, GateEvent::Batch(0, _)));
        // An ended channel no longer takes part.
        tx[1].send(StreamMessage::End).await.expect("send");
        tx[0]
            .send(StreamMessage::Barrier(Epoch(2)))
            .await
            .expect("send");
        assert!(matches!(g.next().await, GateEvent::Barrier(Epoch(2))));
        tx[0].send(StreamMessage::End).await.expect("send");
        assert!(matches!(g.next().await, GateEvent::End));
    }

    #[tokio::test]
    async fn a_channel_ending_mid_alignment_releases_the_barrier() {
        let (mut g, tx) = gate(3);
        tx[0]
            .send(StreamMessage::Barrier(Epoch(4)))
            .await
            .expect("send");
        tx[1]
            .send(StreamMessage::Barrier(Epoch(4)))
            .await
            .expect("send");
        tx[2].send(StreamMessage::End).await.expect("send");
        assert!(matches!(g.next().await, GateEvent::Barrier(Epoch(4))));
    }

    #[tokio::test]
    async fn all_idle_is_passed_on_once() {
        let (mut g, tx) = gate(2);
        tx[0].send(StreamMessage::Idle).await.expect("send");
        tx[1].send(StreamMessage::Idle).await.expect("send");
        tx[0].send(StreamMessage::Idle).await.expect("send");
        tx[1].send(wm(10)).await.expect("send");
        assert!(matches!(g.next().await, GateEvent::Idle));
        // The repeated Idle passes nothing on; channel 1's watermark leads alone.
        assert_eq!(next_watermark(&mut g).await, Some(10));
    }
}
