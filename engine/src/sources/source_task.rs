//! A source task: one instance of a source node. It reads its share of the table's
//! partitions, decodes chunks into batches, generates watermarks, emits every barrier the
//! injector asks for (in order), and acknowledges input only up to barriers the job has
//! completed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use magnetar_sql::catalog::TableDef;
use magnetar_sql::options::EmitStrategy;
use tokio::sync::watch;

use super::decode::{Decoded, SourceDecoder};
use super::reader::{ReadAck, ReadChunk, Reader};
use super::watermarks::WatermarkGenerator;
use crate::checkpoint::{CheckpointPart, PartSender, SourceCheckpoint};
use crate::error::Result;
use crate::runtime::{
    BarrierInjector, Epoch, Injection, StreamMessage, TaskId, TaskMetrics, TaskOutput, Watermark,
};

/// When barriers are injected.
#[derive(Clone, Copy, Debug)]
pub enum BarrierPolicy {
    /// After every batch a source reads, so that what a caller has received is acknowledged
    /// at once (interactive queries).
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

/// One instance of a source node.
pub struct SourceTask {
    /// Who it is.
    pub id: TaskId,
    /// The table.
    pub table: Arc<TableDef>,
    /// The opened reader (of this instance's partitions).
    pub reader: Reader,
    /// Decoder into the source's schema.
    pub decoder: SourceDecoder,
    /// Most messages per batch.
    pub batch_size: usize,
    /// Barrier injection.
    pub barriers: BarrierPolicy,
    /// Watermarks, when the graph needs them.
    pub event_time: Option<EventTimeSettings>,
    /// In a checkpointed job: where its positions go at barriers.
    pub parts: Option<PartSender>,
    /// Its counters.
    pub metrics: Arc<TaskMetrics>,
}

enum Finish {
    /// The input ended: emit the end watermark, a last barrier, and acknowledge.
    End,
    /// Asked to stop: the last barrier was emitted (windows stay open).
    Stop,
    /// Nobody reads the output any more.
    DownstreamGone,
}

/// Emitted barriers whose input is not acknowledged yet.
struct Acks {
    emitted: Epoch,
    pending: VecDeque<(Epoch, ReadAck)>,
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

/// How often a source asks the broker how far behind it is (`SHOW JOBS`'s backlog).
const BACKLOG_EVERY: Duration = Duration::from_secs(2);

struct Running {
    id: TaskId,
    reader: Reader,
    decoder: SourceDecoder,
    event_time: Option<EventTimeSettings>,
    output: TaskOutput,
    acks: Acks,
    parts: Option<PartSender>,
    metrics: Arc<TaskMetrics>,
    /// Idleness was passed on and no row or watermark came since.
    idle_sent: bool,
}

impl Running {
    /// Emits every barrier up to `upto`; false when the output is gone.
    async fn emit_barriers(&mut self, upto: Epoch) -> bool {
        while self.acks.emitted < upto {
            let epoch = self.acks.emitted.next();
            self.acks.emitted = epoch;
            self.acks
                .pending
                .push_back((epoch, self.reader.take_ack_token()));
            if let Some(parts) = &self.parts {
                // Before the barrier: the parts of the tasks below come after it.
                let part = SourceCheckpoint {
                    positions: self.reader.positions(),
                    watermarks: self
                        .event_time
                        .as_ref()
                        .map(|e| e.generator.snapshot(&self.reader.partition_names())),
                };
                if !parts.send(epoch, &self.id, CheckpointPart::Source(part)) {
                    return false;
                }
            }
            if !self.output.control(StreamMessage::Barrier(epoch)).await {
                return false;
            }
        }
        true
    }

