//! `tumble(...)`, `hop(...)`, `cumulate(...)` and `session(...)` as DataFusion table
//! functions (the window TVF syntax is rewritten into these calls). Each returns a view
//! whose plan is a [`WindowTvfNode`] over a scan of the table.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{Result as DFResult, ScalarValue, plan_err};
use datafusion::datasource::{TableProvider, TableType, provider_as_source};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::ExecutionPlan;

use super::{Millis, WindowKind, WindowSpec, WindowTvfNode};
use crate::catalog::{TableDef, ViewDef};
use crate::plan::is_time_attribute;

/// The most slides (HOP) or steps (CUMULATE) one window may span: each row belongs to that
/// many windows, and firing one merges that many slices, so far more would hang a query.
pub const MAX_PANES: Millis = 10_000;

/// What a window function's `TABLE name` names.
pub enum Relation {
    /// A table: its definition and its DataFusion provider.
    Table(Arc<TableDef>, Arc<dyn TableProvider>),
    /// A view.
    View(Arc<ViewDef>),
}

/// Finds tables and views by name for the window functions.
pub trait TableResolver: std::fmt::Debug + Send + Sync {
    /// The table or view called `name`.
    fn resolve(&self, name: &str) -> Option<Relation>;
}

/// A window function's input when it reads a table: a scan, whose time column must be
/// the table's event time.
fn table_input(
    f: &str,
    table: &str,
    time: &str,
    spec: &WindowSpec,
    def: &TableDef,
    provider: Arc<dyn TableProvider>,
) -> DFResult<LogicalPlan> {
    if !def.columns.iter().any(|c| c.field.name() == time) {
        let names = def.columns.iter().map(|c| c.field.name().as_str());
        let hint = crate::error::nearest(time, names)
            .map(|n| format!("; did you mean '{n}'?"))
            .unwrap_or_default();
        return plan_err!("{f}: table '{table}' has no column '{time}'{hint}");
    }
    let Some(watermark) = &def.watermark else {
        return plan_err!(
            "{f} needs event time: declare WATERMARK FOR {time} AS {time} - INTERVAL '5' SECOND on table '{table}'"
        );
    };
    if watermark.column != time {
        return plan_err!(
            "{f}: '{time}' is not the event-time column of table '{table}' (WATERMARK FOR {})",
            watermark.column
        );
    }
    check_partition_keys(spec, &def.schema, "table", table)?;
    LogicalPlanBuilder::scan(table, provider_as_source(provider), None)?.build()
}

/// A window function's input when it reads a view: the view's plan, whose time column must
/// be an event-time attribute (see [`is_time_attribute`]).
fn view_input(f: &str, time: &str, spec: &WindowSpec, view: &ViewDef) -> DFResult<LogicalPlan> {
    let name = &view.name;
    let Ok(index) = view.schema.index_of(time) else {
        let names = view.schema.fields().iter().map(|c| c.name().as_str());
        let hint = crate::error::nearest(time, names)
            .map(|n| format!("; did you mean '{n}'?"))
            .unwrap_or_default();
        return plan_err!("{f}: view '{name}' has no column '{time}'{hint}");
    };
    if !is_time_attribute(&view.plan, index) {
        return plan_err!(
            "{f}: column '{time}' of view '{name}' is not an event-time attribute (one is a table's WATERMARK column, a window's window_time or MATCH_ROWTIME(), passed on unchanged)"
        );
    }
    check_partition_keys(spec, &view.schema, "view", name)?;
    LogicalPlanBuilder::from(view.plan.clone())
        .alias(name.as_str())?
        .build()
}

fn check_partition_keys(
    spec: &WindowSpec,
    schema: &Schema,
    what: &str,
    name: &str,
) -> DFResult<()> {
    if let WindowKind::Session { partition_keys, .. } = &spec.kind {
        for key in partition_keys {
            if schema.index_of(key).is_err() {
                return plan_err!("SESSION: no column '{key}' in {what} '{name}' to partition by");
            }
        }
    }
    Ok(())
}

/// One of the window table functions.
#[derive(Debug)]
pub struct WindowTableFunction {
    name: &'static str,
    tables: Arc<dyn TableResolver>,
}

/// Registers `tumble`, `hop`, `cumulate` and `session` with `ctx`.
pub fn register_window_functions(ctx: &SessionContext, tables: Arc<dyn TableResolver>) {
    for name in ["tumble", "hop", "cumulate", "session"] {
        ctx.register_udtf(
            name,
            Arc::new(WindowTableFunction {
                name,
                tables: tables.clone(),
            }),
        );
    }
}

/// An identifier as written: quoted ones keep their case, others are lower-cased.
fn normalize(ident: &str) -> String {
    let t = ident.trim();
    for q in ['"', '`'] {
        if let Some(inner) = t.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    t.to_ascii_lowercase()
}

fn text<'a>(function: &str, what: &str, arg: Option<&'a Expr>) -> DFResult<&'a str> {
    match arg {
        Some(Expr::Literal(ScalarValue::Utf8(Some(s)), _)) => Ok(s.as_str()),
        _ => plan_err!("{function}: expected {what}"),
    }
}

