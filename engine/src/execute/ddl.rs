//! CREATE / DROP / DESCRIBE / SHOW.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use magnetar_connectors::ConnectorError;
use magnetar_connectors::schema::{SchemaInfo, SchemaRegistry};
use magnetar_sql::SqlError;
use magnetar_sql::catalog::{ColumnSource, TableDef};
use magnetar_sql::options::Connector;
use magnetar_sql::parser::types::sql_type_name;
use magnetar_sql::statement::CreateTable;

use crate::engine::{Engine, Shared, StatementOutput};
use crate::error::{EngineError, Result};

/// How long a broker may take to answer GetSchema, for a table with no columns and no
/// admin URL.
const GET_SCHEMA_TIMEOUT: Duration = Duration::from_secs(5);

/// `create` with the session's `pulsar.client.*` settings (`SET`, or the CLI's
/// `--auth-token-file` and `--pulsar-conf`) added to a Pulsar table that sets none of them
/// itself: a table's own client options replace the session's as a whole, never mix with them.
fn with_session_client_options(shared: &Shared, create: &CreateTable) -> CreateTable {
    let mut create = create.clone();
    let is_pulsar = create
        .options
        .iter()
        .any(|e| e.key == "connector" && e.value.eq_ignore_ascii_case("pulsar"));
    let has_own = create
        .options
        .iter()
        .any(|e| e.key.starts_with(crate::settings::CLIENT_SETTING_PREFIX));
    if is_pulsar && !has_own {
        for (key, value) in shared.settings().client_options() {
            create.options.push(magnetar_sql::statement::OptionEntry {
                key,
                value,
                key_location: None,
                value_location: None,
            });
        }
    }
    create
}

