//! The output side of a task: each branch runs its fused row-by-row operators, then hands
//! its rows to the exchanges of its consumers (forward, hash by key group, broadcast,
//! single). Control messages go to every channel, in order with the rows.

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use magnetar_sql::plan::PhysicalExprRef;
use tokio::sync::mpsc;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::key_groups::{KeyHasher, instance_of};
use super::task::TaskMetrics;
use super::{StreamMessage, Watermark};
use crate::error::Result;
use crate::operators::Operator;

/// How one consumer's instances get a branch's rows.
#[derive(Debug)]
pub enum Exchange {
    /// One channel: to the instance with this instance's index, or to a single instance.
    One(mpsc::Sender<StreamMessage>),
    /// Every row to every instance.
    Broadcast(Vec<mpsc::Sender<StreamMessage>>),
    /// Each row to the instance owning its key's key group.
    Hash {
        /// One channel per consumer instance.
        senders: Vec<mpsc::Sender<StreamMessage>>,
        /// The key expressions over the branch's rows.
        keys: Vec<PhysicalExprRef>,
        /// Their hasher.
        hasher: KeyHasher,
    },
}

impl Exchange {
    fn senders(&self) -> &[mpsc::Sender<StreamMessage>] {
        match self {
            Exchange::One(s) => std::slice::from_ref(s),
            Exchange::Broadcast(s) | Exchange::Hash { senders: s, .. } => s,
        }
    }

