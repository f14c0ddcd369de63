//! The logical plan node of a window TVF: its input's columns plus `window_start`,
//! `window_end` and `window_time`.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::{DFSchema, DFSchemaRef, Result as DFResult, plan_err};
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNodeCore};

use super::WindowSpec;

/// Name of the window start column.
pub const WINDOW_START: &str = "window_start";
/// Name of the window end column (exclusive).
pub const WINDOW_END: &str = "window_end";
/// Name of the window time column (`window_end` - 1 ms, an event time).
pub const WINDOW_TIME: &str = "window_time";

/// `TUMBLE(TABLE t, DESCRIPTOR(ts), ...)` and friends in a logical plan.
#[derive(Debug, Clone)]
pub struct WindowTvfNode {
    /// The input (a scan of the table).
    pub input: LogicalPlan,
    /// The windows.
    pub spec: WindowSpec,
    /// The event-time column's name in the input.
    pub time_column: String,
    /// Input columns and the three window columns.
    pub schema: DFSchemaRef,
}

impl WindowTvfNode {
    /// A node over `input`, whose `time_column` must be a TIMESTAMP(3) event-time column.
    pub fn try_new(input: LogicalPlan, spec: WindowSpec, time_column: String) -> DFResult<Self> {
        let input_schema = input.schema();
        let Some((_, time_field)) = input_schema.iter().find(|(_, f)| f.name() == &time_column)
        else {
            return plan_err!(
                "{} time column '{time_column}' is not a column of its table",
                spec.function_name()
            );
        };
        if !matches!(
            time_field.data_type(),
            DataType::Timestamp(TimeUnit::Millisecond, _)
        ) {
            return plan_err!(
                "{} time column '{time_column}' must be TIMESTAMP(3) or TIMESTAMP_LTZ(3)",
                spec.function_name()
            );
        }
        let window_type = DataType::Timestamp(TimeUnit::Millisecond, None);
        let mut fields: Vec<_> = input_schema
            .iter()
            .map(|(q, f)| (q.cloned(), f.clone()))
            .collect();
        for name in [WINDOW_START, WINDOW_END] {
            if input_schema.fields().iter().any(|f| f.name() == name) {
                return plan_err!("the table already has a column named '{name}'");
            }
            fields.push((None, Arc::new(Field::new(name, window_type.clone(), false))));
        }
        // window_time keeps the time attribute's type (TIMESTAMP or TIMESTAMP_LTZ).
        fields.push((
            None,
            Arc::new(Field::new(
                WINDOW_TIME,
                time_field.data_type().clone(),
                false,
            )),
        ));
        let schema = DFSchema::new_with_metadata(fields, input_schema.metadata().clone())?;
        Ok(Self {
            input,
            spec,
            time_column,
            schema: Arc::new(schema),
        })
    }

    /// Index of the time column in the input.
    pub fn time_index(&self) -> Option<usize> {
        self.input
            .schema()
            .fields()
            .iter()
            .position(|f| f.name() == &self.time_column)
    }
}

impl PartialEq for WindowTvfNode {
    fn eq(&self, other: &Self) -> bool {
        self.input == other.input
            && self.spec == other.spec
            && self.time_column == other.time_column
    }
}

impl Eq for WindowTvfNode {}

impl Hash for WindowTvfNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.input.hash(state);
        self.spec.hash(state);
        self.time_column.hash(state);
    }
}

impl PartialOrd for WindowTvfNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.spec.partial_cmp(&other.spec) {
            Some(Ordering::Equal) => self.time_column.partial_cmp(&other.time_column),
            o => o,
        }
    }
}

impl UserDefinedLogicalNodeCore for WindowTvfNode {
    fn name(&self) -> &str {
        "WindowTVF"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn prevent_predicate_push_down_columns(&self) -> HashSet<String> {
        // Filters on the table's own columns may run before windowing; filters on the window
        // columns may not.
        [WINDOW_START, WINDOW_END, WINDOW_TIME]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WindowTVF: {} on {}", self.spec, self.time_column)
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> DFResult<Self> {
        let Some(input) = inputs.pop() else {
            return plan_err!("WindowTVF needs one input");
        };
        // The input may have lost columns to projection push-down: rebuild the schema.
        Self::try_new(input, self.spec.clone(), self.time_column.clone())
    }

    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let input_len = self.input.schema().fields().len();
        let time = self.time_index()?;
        let mut needed: Vec<usize> = output_columns
            .iter()
            .map(|&c| if c < input_len { c } else { time })
            .collect();
        // The time column is always needed: rows are windowed by it.
        needed.push(time);
        if let super::WindowKind::Session { partition_keys, .. } = &self.spec.kind {
            for key in partition_keys {
                if let Some(i) = self
                    .input
                    .schema()
                    .fields()
                    .iter()
                    .position(|f| f.name() == key)
                {
                    needed.push(i);
                }
            }
        }
        needed.sort_unstable();
        needed.dedup();
        Some(vec![needed])
    }
}
