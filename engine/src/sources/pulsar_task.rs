//! The streaming source: reads a table's topics, decodes chunks into batches, emits
//! barriers, and acknowledges input only up to barriers the pipeline's end has completed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use magnetar_connectors::pulsar::{AckToken, PositionStore, PulsarSource, SourceConfig};
use magnetar_sql::catalog::TableDef;
use tokio::sync::{mpsc, watch};

use super::decode::SourceDecoder;
use crate::error::Result;
use crate::runtime::{Epoch, StreamMessage};

/// When the source emits barriers.
#[derive(Clone, Copy, Debug)]
pub enum BarrierPolicy {
    /// After every batch: the input behind each delivered batch is acknowledged as soon as
    /// the caller has it (interactive queries).
    AfterEachBatch,
    /// At this interval: sinks wait for broker confirmations once per interval (jobs).
    Every(Duration),
}

/// The reader settings of a table.
pub fn source_config(
    table: &TableDef,
    receiver_queue_size: u32,
    positions: Arc<dyn PositionStore>,
) -> SourceConfig {
    let o = &table.options;
    SourceConfig {
        topics: o.topics.clone(),
        subscription_name: o.subscription_name.clone(),
        subscription_type: o.subscription_type,
        start: o.start,
        stop: o.stop,
        receiver_queue_size,
        consumer_name: None,
        positions: Some(positions),
    }
}

/// A source task of the streaming runtime.
pub struct PulsarSourceTask {
    /// The table.
    pub table: Arc<TableDef>,
    /// The opened reader.
    pub source: PulsarSource,
    /// Decoder into the projected schema.
    pub decoder: SourceDecoder,
    /// Most messages per batch.
    pub batch_size: usize,
    /// Barrier emission.
    pub barriers: BarrierPolicy,
}

enum Finish {
    /// Reached the stop position, or was asked to stop: drain and acknowledge.
    Drain,
    /// Nobody reads the output any more.
    DownstreamGone,
}

struct Acks {
    next_epoch: u64,
    pending: VecDeque<(Epoch, AckToken)>,
}

impl Acks {
    /// Acknowledges every token whose barrier has completed.
    fn acknowledge(&mut self, source: &mut PulsarSource, completed: Epoch) -> Result<()> {
        while self.pending.front().is_some_and(|(e, _)| *e <= completed) {
            if let Some((_, token)) = self.pending.pop_front() {
                source.ack(token)?;
            }
        }
        Ok(())
    }
}

impl PulsarSourceTask {
    /// Runs until the stop position, a stop request, an error, or the output is dropped.
    pub async fn run(
        self,
        out: mpsc::Sender<StreamMessage>,
        completed: watch::Receiver<Epoch>,
        stop: watch::Receiver<bool>,
    ) {
        if let Err(e) = self.run_inner(&out, completed, stop).await {
            let _ = out.send(StreamMessage::Error(Arc::new(e))).await;
        }
    }

    async fn run_inner(
        self,
        out: &mpsc::Sender<StreamMessage>,
        mut completed: watch::Receiver<Epoch>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<()> {
        tracing::debug!(table = %self.table.name, "source started");
        let mut source = self.source;
        let mut decoder = self.decoder;
        let mut acks = Acks {
            next_epoch: 1,
            pending: VecDeque::new(),
        };
        let (every, interval) = match self.barriers {
            BarrierPolicy::AfterEachBatch => (false, Duration::from_secs(3600)),
            BarrierPolicy::Every(d) => (true, d),
        };
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut unbarriered = false;
        let result: Result<Finish> = async {
            loop {
                tokio::select! {
                    biased;
                    changed = stop.changed() => {
                        if changed.is_err() || *stop.borrow() {
                            return Ok(Finish::Drain);
                        }
                    }
                    _ = out.closed() => return Ok(Finish::DownstreamGone),
                    changed = completed.changed() => {
                        if changed.is_err() {
                            return Ok(Finish::DownstreamGone);
                        }
                        let done = *completed.borrow_and_update();
                        acks.acknowledge(&mut source, done)?;
                    }
                    _ = ticker.tick(), if every && unbarriered => {
                        if !emit_barrier(out, &mut source, &mut acks).await {
                            return Ok(Finish::DownstreamGone);
                        }
                        unbarriered = false;
                    }
                    chunk = source.next_chunk(self.batch_size) => {
                        let Some(chunk) = chunk? else {
                            return Ok(Finish::Drain);
                        };
                        unbarriered = true;
                        if let Some(batch) = decoder.decode(&chunk)?
                            && out.send(StreamMessage::Batch(batch)).await.is_err()
                        {
                            return Ok(Finish::DownstreamGone);
                        }
                        if !every {
                            if !emit_barrier(out, &mut source, &mut acks).await {
                                return Ok(Finish::DownstreamGone);
                            }
                            unbarriered = false;
                        }
                    }
                }
            }
        }
        .await;
        let finish = match result {
            Ok(f) => f,
            Err(e) => {
                source.close().await;
                return Err(e);
            }
        };
        if let Finish::Drain = finish {
            // A last barrier covers everything read; acknowledge once the end has it.
            let last = Epoch(acks.next_epoch);
            if emit_barrier(out, &mut source, &mut acks).await
                && out.send(StreamMessage::End).await.is_ok()
            {
                while *completed.borrow_and_update() < last {
                    if completed.changed().await.is_err() {
                        break;
                    }
                }
            }
        }
        // Also when the output was dropped: acknowledge what it had confirmed.
        let done = *completed.borrow();
        let acked = acks.acknowledge(&mut source, done);
        source.close().await;
        acked
    }
}

/// Sends a barrier and remembers what to acknowledge when it completes; false when the
/// output is gone.
async fn emit_barrier(
    out: &mpsc::Sender<StreamMessage>,
    source: &mut PulsarSource,
    acks: &mut Acks,
) -> bool {
    let epoch = Epoch(acks.next_epoch);
    acks.next_epoch += 1;
    acks.pending.push_back((epoch, source.take_ack_token()));
    out.send(StreamMessage::Barrier(epoch)).await.is_ok()
}
