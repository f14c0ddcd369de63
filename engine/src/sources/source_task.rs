//! The streaming source task: reads a table, decodes chunks into batches, generates
//! watermarks, emits barriers, and acknowledges input only up to barriers the pipeline's
//! end has completed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use magnetar_sql::catalog::TableDef;
use magnetar_sql::options::EmitStrategy;
use tokio::sync::{mpsc, watch};

use super::decode::{Decoded, SourceDecoder};
use super::reader::{ReadAck, ReadChunk, Reader};
use super::watermarks::WatermarkGenerator;
use crate::checkpoint::{CheckpointPart, PartSender, SourceCheckpoint};
use crate::error::Result;
use crate::runtime::{Epoch, SourceSettle, StreamMessage, Watermark};

/// When the source emits barriers.
#[derive(Clone, Copy, Debug)]
pub enum BarrierPolicy {
    /// After every batch: the input behind each delivered batch is acknowledged as soon as
    /// the caller has it (interactive queries).
    AfterEachBatch,
    /// At this interval: sinks wait for broker confirmations once per interval (jobs).
    Every(Duration),
}

/// Watermark generation of a source.
#[derive(Debug)]
pub struct EventTimeSettings {
    /// When watermarks are emitted.
    pub emit: EmitStrategy,
    /// Per-partition tracking.
    pub generator: WatermarkGenerator,
}

/// A source task of the streaming runtime.
pub struct SourceTask {
    /// The table.
    pub table: Arc<TableDef>,
    /// The opened reader.
    pub reader: Reader,
    /// Decoder into the projected schema.
    pub decoder: SourceDecoder,
    /// Most messages per batch.
    pub batch_size: usize,
    /// Barrier emission.
    pub barriers: BarrierPolicy,
    /// Watermarks, when the pipeline needs them.
    pub event_time: Option<EventTimeSettings>,
    /// In a checkpointed job: this source's index and where its positions go at barriers.
    pub checkpoint: Option<(usize, PartSender)>,
}

enum Finish {
    /// The input ended: emit the end watermark, drain and acknowledge.
    End,
    /// Asked to stop: drain and acknowledge what was read (windows stay open).
    Stop,
    /// Nobody reads the output any more.
    DownstreamGone,
}

struct Acks {
    next_epoch: u64,
    pending: VecDeque<(Epoch, ReadAck)>,
    checkpoint: Option<(usize, PartSender)>,
}

impl Acks {
    /// Acknowledges every token whose barrier has completed.
    fn acknowledge(&mut self, reader: &mut Reader, completed: Epoch) -> Result<()> {
        while self.pending.front().is_some_and(|(e, _)| *e <= completed) {
            if let Some((_, token)) = self.pending.pop_front() {
                reader.ack(token)?;
            }
        }
        Ok(())
    }
}

/// Sends a barrier and remembers what to acknowledge when it completes; false when the
/// output is gone.
async fn emit_barrier(
    out: &mpsc::Sender<StreamMessage>,
    reader: &mut Reader,
    acks: &mut Acks,
    event_time: Option<&EventTimeSettings>,
) -> bool {
    let epoch = Epoch(acks.next_epoch);
    acks.next_epoch += 1;
    acks.pending.push_back((epoch, reader.take_ack_token()));
    if let Some((index, parts)) = &acks.checkpoint {
        // Before the barrier: the checkpoint's other parts come after it.
        let part = SourceCheckpoint {
            positions: reader.positions(),
            watermarks: event_time.map(|e| e.generator.snapshot()),
        };
        if !parts.send(
            epoch,
            CheckpointPart::Source {
                index: *index,
                part,
            },
        ) {
            return false;
        }
    }
    out.send(StreamMessage::Barrier(epoch)).await.is_ok()
}