    /// Sends rows with the watermarks they advance; false when the output is gone.
    async fn send_rows(&mut self, decoded: Decoded) -> Result<bool> {
        let rows = decoded.batch.num_rows();
        self.metrics
            .rows_in
            .fetch_add(rows as u64, Ordering::Relaxed);
        self.idle_sent = false;
        let partitions = self.reader.partition_count();
        let Some(settings) = self.event_time.as_mut() else {
            return self.send_batch(decoded.batch).await;
        };
        settings.generator.ensure_partitions(partitions);
        let now = settings.generator.clock().now();
        let times = decoded.event_times.unwrap_or_default();
        match settings.emit {
            EmitStrategy::Periodic => {
                for (row, slot) in decoded.slots.iter().enumerate() {
                    settings
                        .generator
                        .observe(*slot, times.get(row).copied().flatten(), now);
                }
                let advanced = settings.generator.advance();
                if !self.send_batch(decoded.batch).await? {
                    return Ok(false);
                }
                match advanced {
                    Some(w) => self.send_watermark(w).await,
                    None => Ok(true),
                }
            }
            EmitStrategy::OnEvent => {
                // As if a watermark followed every row; cut the batch only where it advances.
                let mut start = 0;
                let mut cuts = Vec::new();
                for (row, slot) in decoded.slots.iter().enumerate() {
                    settings
                        .generator
                        .observe(*slot, times.get(row).copied().flatten(), now);
                    if let Some(w) = settings.generator.advance() {
                        cuts.push((start, row + 1 - start, w));
                        start = row + 1;
                    }
                }
                for (from, len, w) in cuts {
                    if !self.send_batch(decoded.batch.slice(from, len)).await?
                        || !self.send_watermark(w).await?
                    {
                        return Ok(false);
                    }
                }
                if start < rows {
                    return self
                        .send_batch(decoded.batch.slice(start, rows - start))
                        .await;
                }
                Ok(true)
            }
        }
    }

    async fn send_batch(
        &mut self,
        batch: datafusion::arrow::record_batch::RecordBatch,
    ) -> Result<bool> {
        self.output.batch(batch).await
    }

    async fn send_watermark(&mut self, watermark: Watermark) -> Result<bool> {
        self.idle_sent = false;
        self.metrics.observe_watermark(watermark);
        self.output.watermark(watermark).await
    }

    /// The watermark that finished or idle partitions release, or idleness when every
    /// partition is idle; false when the output is gone.
    async fn release_watermark(&mut self) -> Result<bool> {
        let Some(settings) = self.event_time.as_mut() else {
            return Ok(true);
        };
        for slot in 0..self.reader.partition_count() {
            if self.reader.partition_finished(slot) {
                settings.generator.finish(slot);
            }
        }
        if let Some(w) = settings.generator.advance() {
            return self.send_watermark(w).await;
        }
        if settings.generator.all_idle() && !self.idle_sent {
            self.idle_sent = true;
            return Ok(self.output.control(StreamMessage::Idle).await);
        }
        Ok(true)
    }

    /// Decodes and sends a chunk, then the watermark that finished partitions release;
    /// false when the output is gone.
    async fn forward_chunk(&mut self, chunk: &ReadChunk) -> Result<bool> {
        if let Some(decoded) = self.decoder.decode(chunk).await?
            && !self.send_rows(decoded).await?
        {
            return Ok(false);
        }
        self.release_watermark().await
    }

