//! The operator's state in a checkpoint: three batches, each row tagged with its
//! partition's key group so that a restore at another parallelism splits them:
//! rows waiting for the watermark, the shared buffer's nodes, and the runs (partial and
//! held-back completed matches) as pointers into the nodes.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Int64Array, RecordBatch, UInt32Array,
    UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, UInt32Type, UInt64Type};
use datafusion::common::ScalarValue;
use magnetar_sql::match_recognize::VarId;

use super::buffer::{EventId, Node, Row};
use super::matcher::{PartitionState, Run};
use super::nfa::StateId;
use super::operator::{Key, MatchRecognizeOperator, Partition, Pending};
use crate::checkpoint::OperatorState;
use crate::error::{EngineError, Result};
use crate::runtime::{EventTime, Watermark};

const PENDING: &str = "pending_key";
const NODES: &str = "node_key";
const RUNS: &str = "run_key";

fn bad(reason: impl Into<String>) -> EngineError {
    EngineError::Checkpoint {
        object: "MATCH_RECOGNIZE state".into(),
        reason: reason.into(),
    }
}

/// The kept columns' fields.
fn value_fields(op: &MatchRecognizeOperator) -> Vec<Field> {
    op.kept
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            Field::new(
                format!("v{i}"),
                op.node.input_schema.field(c).data_type().clone(),
                true,
            )
        })
        .collect()
}

/// Value columns for rows (a row with no values, one no variable takes, gets NULLs).
fn value_columns(op: &MatchRecognizeOperator, rows: &[&[ScalarValue]]) -> Result<Vec<ArrayRef>> {
    value_fields(op)
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let null = ScalarValue::try_from(f.data_type())?;
            let values = rows
                .iter()
                .map(|r| r.get(i).cloned().unwrap_or_else(|| null.clone()));
            Ok(ScalarValue::iter_to_array(values)?)
        })
        .collect()
}