/// Sends decoded rows with the watermarks they advance; false when the output is gone.
async fn send_rows(
    out: &mpsc::Sender<StreamMessage>,
    decoded: Decoded,
    event_time: Option<&mut EventTimeSettings>,
) -> bool {
    let Some(settings) = event_time else {
        return out.send(StreamMessage::Batch(decoded.batch)).await.is_ok();
    };
    let now = settings.generator.clock().now();
    let times = decoded.event_times.unwrap_or_default();
    let rows = decoded.batch.num_rows();
    match settings.emit {
        EmitStrategy::Periodic => {
            for (row, slot) in decoded.slots.iter().enumerate() {
                settings
                    .generator
                    .observe(*slot, times.get(row).copied().flatten(), now);
            }
            if out.send(StreamMessage::Batch(decoded.batch)).await.is_err() {
                return false;
            }
            match settings.generator.advance() {
                Some(w) => out.send(StreamMessage::Watermark(w)).await.is_ok(),
                None => true,
            }
        }
        EmitStrategy::OnEvent => {
            // As if a watermark followed every row; cut the batch only where it advances.
            let mut start = 0;
            for (row, slot) in decoded.slots.iter().enumerate() {
                settings
                    .generator
                    .observe(*slot, times.get(row).copied().flatten(), now);
                if let Some(w) = settings.generator.advance() {
                    let piece = decoded.batch.slice(start, row + 1 - start);
                    if out.send(StreamMessage::Batch(piece)).await.is_err()
                        || out.send(StreamMessage::Watermark(w)).await.is_err()
                    {
                        return false;
                    }
                    start = row + 1;
                }
            }
            start >= rows
                || out
                    .send(StreamMessage::Batch(
                        decoded.batch.slice(start, rows - start),
                    ))
                    .await
                    .is_ok()
        }
    }
}