/// An interval literal in milliseconds.
pub(crate) fn millis(function: &str, what: &str, arg: Option<&Expr>) -> DFResult<Millis> {
    let ms = match arg {
        Some(Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _)) => {
            if v.months != 0 {
                return plan_err!("{function}: the {what} cannot be in months or years");
            }
            i64::from(v.days) * 86_400_000 + v.nanoseconds / 1_000_000
        }
        Some(Expr::Literal(ScalarValue::IntervalDayTime(Some(v)), _)) => {
            i64::from(v.days) * 86_400_000 + i64::from(v.milliseconds)
        }
        _ => {
            return plan_err!(
                "{function}: the {what} must be an interval such as INTERVAL '1' MINUTE"
            );
        }
    };
    Ok(ms)
}

fn positive(function: &str, what: &str, ms: Millis) -> DFResult<Millis> {
    if ms <= 0 {
        return plan_err!("{function}: the {what} must be positive");
    }
    Ok(ms)
}

impl WindowTableFunction {
    fn spec(&self, args: &[Expr]) -> DFResult<(String, String, WindowSpec)> {
        let f = self.name.to_ascii_uppercase();
        let table = normalize(text(&f, "TABLE <name>", args.first())?);
        let (time_arg, rest) = if self.name == "session" {
            (2, 3)
        } else {
            (1, 2)
        };
        let time = normalize(text(&f, "DESCRIPTOR(column)", args.get(time_arg))?);
        let arg = |i: usize| args.get(rest + i);
        let expected = match self.name {
            "tumble" => 1..=2,
            "session" => 1..=1,
            _ => 2..=3,
        };
        if !expected.contains(&(args.len().saturating_sub(rest))) {
            return plan_err!("{f}: wrong number of arguments");
        }
        let offset = |i: usize| -> DFResult<Millis> {
            match arg(i) {
                None => Ok(0),
                some => millis(&f, "offset", some),
            }
        };
        let spec = match self.name {
            "tumble" => WindowSpec {
                kind: WindowKind::Tumble {
                    size: positive(&f, "size", millis(&f, "size", arg(0))?)?,
                },
                offset: offset(1)?,
            },
            "hop" => {
                let slide = positive(&f, "slide", millis(&f, "slide", arg(0))?)?;
                let size = positive(&f, "size", millis(&f, "size", arg(1))?)?;
                // Flink's rule too: windows are whole runs of slides.
                if size % slide != 0 {
                    return plan_err!("HOP: the size must be a multiple of the slide");
                }
                if size / slide > MAX_PANES {
                    return plan_err!(
                        "HOP: a window of {} slides is more than the {MAX_PANES} a window may span (each row belongs to every one of them); use a larger slide, or CUMULATE",
                        size / slide
                    );
                }
                WindowSpec {
                    kind: WindowKind::Hop { slide, size },
                    offset: offset(2)?,
                }
            }
            "cumulate" => {
                let step = positive(&f, "step", millis(&f, "step", arg(0))?)?;
                let size = positive(&f, "size", millis(&f, "size", arg(1))?)?;
                if size % step != 0 {
                    return plan_err!("CUMULATE: the size must be a multiple of the step");
                }
                if size / step > MAX_PANES {
                    return plan_err!(
                        "CUMULATE: a window of {} steps is more than the {MAX_PANES} a window may span; use a larger step",
                        size / step
                    );
                }
                WindowSpec {
                    kind: WindowKind::Cumulate { step, size },
                    offset: offset(2)?,
                }
            }
            _ => {
                let keys = text(&f, "PARTITION BY columns", args.get(1))?;
                WindowSpec {
                    kind: WindowKind::Session {
                        gap: positive(&f, "gap", millis(&f, "gap", arg(0))?)?,
                        partition_keys: keys
                            .split(',')
                            .filter(|k| !k.trim().is_empty())
                            .map(normalize)
                            .collect(),
                    },
                    offset: 0,
                }
            }
        };
        Ok((table, time, spec))
    }
}

impl TableFunctionImpl for WindowTableFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let (table, time, spec) = self.spec(args.exprs())?;
        let f = spec.function_name();
        let input = match self.tables.resolve(&table) {
            None => return plan_err!("{f}: table '{table}' does not exist"),
            Some(Relation::Table(def, provider)) => {
                table_input(f, &table, &time, &spec, &def, provider)?
            }
            Some(Relation::View(view)) => view_input(f, &time, &spec, &view)?,
        };
        let node = WindowTvfNode::try_new(input, spec, time)?;
        let schema = Arc::new(node.schema.as_arrow().clone());
        Ok(Arc::new(WindowView {
            plan: LogicalPlan::Extension(Extension {
                node: Arc::new(node),
            }),
            schema,
        }))
    }
}

/// The table a window function returns: a view whose plan DataFusion inlines.
#[derive(Debug)]
struct WindowView {
    plan: LogicalPlan,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for WindowView {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_logical_plan(&'_ self) -> Option<std::borrow::Cow<'_, LogicalPlan>> {
        Some(std::borrow::Cow::Borrowed(&self.plan))
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        plan_err!("window functions run on the streaming runtime")
    }
}
