//! The engine: a catalog of Pulsar tables, session settings, and jobs; runs statements.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::datasource::TableProvider;
use datafusion::error::Result as DFResult;
use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::streaming::StreamingTableExec;
use magnetar_connectors::pulsar::PositionFile;
use magnetar_sql::catalog::{MagnetarTable, ScanFactory, TableDef, ViewDef};
use magnetar_sql::match_recognize::MatchRecognizePlanner;
use magnetar_sql::window::{Relation, TableResolver, register_window_functions};
use magnetar_sql::{Location, ScriptStatement, Statement};

use crate::error::{EngineError, Result};
use crate::execute;
use crate::jobs::{JobInfo, JobRegistry, JobState, SystemTable};
use crate::memory_limit::SettableMemoryPool;
use crate::runtime::{Clock, QueryStream};
use crate::settings::Settings;
use crate::sources::{BoundedScan, ClientPool};

/// How to open an [`Engine`].
#[derive(Clone, Debug, Default)]
pub struct EngineConfig {
    /// Broker for tables that give no `service-url` (same as `SET 'pulsar.service-url'`).
    pub service_url: Option<String>,
    /// Where the engine keeps its files; the CLI uses the user's data directory.
    pub data_dir: Option<PathBuf>,
    /// Processing time (for idle partitions); tests use a manual clock.
    pub clock: Clock,
    /// Instances of keyed operators when `parallelism.default` is not set (`None`: the
    /// number of cores).
    pub parallelism: Option<usize>,
}

impl EngineConfig {
    /// A config whose tables default to `service_url`.
    pub fn with_service_url(service_url: impl Into<String>) -> Self {
        Self {
            service_url: Some(service_url.into()),
            ..Self::default()
        }
    }
}

/// What a statement produced.
#[derive(Debug)]
pub enum StatementOutput {
    /// A statement that only reports success, with a message such as "Table created.".
    Done(String),
    /// A small table of results (`SHOW`, `DESCRIBE`).
    Table(Vec<RecordBatch>),
    /// The rows of a query, as they come.
    Query(QueryStream),
    /// A job was started (`INSERT INTO`).
    JobStarted(Box<JobInfo>),
    /// The plan of a statement (`EXPLAIN`).
    Explain(String),
    /// Text shown as it is (`SHOW CREATE TABLE`).
    Text(String),
}

/// An error in a script, with the statement it happened in.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct StatementError {
    /// What went wrong; its location (if any) is relative to the script.
    pub error: EngineError,
    /// The failing statement's text.
    pub statement: String,
    /// Where the statement starts in the script.
    pub start: Location,
}

impl StatementError {
    /// The error's place in the script: its own location, or the statement's start.
    pub fn location(&self) -> Location {
        self.error.location().unwrap_or(self.start)
    }
}

pub(crate) struct Shared {
    pub ctx: SessionContext,
    pub tables: Arc<RwLock<BTreeMap<String, Arc<TableDef>>>>,
    pub views: Arc<RwLock<BTreeMap<String, Arc<ViewDef>>>>,
    pub settings: Arc<RwLock<Settings>>,
    pub jobs: Arc<JobRegistry>,
    pub clients: Arc<ClientPool>,
    pub config: EngineConfig,
    /// The session's memory pool, bounded by `execution.memory-limit`.
    pub memory: Arc<SettableMemoryPool>,
}

impl Shared {
    /// Applies settings that live outside `Settings` (the memory limit) after a change.
    fn settings_changed(&self) {
        self.memory.set_limit(self.settings().memory_limit());
    }