/// Decodes and sends a chunk, then the watermark that finished partitions advance; false
/// when the output is gone.
async fn forward_chunk(
    out: &mpsc::Sender<StreamMessage>,
    chunk: &ReadChunk,
    reader: &Reader,
    decoder: &mut SourceDecoder,
    mut event_time: Option<&mut EventTimeSettings>,
) -> Result<bool> {
    if let Some(decoded) = decoder.decode(chunk).await?
        && !send_rows(out, decoded, event_time.as_deref_mut()).await
    {
        return Ok(false);
    }
    if let Some(settings) = event_time {
        for slot in 0..reader.partition_count() {
            if reader.partition_finished(slot) {
                settings.generator.finish(slot);
            }
        }
        if let Some(w) = settings.generator.advance()
            && out.send(StreamMessage::Watermark(w)).await.is_err()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// How often a source asks the broker how far behind it is (`SHOW JOBS`'s backlog).
const BACKLOG_EVERY: Duration = Duration::from_secs(2);

impl SourceTask {
    /// Runs until the stop position, a stop request, an error, or the output is dropped.
    pub async fn run(
        self,
        out: mpsc::Sender<StreamMessage>,
        completed: watch::Receiver<Epoch>,
        stop: watch::Receiver<bool>,
        settle: SourceSettle,
    ) {
        if let Err(e) = self.run_inner(&out, completed, stop, settle).await {
            let _ = out.send(StreamMessage::Error(Arc::new(e))).await;
        }
    }

    async fn run_inner(
        self,
        out: &mpsc::Sender<StreamMessage>,
        mut completed: watch::Receiver<Epoch>,
        mut stop: watch::Receiver<bool>,
        settle: SourceSettle,
    ) -> Result<()> {
        let SourceSettle {
            requests: mut settle_requests,
            answered: settle_answered,
        } = settle;
        let mut settling = true;
        tracing::debug!(table = %self.table.name, "source started");
        let mut reader = self.reader;
        let mut decoder = self.decoder;
        let mut event_time = self.event_time;
        let mut acks = Acks {
            next_epoch: 1,
            pending: VecDeque::new(),
            checkpoint: self.checkpoint,
        };
        let (every, interval) = match self.barriers {
            BarrierPolicy::AfterEachBatch => (false, Duration::from_secs(3600)),
            BarrierPolicy::Every(d) => (true, d),
        };
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let idle_timeout = event_time.as_ref().and_then(|e| e.generator.idle_timeout());
        let clock = event_time.as_ref().map(|e| e.generator.clock().clone());
        let mut unbarriered = false;
        let mut backlog_ticker = tokio::time::interval(BACKLOG_EVERY);
        backlog_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result: Result<Finish> = async {
            loop {
                tokio::select! {
                    biased;
                    changed = stop.changed() => {
                        if changed.is_err() || *stop.borrow() {
                            return Ok(Finish::Stop);
                        }
                    }
                    _ = out.closed() => return Ok(Finish::DownstreamGone),
                    changed = completed.changed() => {
                        if changed.is_err() {
                            return Ok(Finish::DownstreamGone);
                        }
                        let done = *completed.borrow_and_update();
                        acks.acknowledge(&mut reader, done)?;
                    }
                    _ = backlog_ticker.tick() => {
                        let backlog = reader.backlog().await;
                        *decoder.metrics().backlog.lock().unwrap_or_else(|p| p.into_inner()) = backlog;
                    }
                    _ = ticker.tick(), if every && unbarriered => {
                        if !emit_barrier(out, &mut reader, &mut acks, event_time.as_ref()).await {
                            return Ok(Finish::DownstreamGone);
                        }
                        unbarriered = false;
                    }
                    // Processing time moved: an idle partition may release the watermark.
                    _ = async {
                        match (&clock, idle_timeout) {
                            (Some(c), Some(t)) => c.tick(t).await,
                            _ => std::future::pending().await,
                        }
                    } => {
                        if let Some(w) = event_time.as_mut().and_then(|e| e.generator.advance())
                            && out.send(StreamMessage::Watermark(w)).await.is_err()
                        {
                            return Ok(Finish::DownstreamGone);
                        }
                    }
                    changed = settle_requests.changed(), if settling => {
                        if changed.is_err() {
                            settling = false;
                            continue;
                        }
                        let request = *settle_requests.borrow_and_update();
                        // Everything available now, without waiting for more.
                        while let Some(chunk) = reader.next_chunk(self.batch_size).now_or_never() {
                            let Some(chunk) = chunk? else {
                                return Ok(Finish::End);
                            };
                            if !forward_chunk(out, &chunk, &reader, &mut decoder, event_time.as_mut()).await? {
                                return Ok(Finish::DownstreamGone);
                            }
                        }
                        // Partitions idle by now release the watermark.
                        if let Some(w) = event_time.as_mut().and_then(|e| e.generator.advance())
                            && out.send(StreamMessage::Watermark(w)).await.is_err()
                        {
                            return Ok(Finish::DownstreamGone);
                        }
                        let epoch = Epoch(acks.next_epoch);
                        if !emit_barrier(out, &mut reader, &mut acks, event_time.as_ref()).await {
                            return Ok(Finish::DownstreamGone);
                        }
                        unbarriered = false;
                        settle_answered.send_replace((request, epoch));
                    }
                    chunk = reader.next_chunk(self.batch_size) => {
                        let Some(chunk) = chunk? else {
                            return Ok(Finish::End);
                        };
                        unbarriered = true;
                        if !forward_chunk(out, &chunk, &reader, &mut decoder, event_time.as_mut()).await? {
                            return Ok(Finish::DownstreamGone);
                        }
                        if !every {
                            if !emit_barrier(out, &mut reader, &mut acks, event_time.as_ref()).await {
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
                reader.close().await;
                return Err(e);
            }
        };
        if matches!(finish, Finish::End | Finish::Stop) {
            // At the end of the input every window may fire (Flink's behaviour on a finite
            // source); a stop keeps them open.
            let end_sent = !matches!(finish, Finish::End)
                || event_time.is_none()
                || out
                    .send(StreamMessage::Watermark(Watermark::END))
                    .await
                    .is_ok();
            // A last barrier covers everything read; acknowledge once the end has it.
            let last = Epoch(acks.next_epoch);
            if end_sent
                && emit_barrier(out, &mut reader, &mut acks, event_time.as_ref()).await
                && out.send(StreamMessage::End).await.is_ok()
            {
                // Ends when the barrier completes, or when whoever completes barriers is gone
                // (a checkpointed job drops its coordinator when its sink fails).
                while *completed.borrow_and_update() < last {
                    if completed.changed().await.is_err() {
                        break;
                    }
                }
            }
        }
        // Also when the output was dropped: acknowledge what it had confirmed.
        let done = *completed.borrow();
        let acked = acks.acknowledge(&mut reader, done);
        reader.close().await;
        acked
    }
}
