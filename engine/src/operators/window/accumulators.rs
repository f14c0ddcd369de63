//! Per-key aggregate state over DataFusion's accumulators: `GroupsAccumulator` where the
//! function has one, `Accumulator` through DataFusion's adapter otherwise. Rows update it a
//! batch at a time; state can be sealed into arrays (partial aggregates) and merged into
//! other state, which is how slices combine into windows.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int8Array, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::GroupsAccumulatorAdapter;
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use magnetar_sql::plan::{AggregateItem, PhysicalExprRef};

use crate::error::{EngineError, Result};

/// The grouping keys and aggregate functions of a window aggregate.
#[derive(Debug, Clone)]
pub struct AggregateSpec {
    /// Key expressions over the input.
    pub keys: Vec<PhysicalExprRef>,
    /// Schema of the evaluated keys (a one-byte placeholder when there are none).
    pub key_schema: SchemaRef,
    /// The aggregate functions.
    pub aggregates: Vec<AggregateItem>,
}

impl AggregateSpec {
    /// A spec over `input` rows.
    pub fn new(
        keys: Vec<PhysicalExprRef>,
        aggregates: Vec<AggregateItem>,
        input: &Schema,
    ) -> Result<Self> {
        let fields: Vec<Field> = if keys.is_empty() {
            vec![Field::new("__no_key", DataType::Int8, false)]
        } else {
            keys.iter()
                .enumerate()
                .map(|(i, k)| {
                    Ok(Field::new(
                        format!("key{i}"),
                        k.data_type(input)?,
                        k.nullable(input)?,
                    ))
                })
                .collect::<Result<_>>()?
        };
        Ok(Self {
            keys,
            key_schema: Arc::new(Schema::new(fields)),
            aggregates,
        })
    }

    /// Evaluates the keys, the aggregates' arguments and filters over `batch`.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<EvaluatedRows> {
        let rows = batch.num_rows();
        let keys = if self.keys.is_empty() {
            vec![Arc::new(Int8Array::from(vec![0i8; rows])) as ArrayRef]
        } else {
            self.keys
                .iter()
                .map(|k| Ok(k.evaluate(batch)?.into_array(rows)?))
                .collect::<Result<Vec<_>>>()?
        };
        let mut args = Vec::with_capacity(self.aggregates.len());
        let mut filters = Vec::with_capacity(self.aggregates.len());
        for a in &self.aggregates {
            // Order-sensitive aggregates (first_value(x ORDER BY t)) take their ordering
            // columns after the arguments, as DataFusion's own aggregation passes them.
            let ordering = a.function.order_bys().iter().map(|o| &o.expr);
            args.push(
                a.function
                    .expressions()
                    .iter()
                    .chain(ordering)
                    .map(|e| Ok(e.evaluate(batch)?.into_array(rows)?))
                    .collect::<Result<Vec<_>>>()?,
            );
            filters.push(match &a.filter {
                None => None,
                Some(f) => {
                    let mask = f.evaluate(batch)?.into_array(rows)?;
                    Some(
                        mask.as_any()
                            .downcast_ref::<BooleanArray>()
                            .cloned()
                            .ok_or_else(|| EngineError::Internal("FILTER is not boolean".into()))?,
                    )
                }
            });
        }
        Ok(EvaluatedRows {
            keys,
            args,
            filters,
        })
    }

    /// The types of each aggregate's partial-aggregate (state) columns.
    pub fn state_types(&self) -> Result<Vec<Vec<DataType>>> {
        self.aggregates
            .iter()
            .map(|a| {
                Ok(a.function
                    .state_fields()?
                    .iter()
                    .map(|f| f.data_type().clone())
                    .collect())
            })
            .collect()
    }

    /// Checks that restored state columns have the types this spec's state has: `leading`
    /// columns of the operator's own, then the keys (when `with_keys`), then the states.
    pub fn check_state_columns(
        &self,
        columns: &[ArrayRef],
        leading: &[DataType],
        with_keys: bool,
    ) -> std::result::Result<(), String> {
        let keys = self
            .key_schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone());
        let mut expected: Vec<DataType> = leading.to_vec();
        if with_keys {
            expected.extend(keys);
        }
        expected.extend(
            self.state_types()
                .map_err(|e| e.to_string())?
                .into_iter()
                .flatten(),
        );
        let found: Vec<&DataType> = columns.iter().map(|c| c.data_type()).collect();
        if found.len() != expected.len() || found.iter().zip(&expected).any(|(f, e)| *f != e) {
            return Err(format!(
                "columns {found:?}; this query's state has {expected:?} (was the query changed?)"
            ));
        }
        Ok(())
    }

    fn accumulator(&self, item: &AggregateItem) -> Result<Box<dyn GroupsAccumulator>> {
        if item.function.groups_accumulator_supported() {
            Ok(item.function.create_groups_accumulator()?)
        } else {
            let function = item.function.clone();
            Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
                function.create_accumulator()
            })))
        }
    }
}