    /// Sends rows; false when a consumer is gone.
    async fn send_batch(&self, batch: RecordBatch) -> Result<bool> {
        match self {
            Exchange::One(s) => Ok(s.send(StreamMessage::Batch(batch)).await.is_ok()),
            Exchange::Broadcast(senders) => {
                for s in senders {
                    if s.send(StreamMessage::Batch(batch.clone())).await.is_err() {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Exchange::Hash {
                senders,
                keys,
                hasher,
            } => {
                for (instance, part) in partition(&batch, keys, hasher, senders.len())?
                    .into_iter()
                    .enumerate()
                {
                    if let Some(part) = part
                        && senders[instance]
                            .send(StreamMessage::Batch(part))
                            .await
                            .is_err()
                    {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }
}

/// `batch` split by the instance that owns each row's key group; `None` where an instance
/// gets no rows. A batch whose rows all go to one instance is not copied.
pub fn partition(
    batch: &RecordBatch,
    keys: &[PhysicalExprRef],
    hasher: &KeyHasher,
    instances: usize,
) -> Result<Vec<Option<RecordBatch>>> {
    let mut out: Vec<Option<RecordBatch>> = vec![None; instances];
    if batch.num_rows() == 0 {
        return Ok(out);
    }
    if instances == 1 {
        out[0] = Some(batch.clone());
        return Ok(out);
    }
    let rows = batch.num_rows();
    let keys = keys
        .iter()
        .map(|k| Ok(k.evaluate(batch)?.into_array(rows)?))
        .collect::<Result<Vec<_>>>()?;
    let max = hasher.max_parallelism();
    let owners: Vec<usize> = hasher
        .groups(&keys)?
        .into_iter()
        .map(|group| instance_of(group, max, instances))
        .collect();
    // A counting sort of the row indices by owner, so that one `take` copies every row
    // once and each owner gets a zero-copy slice of it.
    let mut starts = vec![0usize; instances + 1];
    for &owner in &owners {
        starts[owner + 1] += 1;
    }
    if let Some(owner) = (0..instances).find(|&i| starts[i + 1] == rows) {
        out[owner] = Some(batch.clone());
        return Ok(out);
    }
    for i in 0..instances {
        starts[i + 1] += starts[i];
    }
    let mut next = starts.clone();
    let mut order = vec![0u32; rows];
    for (row, &owner) in owners.iter().enumerate() {
        order[next[owner]] = row as u32;
        next[owner] += 1;
    }
    let sorted = take_record_batch(batch, &UInt32Array::from(order))?;
    for (instance, slot) in out.iter_mut().enumerate() {
        let (start, end) = (starts[instance], starts[instance + 1]);
        if end > start {
            *slot = Some(sorted.slice(start, end - start));
        }
    }
    Ok(out)
}

/// One output branch of a task: its fused operators and its consumers' exchanges.
pub struct Branch {
    /// Row-by-row operators, in order.
    pub chain: Vec<Box<dyn Operator>>,
    /// Where the rows go.
    pub exchanges: Vec<Exchange>,
}

/// Where a task's output goes: its branches. (Operators and exchanges are kept apart: a
/// send awaits while holding the exchanges only.)
pub struct TaskOutput {
    /// Each branch's fused operators.
    chains: Vec<Vec<Box<dyn Operator>>>,
    /// Each branch's exchanges.
    exchanges: Vec<Vec<Exchange>>,
    /// The task's counters (rows sent, after the fused operators).
    metrics: Arc<TaskMetrics>,
}

impl std::fmt::Debug for TaskOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskOutput")
            .field("exchanges", &self.exchanges)
            .finish()
    }
}

impl TaskOutput {
    /// An output of these branches, counting into `metrics`.
    pub fn new(branches: Vec<Branch>, metrics: Arc<TaskMetrics>) -> Self {
        let (chains, exchanges) = branches.into_iter().map(|b| (b.chain, b.exchanges)).unzip();
        Self {
            chains,
            exchanges,
            metrics,
        }
    }

    /// Rows from the task's head: through each branch's chain to its exchanges. False when
    /// a consumer is gone.
    pub async fn batch(&mut self, batch: RecordBatch) -> Result<bool> {
        for (chain, exchanges) in self.chains.iter_mut().zip(&self.exchanges) {
            // Cloning a batch clones pointers to its arrays, not their data.
            let Some(rows) = run_chain(chain, 0, Some(batch.clone()))? else {
                continue;
            };
            self.metrics
                .rows_out
                .fetch_add(rows.num_rows() as u64, Ordering::Relaxed);
            if !send_all(exchanges, rows).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The watermark advanced: each chain's operators release what it fires (stateless ones
    /// nothing), then every consumer gets the watermark. False when a consumer is gone.
    pub async fn watermark(&mut self, watermark: Watermark) -> Result<bool> {
        for (chain, exchanges) in self.chains.iter_mut().zip(&self.exchanges) {
            for at in 0..chain.len() {
                let released = chain[at].on_watermark(watermark)?;
                for batch in released {
                    if let Some(rows) = run_chain(chain, at + 1, Some(batch))? {
                        self.metrics
                            .rows_out
                            .fetch_add(rows.num_rows() as u64, Ordering::Relaxed);
                        if !send_all(exchanges, rows).await? {
                            return Ok(false);
                        }
                    }
                }
            }
        }
        Ok(self.control(StreamMessage::Watermark(watermark)).await)
    }

    /// A control message to every channel. False when a consumer is gone.
    pub async fn control(&mut self, message: StreamMessage) -> bool {
        for exchange in self.exchanges.iter().flatten() {
            for sender in exchange.senders() {
                if sender.send(message.clone()).await.is_err() {
                    return false;
                }
            }
        }
        true
    }

    /// Resolves once some consumer is gone (a task waiting for input watches this).
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let senders: Vec<mpsc::Sender<StreamMessage>> = self
            .exchanges
            .iter()
            .flatten()
            .flat_map(|e| e.senders())
            .cloned()
            .collect();
        async move {
            let waits: Vec<_> = senders.iter().map(|s| Box::pin(s.closed())).collect();
            if waits.is_empty() {
                return std::future::pending().await;
            }
            futures::future::select_all(waits).await;
        }
    }
}

async fn send_all(exchanges: &[Exchange], rows: RecordBatch) -> Result<bool> {
    for exchange in exchanges {
        if !exchange.send_batch(rows.clone()).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `batch` through `chain[from..]`.
fn run_chain(
    chain: &mut [Box<dyn Operator>],
    from: usize,
    batch: Option<RecordBatch>,
) -> Result<Option<RecordBatch>> {
    let mut batch = batch;
    for op in chain.iter_mut().skip(from) {
        let Some(rows) = batch else {
            return Ok(None);
        };
        batch = op.process(0, rows)?;
    }
    Ok(batch.filter(|b| b.num_rows() > 0))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_expr::expressions::Column;

    use super::*;

    #[test]
    fn rows_go_to_the_instance_of_their_key_group_in_order_and_equal_keys_meet() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("user", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let users: Vec<String> = (0..200).map(|i| format!("u{}", i % 50)).collect();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(users)),
                Arc::new(Int64Array::from_iter_values(0..200)),
            ],
        )
        .expect("batch");
        let keys: Vec<PhysicalExprRef> = vec![Arc::new(Column::new("user", 0))];
        let hasher = KeyHasher::new(vec![DataType::Utf8], 128).expect("hasher");
        let parts = partition(&batch, &keys, &hasher, 3).expect("partition");
        let mut owner = std::collections::HashMap::new();
        let mut total = 0;
        for (instance, part) in parts.iter().enumerate() {
            let part = part.as_ref().expect("every instance gets some of 50 users");
            total += part.num_rows();
            let users = part
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("strings");
            // Each instance sees its rows in their input order.
            let n = part
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("ints");
            assert!(n.values().windows(2).all(|w| w[0] < w[1]), "order kept");
            for i in 0..users.len() {
                let previous = owner.insert(users.value(i).to_string(), instance);
                assert!(
                    previous.is_none_or(|p| p == instance),
                    "a key in two instances"
                );
            }
        }
        assert_eq!(total, 200);
        assert_eq!(owner.len(), 50);
    }
}
