//! CREATE VIEW, DROP VIEW, SHOW VIEWS, DESCRIBE and SHOW CREATE of a view.

use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::ViewTable;
use datafusion::sql::parser::Statement as DFStatement;
use magnetar_sql::SqlError;
use magnetar_sql::catalog::ViewDef;
use magnetar_sql::parser::types::sql_type_name;
use magnetar_sql::plan::is_time_attribute;
use magnetar_sql::statement::CreateView;

use super::plan_error;
use crate::engine::{Shared, StatementOutput};
use crate::error::Result;

/// The view called `name`, if there is one.
pub(crate) fn find(shared: &Shared, name: &str) -> Option<Arc<ViewDef>> {
    shared
        .views
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(name)
        .cloned()
}

/// The view called `name`, or an error that suggests the nearest.
pub(crate) fn view(shared: &Shared, name: &str) -> Result<Arc<ViewDef>> {
    let views = shared.views.read().unwrap_or_else(|p| p.into_inner());
    views.get(name).cloned().ok_or_else(|| {
        SqlError::UnknownView {
            name: name.to_string(),
            suggestion: magnetar_sql::error::nearest(name, views.keys().map(String::as_str)),
            location: None,
        }
        .into()
    })
}

/// `CREATE VIEW`: the query is planned now (so a view that cannot be planned is refused
/// here), and DataFusion inlines the plan wherever the view is read.
pub(crate) async fn create_view(shared: &Shared, create: &CreateView) -> Result<StatementOutput> {
    let name = &create.name;
    let is_table = shared
        .tables
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .contains_key(name);
    if is_table {
        return Err(SqlError::NameTaken {
            name: name.clone(),
            kind: "table",
            location: Some(create.location),
        }
        .into());
    }
    if find(shared, name).is_some() {
        return if create.if_not_exists {
            Ok(StatementOutput::Done(format!(
                "View '{name}' exists already."
            )))
        } else {
            Err(SqlError::NameTaken {
                name: name.clone(),
                kind: "view",
                location: Some(create.location),
            }
            .into())
        };
    }
    let state = shared.ctx.state();
    let plan = state
        .statement_to_plan(DFStatement::Statement(create.query.clone()))
        .await
        .map_err(plan_error)?;
    // Optimising once checks what only the optimiser finds; the view keeps the plan as
    // written, for each query that reads it to optimise as a whole.
    state.optimize(&plan).map_err(plan_error)?;
    let def = {
        let views = shared.views.read().unwrap_or_else(|p| p.into_inner());
        ViewDef::new(create, plan, &|n| views.contains_key(n))?
    };
    let provider = Arc::new(ViewTable::new(def.plan.clone(), Some(def.text.clone())));
    shared.ctx.register_table(name.as_str(), provider)?;
    shared
        .views
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.clone(), Arc::new(def));
    Ok(StatementOutput::Done(format!("View '{name}' created.")))
}

/// The views that read `name` (a table or a view), other than `name` itself, sorted.
pub(crate) fn readers_of(shared: &Shared, name: &str) -> Vec<String> {
    shared
        .views
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .filter(|v| v.name != name && v.reads(name))
        .map(|v| v.name.clone())
        .collect()
}

/// `DROP VIEW`: refused while another view reads it.
pub(crate) fn drop_view(shared: &Shared, name: &str, if_exists: bool) -> Result<StatementOutput> {
    if find(shared, name).is_none() {
        return if if_exists {
            Ok(StatementOutput::Done(format!(
                "View '{name}' does not exist."
            )))
        } else {
            Err(view(shared, name)
                .err()
                .unwrap_or_else(|| crate::error::EngineError::Internal("view vanished".into())))
        };
    }
    let readers = readers_of(shared, name);
    if !readers.is_empty() {
        return Err(SqlError::StillRead {
            name: name.to_string(),
            kind: "view",
            views: readers,
            location: None,
        }
        .into());
    }
    shared
        .views
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .remove(name);
    shared.ctx.deregister_table(name)?;
    Ok(StatementOutput::Done(format!("View '{name}' dropped.")))
}

fn strings(values: Vec<String>) -> Arc<StringArray> {
    Arc::new(StringArray::from(values))
}

/// `SHOW VIEWS`: each view with the tables and views it reads.
pub(crate) fn show_views(shared: &Shared) -> Result<StatementOutput> {
    let views = shared.views.read().unwrap_or_else(|p| p.into_inner());
    let names = views.keys().cloned().collect();
    let reads = views
        .values()
        .map(|v| {
            let all: std::collections::BTreeSet<&String> =
                v.tables.iter().chain(&v.views).collect();
            all.into_iter().cloned().collect::<Vec<_>>().join(", ")
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("view", DataType::Utf8, false),
        Field::new("reads", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(schema, vec![strings(names), strings(reads)])?;
    Ok(StatementOutput::Table(vec![batch]))
}

/// `DESCRIBE` of a view: its columns, and which of them carry event time.
pub(crate) fn describe_view(view: &ViewDef) -> Result<StatementOutput> {
    let fields = view.schema.fields();
    let names = fields.iter().map(|f| f.name().clone()).collect();
    let types = fields
        .iter()
        .map(|f| sql_type_name(f.data_type()))
        .collect();
    let nulls = fields
        .iter()
        .map(|f| if f.is_nullable() { "YES" } else { "NO" }.to_string())
        .collect();
    let extras: Vec<Option<String>> = (0..fields.len())
        .map(|i| is_time_attribute(&view.plan, i).then(|| "event time".to_string()))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("null", DataType::Utf8, false),
        Field::new("extras", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            strings(names),
            strings(types),
            strings(nulls),
            Arc::new(StringArray::from(extras)),
        ],
    )?;
    Ok(StatementOutput::Table(vec![batch]))
}