/// Keys, arguments and filters of some rows.
#[derive(Debug, Clone)]
pub struct EvaluatedRows {
    /// Key columns.
    pub keys: Vec<ArrayRef>,
    /// Per aggregate, its argument columns.
    pub args: Vec<Vec<ArrayRef>>,
    /// Per aggregate, its FILTER mask.
    pub filters: Vec<Option<BooleanArray>>,
}

impl EvaluatedRows {
    /// The rows at `indices`.
    pub fn take(&self, indices: &UInt32Array) -> Result<EvaluatedRows> {
        let pick = |a: &ArrayRef| -> Result<ArrayRef> { Ok(take(a.as_ref(), indices, None)?) };
        Ok(EvaluatedRows {
            keys: self.keys.iter().map(pick).collect::<Result<_>>()?,
            args: self
                .args
                .iter()
                .map(|cols| cols.iter().map(pick).collect::<Result<_>>())
                .collect::<Result<_>>()?,
            filters: self
                .filters
                .iter()
                .map(|f| match f {
                    None => Ok(None),
                    Some(f) => {
                        let t = take(f, indices, None)?;
                        Ok(t.as_any().downcast_ref::<BooleanArray>().cloned())
                    }
                })
                .collect::<Result<_>>()?,
        })
    }
}

/// Partial aggregates of some groups: their keys and each function's state columns.
#[derive(Debug, Clone)]
pub struct StateChunk {
    /// Key columns.
    pub keys: Vec<ArrayRef>,
    /// Per aggregate, its state columns.
    pub states: Vec<Vec<ArrayRef>>,
}

impl StateChunk {
    /// Approximate memory held.
    pub fn size(&self) -> usize {
        self.keys
            .iter()
            .map(|a| a.get_array_memory_size())
            .sum::<usize>()
            + self
                .states
                .iter()
                .flatten()
                .map(|a| a.get_array_memory_size())
                .sum::<usize>()
    }
}

/// Live aggregate state: a group per distinct key.
pub struct AggregateState {
    groups: Box<dyn GroupValues>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    indices: Vec<usize>,
}

impl std::fmt::Debug for AggregateState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateState")
            .field("groups", &self.groups.len())
            .finish()
    }
}

impl AggregateState {
    /// Empty state for `spec`.
    pub fn new(spec: &AggregateSpec) -> Result<Self> {
        Ok(Self {
            groups: new_group_values(spec.key_schema.clone(), &GroupOrdering::None)?,
            accumulators: spec
                .aggregates
                .iter()
                .map(|a| spec.accumulator(a))
                .collect::<Result<_>>()?,
            indices: Vec::new(),
        })
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether there is no group.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Approximate memory held.
    pub fn size(&self) -> usize {
        self.groups.size() + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
    }

    /// Adds rows.
    pub fn update(&mut self, rows: &EvaluatedRows) -> Result<()> {
        self.groups.intern(&rows.keys, &mut self.indices)?;
        let total = self.groups.len();
        for ((acc, args), filter) in self
            .accumulators
            .iter_mut()
            .zip(&rows.args)
            .zip(&rows.filters)
        {
            acc.update_batch(args, &self.indices, filter.as_ref(), total)?;
        }
        Ok(())
    }

    /// Adds partial aggregates.
    pub fn merge(&mut self, chunk: &StateChunk) -> Result<()> {
        self.groups.intern(&chunk.keys, &mut self.indices)?;
        let total = self.groups.len();
        for (acc, state) in self.accumulators.iter_mut().zip(&chunk.states) {
            acc.merge_batch(state, &self.indices, total)?;
        }
        Ok(())
    }

    /// Takes the partial aggregates out, leaving the state empty.
    pub fn seal(&mut self) -> Result<StateChunk> {
        let keys = self.groups.emit(EmitTo::All)?;
        let states = self
            .accumulators
            .iter_mut()
            .map(|a| a.state(EmitTo::All))
            .collect::<datafusion::error::Result<_>>()?;
        Ok(StateChunk { keys, states })
    }

    /// Takes the final values out: the key columns and one column per aggregate.
    pub fn finish(&mut self) -> Result<(Vec<ArrayRef>, Vec<ArrayRef>)> {
        let keys = self.groups.emit(EmitTo::All)?;
        let values = self
            .accumulators
            .iter_mut()
            .map(|a| a.evaluate(EmitTo::All))
            .collect::<datafusion::error::Result<_>>()?;
        Ok((keys, values))
    }
}