fn batch(
    op: &MatchRecognizeOperator,
    mut fields: Vec<Field>,
    mut columns: Vec<ArrayRef>,
    values: Option<&[&[ScalarValue]]>,
) -> Result<Option<RecordBatch>> {
    if columns[0].is_empty() {
        return Ok(None);
    }
    if let Some(rows) = values {
        fields.extend(value_fields(op));
        columns.extend(value_columns(op, rows)?);
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    Ok(Some(match &op.key_groups {
        Some(hasher) => {
            let keys = batch
                .column(0)
                .as_binary_opt::<i32>()
                .ok_or_else(|| EngineError::Internal("key column".into()))?
                .clone();
            hasher.tag_encoded(&batch, &keys)?
        }
        None => batch,
    }))
}

/// The operator's state.
pub fn take(op: &mut MatchRecognizeOperator) -> Result<OperatorState> {
    let mut batches = Vec::new();
    // Rows waiting for the watermark.
    {
        let keys: Vec<&[u8]> = op.pending.values().map(|p| p.key.as_ref()).collect();
        let ts: Vec<i64> = op.pending.keys().map(|k| k.0).collect();
        let arrival: Vec<u64> = op.pending.keys().map(|k| k.1).collect();
        let ok: Vec<u64> = op.pending.values().map(|p| p.row_ok).collect();
        let values: Vec<&[ScalarValue]> =
            op.pending.values().map(|p| p.values.as_slice()).collect();
        batches.extend(batch(
            op,
            vec![
                Field::new(PENDING, DataType::Binary, false),
                Field::new("ts", DataType::Int64, false),
                Field::new("arrival", DataType::UInt64, false),
                Field::new("row_ok", DataType::UInt64, false),
            ],
            vec![
                Arc::new(BinaryArray::from(keys)),
                Arc::new(Int64Array::from(ts)),
                Arc::new(UInt64Array::from(arrival)),
                Arc::new(UInt64Array::from(ok)),
            ],
            Some(&values),
        )?);
    }
    // Nodes, each once, before any node that points to it.
    let mut ids: HashMap<*const Node, u64> = HashMap::new();
    let mut nodes: Vec<(&Key, &Arc<Node>)> = Vec::new();
    let mut runs: Vec<(&Key, bool, &Run)> = Vec::new();
    for (key, partition) in &op.partitions {
        for (completed, list) in [
            (false, &partition.state.partial),
            (true, &partition.state.completed),
        ] {
            for run in list {
                runs.push((key, completed, run));
                let mut chain = Vec::new();
                let mut at = run.last.as_ref();
                while let Some(node) = at {
                    if ids.contains_key(&Arc::as_ptr(node)) {
                        break;
                    }
                    chain.push(node);
                    at = node.prev.as_ref();
                }
                for node in chain.into_iter().rev() {
                    ids.insert(Arc::as_ptr(node), ids.len() as u64);
                    nodes.push((key, node));
                }
            }
        }
    }
    {
        let prev: Vec<Option<u64>> = nodes
            .iter()
            .map(|(_, n)| {
                n.prev
                    .as_ref()
                    .and_then(|p| ids.get(&Arc::as_ptr(p)).copied())
            })
            .collect();
        let values: Vec<&[ScalarValue]> =
            nodes.iter().map(|(_, n)| n.row.values.as_slice()).collect();
        batches.extend(batch(
            op,
            vec![
                Field::new(NODES, DataType::Binary, false),
                Field::new("id", DataType::UInt64, false),
                Field::new("prev", DataType::UInt64, true),
                Field::new("var", DataType::UInt32, false),
                Field::new("ts", DataType::Int64, false),
                Field::new("seq", DataType::UInt64, false),
                Field::new("row_ok", DataType::UInt64, false),
            ],
            vec![
                Arc::new(BinaryArray::from(
                    nodes
                        .iter()
                        .map(|(k, _)| k.as_ref())
                        .collect::<Vec<&[u8]>>(),
                )),
                Arc::new(UInt64Array::from(
                    (0..nodes.len() as u64).collect::<Vec<_>>(),
                )),
                Arc::new(UInt64Array::from(prev)),
                Arc::new(UInt32Array::from(
                    nodes
                        .iter()
                        .map(|(_, n)| n.var.0 as u32)
                        .collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(
                    nodes.iter().map(|(_, n)| n.row.id.ts).collect::<Vec<_>>(),
                )),
                Arc::new(UInt64Array::from(
                    nodes.iter().map(|(_, n)| n.row.id.seq).collect::<Vec<_>>(),
                )),
                Arc::new(UInt64Array::from(
                    nodes.iter().map(|(_, n)| n.row.row_ok).collect::<Vec<_>>(),
                )),
            ],
            Some(&values),
        )?);
    }
    batches.extend(batch(
        op,
        vec![
            Field::new(RUNS, DataType::Binary, false),
            Field::new("completed", DataType::Boolean, false),
            Field::new("state", DataType::UInt32, false),
            Field::new("last", DataType::UInt64, true),
            Field::new("start_ts", DataType::Int64, false),
            Field::new("start_seq", DataType::UInt64, false),
        ],
        vec![
            Arc::new(BinaryArray::from(
                runs.iter()
                    .map(|(k, ..)| k.as_ref())
                    .collect::<Vec<&[u8]>>(),
            )),
            Arc::new(BooleanArray::from(
                runs.iter().map(|(_, c, _)| *c).collect::<Vec<_>>(),
            )),
            Arc::new(UInt32Array::from(
                runs.iter()
                    .map(|(.., r)| r.state.0 as u32)
                    .collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from(
                runs.iter()
                    .map(|(.., r)| {
                        r.last
                            .as_ref()
                            .and_then(|n| ids.get(&Arc::as_ptr(n)).copied())
                    })
                    .collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                runs.iter().map(|(.., r)| r.start.ts).collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from(
                runs.iter().map(|(.., r)| r.start.seq).collect::<Vec<_>>(),
            )),
        ],
        None,
    )?);
    Ok(OperatorState {
        meta: serde_json::json!({
            "watermark": op.watermark.map(|w| w.0.0),
            "arrivals": op.arrivals,
            "processed": op.processed,
        }),
        batches,
    })
}

fn column<'a, T: datafusion::arrow::datatypes::ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a datafusion::arrow::array::PrimitiveArray<T>> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<T>())
        .ok_or_else(|| bad(format!("no column {name} of the expected type")))
}

fn keys(batch: &RecordBatch) -> Result<&BinaryArray> {
    batch
        .column(0)
        .as_binary_opt::<i32>()
        .ok_or_else(|| bad("the first column is not a key"))
}

fn values_at(
    op: &MatchRecognizeOperator,
    batch: &RecordBatch,
    first_value: usize,
    i: usize,
    keep: bool,
) -> Result<Vec<ScalarValue>> {
    if !keep {
        return Ok(Vec::new());
    }
    if batch.num_columns() != first_value + op.kept.len() {
        return Err(bad(format!(
            "{} columns where {} are expected",
            batch.num_columns(),
            first_value + op.kept.len()
        )));
    }
    (0..op.kept.len())
        .map(|c| {
            Ok(ScalarValue::try_from_array(
                batch.column(first_value + c),
                i,
            )?)
        })
        .collect()
}

/// Adds a snapshot's partitions (only this instance's key groups) to the operator.
pub fn restore(op: &mut MatchRecognizeOperator, state: OperatorState) -> Result<()> {
    if let Some(w) = state.meta["watermark"].as_i64() {
        let w = Watermark(EventTime(w));
        op.watermark = Some(op.watermark.map_or(w, |o| o.max(w)));
    }
    op.arrivals = op
        .arrivals
        .max(state.meta["arrivals"].as_u64().unwrap_or(0));
    op.processed = op
        .processed
        .max(state.meta["processed"].as_u64().unwrap_or(0));
    let mut nodes: HashMap<(Key, u64), Arc<Node>> = HashMap::new();
    let mut interned: HashMap<Vec<u8>, Key> = HashMap::new();
    let mut intern = |bytes: &[u8]| -> Key {
        interned
            .entry(bytes.to_vec())
            .or_insert_with(|| Arc::from(bytes))
            .clone()
    };
    let vars = op.node.spec.pattern.variables.len() as u32;
    let states = op.matcher.nfa.states.len() as u32;
    for batch in &state.batches {
        let name = batch.schema().field(0).name().clone();
        let keys = keys(batch)?;
        match name.as_str() {
            PENDING => {
                let ts = column::<Int64Type>(batch, "ts")?;
                // Checked, though renumbered below.
                column::<UInt64Type>(batch, "arrival")?;
                let ok = column::<UInt64Type>(batch, "row_ok")?;
                let keep_all = !op.node.spec.order.is_empty();
                for i in 0..batch.num_rows() {
                    let row_ok = ok.value(i);
                    // Renumbered: snapshots of several instances (a rescale) each count
                    // arrivals from 0. Written in (time, arrival) order, so order is kept.
                    op.pending.insert(
                        (ts.value(i), op.arrivals),
                        Pending {
                            key: intern(keys.value(i)),
                            values: values_at(op, batch, 4, i, row_ok != 0 || keep_all)?,
                            row_ok,
                        },
                    );
                    op.arrivals += 1;
                }
            }
            NODES => {
                let id = column::<UInt64Type>(batch, "id")?;
                let prev = column::<UInt64Type>(batch, "prev")?;
                let var = column::<UInt32Type>(batch, "var")?;
                let ts = column::<Int64Type>(batch, "ts")?;
                let seq = column::<UInt64Type>(batch, "seq")?;
                let ok = column::<UInt64Type>(batch, "row_ok")?;
                // Written before any node that points to them.
                for i in 0..batch.num_rows() {
                    let key = intern(keys.value(i));
                    if var.value(i) >= vars {
                        return Err(bad(format!("variable {} of {vars}", var.value(i))));
                    }
                    let prev = if prev.is_null(i) {
                        None
                    } else {
                        Some(
                            nodes
                                .get(&(key.clone(), prev.value(i)))
                                .cloned()
                                .ok_or_else(|| {
                                    bad(format!("node {} points to a missing node", id.value(i)))
                                })?,
                        )
                    };
                    let node = Arc::new(Node {
                        row: Arc::new(Row {
                            id: EventId {
                                ts: ts.value(i),
                                seq: seq.value(i),
                            },
                            values: values_at(op, batch, 7, i, true)?,
                            row_ok: ok.value(i),
                        }),
                        var: VarId(var.value(i) as usize),
                        prev,
                    });
                    nodes.insert((key, id.value(i)), node);
                }
            }
            RUNS => {
                let completed = batch
                    .column_by_name("completed")
                    .and_then(|c| c.as_boolean_opt())
                    .ok_or_else(|| bad("no completed column"))?;
                let st = column::<UInt32Type>(batch, "state")?;
                let last = column::<UInt64Type>(batch, "last")?;
                let start_ts = column::<Int64Type>(batch, "start_ts")?;
                let start_seq = column::<UInt64Type>(batch, "start_seq")?;
                for i in 0..batch.num_rows() {
                    let key = intern(keys.value(i));
                    if st.value(i) >= states {
                        return Err(bad(format!("state {} of {states}", st.value(i))));
                    }
                    let last = if last.is_null(i) {
                        None
                    } else {
                        Some(
                            nodes
                                .get(&(key.clone(), last.value(i)))
                                .cloned()
                                .ok_or_else(|| bad("a run points to a missing node"))?,
                        )
                    };
                    let run = Run {
                        state: StateId(st.value(i) as usize),
                        last,
                        start: EventId {
                            ts: start_ts.value(i),
                            seq: start_seq.value(i),
                        },
                    };
                    if !op.partitions.contains_key(&key) {
                        let key_values = op.key_values(&key)?;
                        op.partitions.insert(
                            key.clone(),
                            Partition {
                                key_values,
                                state: PartitionState::default(),
                            },
                        );
                    }
                    if let Some(within) = op.matcher.within
                        && !completed.value(i)
                    {
                        op.deadlines
                            .insert((run.start.ts.saturating_add(within), key.clone()));
                    }
                    let partition = op
                        .partitions
                        .get_mut(&key)
                        .ok_or_else(|| bad("partition"))?;
                    if completed.value(i) {
                        partition.state.completed.push(run);
                    } else {
                        partition.state.partial.push(run);
                    }
                }
            }
            other => return Err(bad(format!("an unknown batch {other}"))),
        }
    }
    Ok(())
}