    pub fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .with_default_parallelism(self.config.parallelism)
    }

    pub fn default_service_url(&self) -> Option<String> {
        self.settings()
            .get("pulsar.service-url")
            .map(str::to_string)
            .or_else(|| self.config.service_url.clone())
    }

    pub fn table(&self, name: &str) -> Result<Arc<TableDef>> {
        let tables = self.tables.read().unwrap_or_else(|p| p.into_inner());
        tables.get(name).cloned().ok_or_else(|| {
            EngineError::Sql(magnetar_sql::SqlError::UnknownTable {
                name: name.to_string(),
                suggestion: magnetar_sql::error::nearest(name, tables.keys().map(String::as_str)),
                location: None,
            })
        })
    }

    pub fn scan_factory(&self) -> Arc<dyn ScanFactory> {
        Arc::new(EngineScanFactory {
            clients: self.clients.clone(),
            settings: self.settings.clone(),
            default_service_url: self.config.service_url.clone(),
        })
    }
}

/// `system.jobs` and `system.job_tasks`, next to the user's tables.
fn register_system_tables(ctx: &SessionContext, jobs: &Arc<JobRegistry>) {
    let schema = Arc::new(MemorySchemaProvider::new());
    // Registering into a fresh in-memory schema cannot clash with anything.
    let _ = schema.register_table("jobs".into(), Arc::new(SystemTable::jobs(jobs.clone())));
    let _ = schema.register_table(
        "job_tasks".into(),
        Arc::new(SystemTable::job_tasks(jobs.clone())),
    );
    if let Some(catalog) = ctx.catalog("datafusion") {
        let _ = catalog.register_schema("system", schema);
    }
}

/// The engine's tables and views, for the window table functions.
#[derive(Debug)]
struct EngineTables {
    tables: Arc<RwLock<BTreeMap<String, Arc<TableDef>>>>,
    views: Arc<RwLock<BTreeMap<String, Arc<ViewDef>>>>,
    factory: Arc<dyn ScanFactory>,
}

impl TableResolver for EngineTables {
    fn resolve(&self, name: &str) -> Option<Relation> {
        let table = self
            .tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned();
        if let Some(def) = table {
            let provider: Arc<dyn TableProvider> =
                Arc::new(MagnetarTable::new(def.clone(), self.factory.clone()));
            return Some(Relation::Table(def, provider));
        }
        self.views
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .map(Relation::View)
    }
}

/// Bounded scans for DataFusion, over the engine's clients.
#[derive(Debug)]
struct EngineScanFactory {
    clients: Arc<ClientPool>,
    settings: Arc<RwLock<Settings>>,
    default_service_url: Option<String>,
}

#[async_trait]
impl ScanFactory for EngineScanFactory {
    async fn bounded_scan(
        &self,
        table: Arc<TableDef>,
        projection: Option<&Vec<usize>>,
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let settings = self
            .settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let default = settings
            .get("pulsar.service-url")
            .map(str::to_string)
            .or_else(|| self.default_service_url.clone());
        if table.pulsar().is_some() {
            // Fail at planning time when there is no broker to read from at all.
            crate::runtime::service_url_for(&table, default.as_deref())?;
        }
        let scan = BoundedScan::new(
            table,
            projection.cloned(),
            self.clients.clone(),
            default,
            settings.batch_size(),
        )?;
        let schema = datafusion::physical_plan::streaming::PartitionStream::schema(&scan).clone();
        Ok(Arc::new(StreamingTableExec::try_new(
            schema,
            vec![Arc::new(scan)],
            None,
            Vec::new(),
            false,
            limit,
        )?))
    }
}