/// The latest registry schema of a Pulsar table's topic: over REST when the table has an
/// `admin-url`, else (only when no column is declared) through the broker's GetSchema.
async fn registry_schema(shared: &Shared, create: &CreateTable) -> Result<Option<Arc<SchemaInfo>>> {
    let connector = Connector::parse(
        &create.name,
        &create.options,
        Some(create.location),
        &shared.clients.custom().specs(),
    )?;
    let Connector::Pulsar(options) = &connector else {
        return Ok(None);
    };
    let needs_columns = TableDef::needs_registry_columns(create);
    let Some(first) = options.topics.first() else {
        if needs_columns {
            return Err(EngineError::Sql(SqlError::Schema {
                table: create.name.clone(),
                message: "a table read by topic pattern declares its columns (the matching topics are only known when it is read)".into(),
                location: Some(create.location),
            }));
        }
        return Ok(None);
    };
    let schema_error = |message: String| {
        EngineError::Sql(SqlError::Schema {
            table: create.name.clone(),
            message,
            location: Some(create.location),
        })
    };
    if let Some(admin_url) = &options.admin_url {
        let registry = SchemaRegistry::with_security(admin_url, &options.client.security)?;
        let latest = registry.latest(first).await?;
        for other in &options.topics[1..] {
            let schema = registry.latest(other).await?;
            let same = match (&latest, &schema) {
                (Some(a), Some(b)) => a.kind == b.kind && a.data == b.data,
                (None, None) => true,
                _ => false,
            };
            if !same {
                return Err(schema_error(format!(
                    "topics '{first}' and '{other}' have different registry schemas; one table reads topics of one schema"
                )));
            }
        }
        if latest.is_none() && needs_columns {
            return Err(schema_error(format!(
                "declares no columns, and topic '{first}' has no schema in the registry at {admin_url}; declare the columns and a 'format'"
            )));
        }
        return Ok(latest);
    }
    if !needs_columns {
        return Ok(None);
    }
    let service_url = options
        .service_url
        .clone()
        .or_else(|| shared.default_service_url())
        .ok_or_else(|| EngineError::NoServiceUrl {
            table: create.name.clone(),
        })?;
    let client = shared
        .clients
        .get_with(options.client.client_config(&service_url))
        .await?;
    match client.get_schema(first, GET_SCHEMA_TIMEOUT).await {
        Ok(Some(info)) => Ok(Some(Arc::new(info))),
        Ok(None) => Err(schema_error(format!(
            "declares no columns, and topic '{first}' has no schema; declare the columns and a 'format'"
        ))),
        Err(ConnectorError::Timeout { timeout_ms, .. }) => Err(schema_error(format!(
            "declares no columns, and the broker at {service_url} did not answer GetSchema for topic '{first}' within {timeout_ms} ms (pulsar-lite has no schema registry); set 'admin-url' to read Pulsar's Schema Registry over REST, or declare the columns"
        ))),
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn create_table(shared: &Shared, create: &CreateTable) -> Result<StatementOutput> {
    let with_defaults = with_session_client_options(shared, create);
    let create = &with_defaults;
    let exists = shared
        .tables
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .contains_key(&create.name);
    if exists {
        return if create.if_not_exists {
            Ok(StatementOutput::Done(format!(
                "Table '{}' exists already.",
                create.name
            )))
        } else {
            Err(EngineError::Sql(magnetar_sql::SqlError::TableExists {
                name: create.name.clone(),
                location: Some(create.location),
            }))
        };
    }
    if super::views::find(shared, &create.name).is_some() {
        return Err(EngineError::Sql(SqlError::NameTaken {
            name: create.name.clone(),
            kind: "view",
            location: Some(create.location),
        }));
    }
    // Declaration errors first, without asking the registry or the broker anything.
    let custom = shared.clients.custom().specs();
    match TableDef::from_create_with_schema(create, None, &custom) {
        Ok(_) | Err(SqlError::NoColumns { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let registry = registry_schema(shared, create).await?;
    let def = Arc::new(TableDef::from_create_with_schema(
        create, registry, &custom,
    )?);
    // The watermark expression is planned now, so that one which is not a timestamp of the
    // table's columns fails here rather than when a query starts.
    if let Some(w) = &create.watermark {
        crate::sources::WatermarkExpr::compile(&def, &shared.ctx.state()).map_err(|e| match e {
            EngineError::Sql(SqlError::Unsupported {
                what,
                location: None,
            }) => EngineError::Sql(SqlError::syntax(what, Some(w.location))),
            other => other,
        })?;
    }
    if let magnetar_sql::options::Connector::Memory(o) = &def.connector {
        // Creates the storage, or checks that an existing one fits.
        shared.clients.memory().log(&o.name, o.partitions)?;
    }
    Engine::register(shared, def.clone())?;
    shared
        .tables
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert(def.name.clone(), def.clone());
    Ok(StatementOutput::Done(format!(
        "Table '{}' created.",
        def.name
    )))
}

pub(crate) fn drop_table(shared: &Shared, name: &str, if_exists: bool) -> Result<StatementOutput> {
    let readers = super::views::readers_of(shared, name);
    if !readers.is_empty() {
        return Err(EngineError::Sql(SqlError::StillRead {
            name: name.to_string(),
            kind: "table",
            views: readers,
            location: None,
        }));
    }
    let removed = shared
        .tables
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .remove(name);
    match removed {
        Some(_) => {
            shared.ctx.deregister_table(name)?;
            Ok(StatementOutput::Done(format!("Table '{name}' dropped.")))
        }
        None if if_exists => Ok(StatementOutput::Done(format!(
            "Table '{name}' does not exist."
        ))),
        None => Err(shared
            .table(name)
            .err()
            .unwrap_or(EngineError::Internal("table vanished".into()))),
    }
}

fn strings(values: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

fn optional_strings(values: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(values))
}

pub(crate) fn show_tables(shared: &Shared) -> Result<StatementOutput> {
    let tables = shared.tables.read().unwrap_or_else(|p| p.into_inner());
    let names: Vec<String> = tables.keys().cloned().collect();
    let topics: Vec<String> = tables
        .values()
        .map(|t| match &t.connector {
            Connector::Pulsar(o) => o
                .topics
                .iter()
                .map(|x| x.to_string())
                .chain(o.topic_patterns.iter().map(|p| p.to_string()))
                .collect::<Vec<_>>()
                .join(";"),
            Connector::Filesystem(o) => o.path.display().to_string(),
            Connector::Memory(o) => format!("memory:{}", o.name),
            Connector::Custom(o) => format!("custom:{}", o.connector),
        })
        .collect();
    let bounded: Vec<String> = tables
        .values()
        .map(|t| {
            if t.is_bounded() {
                "bounded"
            } else {
                "unbounded"
            }
            .to_string()
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new("topics", DataType::Utf8, false),
        Field::new("reads", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![strings(names), strings(topics), strings(bounded)],
    )?;
    Ok(StatementOutput::Table(vec![batch]))
}

pub(crate) fn describe(shared: &Shared, name: &str) -> Result<StatementOutput> {
    let table = shared.table(name)?;
    Ok(StatementOutput::Table(vec![describe_batch(&table)?]))
}

fn describe_batch(table: &TableDef) -> Result<RecordBatch> {
    let mut names = Vec::new();
    let mut types = Vec::new();
    let mut nulls = Vec::new();
    let mut sources = Vec::new();
    let mut extras = Vec::new();
    for c in &table.columns {
        names.push(c.field.name().clone());
        types.push(sql_type_name(c.field.data_type()));
        nulls.push(if c.field.is_nullable() { "YES" } else { "NO" }.to_string());
        sources.push(match &c.source {
            ColumnSource::Payload => match &table.value_schema {
                Some(info) => format!(
                    "value ({} schema{})",
                    info.kind.name(),
                    info.version.map(|v| format!(" v{v}")).unwrap_or_default()
                ),
                None => format!("value ({})", table.format().kind.name()),
            },
            ColumnSource::Metadata { key, is_virtual } => format!(
                "METADATA FROM '{}'{}",
                key.name(),
                if *is_virtual { " VIRTUAL" } else { "" }
            ),
        });
        let mut extra = Vec::new();
        if table.primary_key.contains(c.field.name()) {
            extra.push("PRIMARY KEY NOT ENFORCED".to_string());
        }
        if let Some(w) = table
            .watermark
            .as_ref()
            .filter(|w| &w.column == c.field.name())
        {
            extra.push(format!("WATERMARK AS {}", w.expr));
        }
        if table
            .pulsar()
            .is_some_and(|o| o.key_fields.contains(c.field.name()))
        {
            extra.push("message key".to_string());
        }
        extras.push((!extra.is_empty()).then(|| extra.join(", ")));
    }
    let comments: Vec<Option<String>> = table.columns.iter().map(|c| c.comment.clone()).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("null", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("extras", DataType::Utf8, true),
        Field::new("comment", DataType::Utf8, true),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            strings(names),
            strings(types),
            strings(nulls),
            strings(sources),
            optional_strings(extras),
            optional_strings(comments),
        ],
    )?)
}

/// The columns `SHOW JOBS` prints; `SELECT * FROM system.jobs` has every counter.
const SHOW_JOBS_COLUMNS: &[&str] = &[
    "id",
    "name",
    "state",
    "sink",
    "parallelism",
    "input_rate",
    "backlog",
    "watermark_lag_s",
    "late",
    "state_bytes",
    "last_checkpoint",
    "last_checkpoint_at",
    "read",
    "written",
    "error",
    "warning",
];

pub(crate) fn show_jobs(shared: &Shared) -> Result<StatementOutput> {
    let jobs: Vec<_> = shared.jobs.all().iter().map(|j| j.info()).collect();
    let all = crate::jobs::jobs_batch(&jobs)?;
    let schema = all.schema();
    let indices = SHOW_JOBS_COLUMNS
        .iter()
        .map(|name| schema.index_of(name))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(StatementOutput::Table(vec![all.project(&indices)?]))
}

pub(crate) fn show_settings(shared: &Shared) -> Result<StatementOutput> {
    let settings = shared.settings();
    let all = settings.all();
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            strings(all.iter().map(|(k, _)| k.to_string()).collect()),
            optional_strings(
                all.iter()
                    .map(|(k, v)| {
                        v.as_deref()
                            .map(|v| magnetar_sql::options::shown_value(k, v))
                    })
                    .collect(),
            ),
        ],
    )?;
    Ok(StatementOutput::Table(vec![batch]))
}