    /// Takes every row available now, without waiting; `None` when the input ended.
    async fn drain(&mut self, batch_size: usize) -> Result<Option<bool>> {
        while let Some(chunk) = self.reader.next_chunk(batch_size).now_or_never() {
            let Some(chunk) = chunk? else {
                return Ok(None);
            };
            if !self.forward_chunk(&chunk).await? {
                return Ok(Some(false));
            }
        }
        Ok(Some(self.release_watermark().await?))
    }
}

impl SourceTask {
    /// Runs until the input ends, a stop, an error, or the output is gone.
    pub async fn run(
        self,
        output: TaskOutput,
        injector: Arc<BarrierInjector>,
        completed: watch::Receiver<Epoch>,
    ) {
        let SourceTask {
            id,
            table,
            reader,
            decoder,
            batch_size,
            barriers,
            event_time,
            parts,
            metrics,
        } = self;
        let mut running = Running {
            id,
            reader,
            decoder,
            event_time,
            output,
            acks: Acks {
                emitted: Epoch(0),
                pending: VecDeque::new(),
            },
            parts,
            metrics,
            idle_sent: false,
        };
        tracing::debug!(table = %table.name, task = %running.id, "source started");
        let result = run_loop(&mut running, batch_size, barriers, &injector, completed).await;
        if let Err(e) = result {
            running
                .output
                .control(StreamMessage::Error(Arc::new(e)))
                .await;
        }
        if let Some(parts) = &running.parts {
            parts.finished(&running.id);
        }
        running.reader.close().await;
    }
}

async fn run_loop(
    running: &mut Running,
    batch_size: usize,
    barriers: BarrierPolicy,
    injector: &BarrierInjector,
    mut completed: watch::Receiver<Epoch>,
) -> Result<()> {
    let mut injections = injector.subscribe();
    // Barriers injected before this task ran are due too.
    injections.mark_changed();
    let per_batch = matches!(barriers, BarrierPolicy::AfterEachBatch);
    let idle_timeout = running
        .event_time
        .as_ref()
        .and_then(|e| e.generator.idle_timeout());
    let clock = running
        .event_time
        .as_ref()
        .map(|e| e.generator.clock().clone());
    // A restored source tells its consumers where its watermark was: their inputs' watermarks
    // start unknown, and would otherwise hold theirs back until this one advances.
    if let Some(w) = running
        .event_time
        .as_ref()
        .and_then(|e| e.generator.current())
        && !running.send_watermark(w).await?
    {
        return Ok(());
    }
    let mut backlog_ticker = tokio::time::interval(BACKLOG_EVERY);
    backlog_ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let finish: Finish = loop {
        tokio::select! {
            biased;
            changed = injections.changed() => {
                if changed.is_err() {
                    break Finish::DownstreamGone;
                }
                let injection: Injection = *injections.borrow_and_update();
                if injection.drain > running.acks.emitted && injection.epoch > running.acks.emitted {
                    match running.drain(batch_size).await? {
                        None => break Finish::End,
                        Some(false) => break Finish::DownstreamGone,
                        Some(true) => {}
                    }
                }
                let upto = injection.stop.map_or(injection.epoch, |s| s.min(injection.epoch));
                if !running.emit_barriers(upto).await {
                    break Finish::DownstreamGone;
                }
                if injection.stop.is_some_and(|s| s <= running.acks.emitted) {
                    break Finish::Stop;
                }
            }
            _ = running.output.closed() => break Finish::DownstreamGone,
            changed = completed.changed() => {
                if changed.is_err() {
                    break Finish::DownstreamGone;
                }
                let done = *completed.borrow_and_update();
                running.acks.acknowledge(&mut running.reader, done)?;
            }
            _ = backlog_ticker.tick() => {
                let backlog = running.reader.backlog().await;
                *running.decoder.metrics().backlog.lock().unwrap_or_else(|p| p.into_inner()) = backlog;
            }
            // Processing time moved: an idle partition may release the watermark.
            _ = async {
                match (&clock, idle_timeout) {
                    (Some(c), Some(t)) => c.tick(t).await,
                    _ => std::future::pending().await,
                }
            } => {
                if !running.release_watermark().await? {
                    break Finish::DownstreamGone;
                }
            }
            chunk = running.reader.next_chunk(batch_size) => {
                let Some(chunk) = chunk? else {
                    break Finish::End;
                };
                if !running.forward_chunk(&chunk).await? {
                    break Finish::DownstreamGone;
                }
                if per_batch {
                    injector.request_after(running.acks.emitted);
                }
            }
        }
    };
    let last = match finish {
        Finish::DownstreamGone => None,
        Finish::Stop => Some(running.acks.emitted),
        Finish::End => {
            // At the end of the input every window may fire (Flink's behaviour on a finite
            // source); a last barrier covers everything read.
            if running.event_time.is_some() && !running.send_watermark(Watermark::END).await? {
                None
            } else {
                injector.request_after(running.acks.emitted);
                let injection = *injections.borrow_and_update();
                let upto = injection
                    .stop
                    .map_or(injection.epoch, |s| s.min(injection.epoch));
                running
                    .emit_barriers(upto)
                    .await
                    .then_some(running.acks.emitted)
            }
        }
    };
    if let Some(last) = last
        && running.output.control(StreamMessage::End).await
    {
        // Ends when the last barrier completes, or when whoever completes barriers is gone
        // (a job drops its coordinator when a sink fails).
        while *completed.borrow_and_update() < last {
            if completed.changed().await.is_err() {
                break;
            }
        }
    }
    // Also when the output was dropped: acknowledge what the job had completed.
    let done = *completed.borrow();
    running.acks.acknowledge(&mut running.reader, done)
}