/// The embeddable engine. Cheap to clone; clones share tables, settings and jobs.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use futures::StreamExt;
/// use magnetar::{Engine, EngineConfig};
///
/// let engine = Engine::new(EngineConfig::with_service_url("pulsar://127.0.0.1:6650"));
/// engine.execute("CREATE TABLE clicks (user_id STRING, url STRING) WITH (
///     'connector' = 'pulsar', 'topics' = 'click-events',
///     'source.stop.at-message-id' = 'latest')").await?;
/// let mut rows = engine.query("SELECT user_id, count(*) AS n FROM clicks GROUP BY user_id").await?;
/// while let Some(batch) = rows.next().await {
///     println!("{} rows", batch?.num_rows());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Engine {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl Engine {
    /// The names (and aliases) of every aggregate function a query can call, sorted.
    pub fn aggregate_function_names(&self) -> Vec<String> {
        let state = self.shared.ctx.state();
        let mut names: Vec<String> = state.aggregate_functions().keys().cloned().collect();
        names.sort();
        names
    }

    /// Opens an engine.
    pub fn new(config: EngineConfig) -> Engine {
        let mut session = SessionConfig::new()
            .with_information_schema(false)
            .with_create_default_catalog_and_schema(true); // Formats decode strings as Utf8; keep SQL's STRING/VARCHAR the same type.
        session
            .options_mut()
            .sql_parser
            .map_string_types_to_utf8view = false;
        // Planning errors then carry the position of what they name (a column, a function).
        session.options_mut().sql_parser.collect_spans = true;
        let memory = Arc::new(SettableMemoryPool::default());
        let runtime = match RuntimeEnvBuilder::new()
            .with_memory_pool(memory.clone())
            .build_arc()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::warn!(error = %e, "DataFusion's runtime with a memory pool could not be built; 'execution.memory-limit' has no effect");
                Arc::default()
            }
        };
        let ctx = SessionContext::new_with_config_rt(session, runtime);
        let tables: Arc<RwLock<BTreeMap<String, Arc<TableDef>>>> = Arc::default();
        let views: Arc<RwLock<BTreeMap<String, Arc<ViewDef>>>> = Arc::default();
        let settings: Arc<RwLock<Settings>> = Arc::default();
        let clients = Arc::new(ClientPool::new(Arc::new(match &config.data_dir {
            Some(dir) => PositionFile::at(dir.join("subscription-positions.json")),
            None => PositionFile::in_memory(),
        })));
        let factory: Arc<dyn ScanFactory> = Arc::new(EngineScanFactory {
            clients: clients.clone(),
            settings: settings.clone(),
            default_service_url: config.service_url.clone(),
        });
        register_window_functions(
            &ctx,
            Arc::new(EngineTables {
                tables: tables.clone(),
                views: views.clone(),
                factory,
            }),
        );
        crate::flink_functions::register(&ctx);
        if let Err(e) = ctx.register_relation_planner(Arc::new(MatchRecognizePlanner)) {
            tracing::warn!(error = %e, "MATCH_RECOGNIZE could not be registered");
        }
        let jobs = Arc::new(JobRegistry::default());
        register_system_tables(&ctx, &jobs);
        Engine {
            shared: Arc::new(Shared {
                ctx,
                tables: tables.clone(),
                views,
                settings,
                jobs,
                clients,
                config,
                memory,
            }),
        }
    }

    /// Runs every statement of `sql` in order and returns their outputs; stops at the first
    /// error. Queries are returned as streams that the caller reads.
    pub async fn execute(
        &self,
        sql: &str,
    ) -> std::result::Result<Vec<StatementOutput>, StatementError> {
        let statements = magnetar_sql::split_statements(sql).map_err(|e| StatementError {
            start: e.location().unwrap_or(Location::START),
            error: e.into(),
            statement: sql.to_string(),
        })?;
        let mut outputs = Vec::with_capacity(statements.len());
        for statement in &statements {
            outputs.push(self.execute_statement(statement).await?);
        }
        Ok(outputs)
    }

    /// Runs one statement of a script; errors carry script positions.
    pub async fn execute_statement(
        &self,
        statement: &ScriptStatement,
    ) -> std::result::Result<StatementOutput, StatementError> {
        let fail = |e: EngineError| StatementError {
            error: e.offset_by(statement.start),
            statement: statement.text.clone(),
            start: statement.start,
        };
        let parsed = magnetar_sql::parse_statement(&statement.text).map_err(|e| fail(e.into()))?;
        self.run(parsed, &statement.text).await.map_err(fail)
    }

    /// Runs one query and returns its rows.
    pub async fn query(&self, sql: &str) -> Result<QueryStream> {
        match magnetar_sql::parse_statement(sql)? {
            Statement::Query(q) => execute::query::run_query(&self.shared, *q).await,
            _ => Err(EngineError::Sql(magnetar_sql::SqlError::unsupported(
                "Engine::query takes a SELECT; use Engine::execute for other statements",
                None,
            ))),
        }
    }

    async fn run(&self, statement: Statement, text: &str) -> Result<StatementOutput> {
        let shared = &self.shared;
        match statement {
            Statement::CreateTable(create) => execute::ddl::create_table(shared, &create).await,
            Statement::DropTable { name, if_exists } => {
                execute::ddl::drop_table(shared, &name, if_exists)
            }
            Statement::CreateView(create) => execute::views::create_view(shared, &create).await,
            Statement::DropView { name, if_exists } => {
                execute::views::drop_view(shared, &name, if_exists)
            }
            Statement::ShowTables => execute::ddl::show_tables(shared),
            Statement::ShowViews => execute::views::show_views(shared),
            Statement::ShowCreateView { name } => Ok(StatementOutput::Text(
                execute::views::view(shared, &name)?.text.clone(),
            )),
            Statement::Describe { name } => match execute::views::find(shared, &name) {
                Some(view) => execute::views::describe_view(&view),
                None => execute::ddl::describe(shared, &name),
            },
            Statement::ShowCreateTable { name } => Ok(StatementOutput::Text(
                shared.table(&name)?.create_statement(),
            )),
            Statement::ShowJobs => execute::ddl::show_jobs(shared),
            Statement::ShowSettings => execute::ddl::show_settings(shared),
            Statement::Set { key, value } => {
                shared
                    .settings
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .set(&key, &value)?;
                shared.settings_changed();
                let shown = magnetar_sql::options::shown_value(&key, &value);
                Ok(StatementOutput::Done(format!("Set '{key}' = '{shown}'.")))
            }
            Statement::Reset { key } => {
                shared
                    .settings
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .reset(key.as_deref())?;
                shared.settings_changed();
                Ok(StatementOutput::Done(match key {
                    Some(k) => format!("Reset '{k}'."),
                    None => "Reset all settings.".into(),
                }))
            }
            Statement::StopJob { id } => {
                let info = self.stop_job(&id).await?;
                Ok(StatementOutput::Done(format!(
                    "Job {} {}.",
                    info.id,
                    info.state.name().to_ascii_lowercase()
                )))
            }
            Statement::Explain(inner) => execute::explain::explain(shared, *inner).await,
            Statement::Query(q) => Ok(StatementOutput::Query(
                execute::query::run_query(shared, *q).await?,
            )),
            Statement::Insert(_) | Statement::StatementSet(_) => {
                // Boxed: starting a job is a deep future; keep it off the caller's stack.
                let job = match statement {
                    Statement::Insert(insert) => {
                        Box::pin(execute::insert::start_insert(shared, *insert, text)).await?
                    }
                    Statement::StatementSet(inserts) => {
                        Box::pin(execute::insert::start_statement_set(shared, inserts, text))
                            .await?
                    }
                    _ => return Err(EngineError::Internal("not an INSERT".into())),
                };
                if shared.settings().dml_sync() {
                    let done = self.wait_for_job(&job.id).await?;
                    if let JobState::Failed(e) = &done.state {
                        return Err(EngineError::Pipeline(format!(
                            "job {} failed: {e}",
                            done.id
                        )));
                    }
                    return Ok(StatementOutput::JobStarted(Box::new(done)));
                }
                Ok(StatementOutput::JobStarted(Box::new(job)))
            }
        }
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Vec<JobInfo> {
        self.shared.jobs.all().iter().map(|j| j.info()).collect()
    }

    /// Stops a job (by id, id prefix or name): its sources stop reading, what was read is
    /// written and acknowledged, then it ends. Waits for that.
    pub async fn stop_job(&self, id: &str) -> Result<JobInfo> {
        let job = self.shared.jobs.find(id)?;
        if !job.state().is_terminal() {
            job.set_state(JobState::Stopping);
            job.stop.send_replace(true);
            job.wait().await;
        }
        Ok(job.info())
    }

    /// Ends a running job at once, as a crash of the process would: no last barrier, no
    /// final checkpoint, output not flushed. For tests of recovery: running its statement
    /// again under the same `pipeline.name` restores it from its latest checkpoint.
    pub async fn abort_job(&self, id: &str) -> Result<JobInfo> {
        let job = self.shared.jobs.find(id)?;
        if !job.state().is_terminal() {
            job.abort.send_replace(true);
            job.wait().await;
        }
        Ok(job.info())
    }

    /// Waits until a job (by id, id prefix or name) has ended, and returns it.
    pub async fn wait_for_job(&self, id: &str) -> Result<JobInfo> {
        let job = self.shared.jobs.find(id)?;
        job.wait().await;
        Ok(job.info())
    }

    /// Waits until every job has ended, and returns them.
    pub async fn wait_for_jobs(&self) -> Vec<JobInfo> {
        for job in self.shared.jobs.all() {
            job.wait().await;
        }
        self.jobs()
    }

    /// Waits until every job has processed the rows available to it and written its
    /// results: rows of memory tables and files, what Pulsar consumers have received so far.
    /// Idle partitions release the watermark first (by the engine's clock), so with a
    /// manual clock the results are deterministic. Bounded jobs are waited for. A custom
    /// source's rows count once its task has handed them over: settling does not wait for
    /// a `next_batch` still running.
    pub async fn settle(&self) -> Result<()> {
        // A job's output may be another job's input: settle until nothing new is written.
        const MAX_ROUNDS: usize = 64;
        let memory = self.shared.clients.memory();
        for _ in 0..MAX_ROUNDS {
            let before = (memory.appended(), self.written());
            for job in self.shared.jobs.all() {
                if !job.state().is_terminal() {
                    job.settle().await;
                }
            }
            if (memory.appended(), self.written()) == before {
                return Ok(());
            }
        }
        Err(EngineError::Internal(format!(
            "jobs kept writing to each other's inputs after {MAX_ROUNDS} settle rounds"
        )))
    }

    fn written(&self) -> u64 {
        self.jobs().iter().map(|j| j.messages_written).sum()
    }

    /// Stops every running job and waits for them.
    pub async fn shutdown(&self) {
        for job in self.shared.jobs.all() {
            if !job.state().is_terminal() {
                job.set_state(JobState::Stopping);
                job.stop.send_replace(true);
            }
        }
        self.wait_for_jobs().await;
    }

    /// Registers a scalar function (DataFusion's [`ScalarUDF`]) under its name: queries and
    /// jobs call it as they call built-in functions.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use futures::StreamExt;
    /// use magnetar::arrow::array::{Array, Float64Array, AsArray};
    /// use magnetar::arrow::datatypes::{DataType, Float64Type};
    /// use magnetar::{Engine, EngineConfig};
    /// use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    ///
    /// let engine = Engine::new(EngineConfig::default());
    /// engine.register_udf(create_udf(
    ///     "fahrenheit",
    ///     vec![DataType::Float64],
    ///     DataType::Float64,
    ///     Volatility::Immutable,
    ///     Arc::new(|args: &[ColumnarValue]| {
    ///         let arrays = ColumnarValue::values_to_arrays(args)?;
    ///         let celsius = arrays[0].as_primitive::<Float64Type>();
    ///         let out: Float64Array = celsius.unary(|c| c * 9.0 / 5.0 + 32.0);
    ///         Ok(ColumnarValue::Array(Arc::new(out)))
    ///     }),
    /// ));
    /// engine.execute("SET 'table.dml-sync' = 'true';
    ///   CREATE TABLE readings (celsius DOUBLE) WITH (
    ///     'connector' = 'memory', 'scan.bounded' = 'true');
    ///   INSERT INTO readings VALUES (100.0), (-40.0)").await?;
    /// // Rows of a memory table may also come from Rust: a custom source.
    /// # let schema = engine.table("readings")?.schema.clone();
    /// # let more = magnetar::arrow::record_batch::RecordBatch::try_new(schema,
    /// #     vec![Arc::new(Float64Array::from(vec![37.0]))])?;
    /// engine.append("readings", &more)?;
    /// let batches: Vec<_> = engine
    ///     .query("SELECT fahrenheit(celsius) AS f FROM readings")
    ///     .await?
    ///     .collect()
    ///     .await;
    /// let mut f: Vec<f64> = Vec::new();
    /// for batch in batches {
    ///     f.extend(batch?.column(0).as_primitive::<Float64Type>().values().iter());
    /// }
    /// f.sort_by(f64::total_cmp);
    /// assert_eq!(f, [-40.0, 98.6, 212.0]);
    /// # Ok(()) }
    /// ```
    pub fn register_udf(&self, udf: datafusion::logical_expr::ScalarUDF) {
        self.shared.ctx.register_udf(udf);
    }

    /// Registers an aggregate function (DataFusion's [`AggregateUDF`]) under its name:
    /// `GROUP BY` and window aggregates use it as they use built-in aggregates. Its
    /// accumulator's state must merge (`merge_batch`) for HOP and CUMULATE windows, which
    /// combine partial aggregates of slices.
    ///
    /// [`AggregateUDF`]: datafusion::logical_expr::AggregateUDF
    pub fn register_udaf(&self, udaf: datafusion::logical_expr::AggregateUDF) {
        self.shared.ctx.register_udaf(udaf);
    }

    /// Appends rows to a `memory` table from Rust, making it a custom source: queries and
    /// jobs reading the table see them as they see a topic's messages (watermarks, the
    /// bad-message policy). `batch` has the table's writable columns.
    pub fn append(&self, table: &str, batch: &RecordBatch) -> Result<()> {
        let def = self.shared.table(table)?;
        let mut writer = crate::sinks::MemorySinkWriter::open(
            &def,
            &self.shared.clients.memory(),
            Arc::new(crate::sinks::SinkMetrics::default()),
        )?;
        writer.write(batch)
    }

    /// Registers a connector written in Rust: `CREATE TABLE ... WITH ('connector' =
    /// '<its name>', ...)` then reads it with its [`CustomSource`] and writes it with its
    /// [`CustomSink`], in queries and jobs like any table. Fails when the name is a built-in
    /// connector's or taken.
    ///
    /// [`CustomSource`]: crate::custom::CustomSource
    /// [`CustomSink`]: crate::custom::CustomSink
    pub fn register_connector(
        &self,
        connector: Arc<dyn crate::custom::CustomConnector>,
    ) -> Result<()> {
        self.shared.clients.custom().register(connector)
    }

    /// The session's settings as they are now (`SET` changes them).
    pub fn settings(&self) -> Settings {
        self.shared.settings()
    }

    /// Sets a session setting, as `SET 'key' = 'value'` does.
    pub fn set(&self, key: &str, value: &str) -> Result<()> {
        self.shared
            .settings
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .set(key, value)?;
        self.shared.settings_changed();
        Ok(())
    }

    /// Names of the tables, sorted.
    pub fn table_names(&self) -> Vec<String> {
        self.shared
            .tables
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// A table's definition.
    pub fn table(&self, name: &str) -> Result<Arc<TableDef>> {
        self.shared.table(name)
    }

    /// Names of the views, sorted.
    pub fn view_names(&self) -> Vec<String> {
        self.shared
            .views
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// A view's definition.
    pub fn view(&self, name: &str) -> Result<Arc<ViewDef>> {
        execute::views::view(&self.shared, name)
    }

    pub(crate) fn register(shared: &Shared, table: Arc<TableDef>) -> Result<()> {
        let provider = Arc::new(MagnetarTable::new(table.clone(), shared.scan_factory()));
        shared.ctx.deregister_table(table.name.as_str())?;
        shared.ctx.register_table(table.name.as_str(), provider)?;
        Ok(())
    }
}
