//! Magnetar's statements: the ones DataFusion plans (queries, INSERT), and our own.

use datafusion::arrow::datatypes::DataType;
use datafusion::sql::sqlparser::ast;

use crate::error::Location;

/// A parsed statement.
#[derive(Debug, Clone)]
pub enum Statement {
    /// `CREATE TABLE ... WITH (...)`.
    CreateTable(Box<CreateTable>),
    /// `DROP TABLE [IF EXISTS] name`.
    DropTable {
        /// Table name.
        name: String,
        /// Whether a missing table is fine.
        if_exists: bool,
    },
    /// `CREATE [TEMPORARY] VIEW name [(columns)] AS query`.
    CreateView(Box<CreateView>),
    /// `DROP [TEMPORARY] VIEW [IF EXISTS] name`.
    DropView {
        /// View name.
        name: String,
        /// Whether a missing view is fine.
        if_exists: bool,
    },
    /// `SHOW TABLES`.
    ShowTables,
    /// `SHOW VIEWS`.
    ShowViews,
    /// `SHOW JOBS`.
    ShowJobs,
    /// `STOP JOB 'id'`.
    StopJob {
        /// Job id (or name).
        id: String,
    },
    /// `SET 'key' = 'value'`.
    Set {
        /// Setting key.
        key: String,
        /// Value.
        value: String,
    },
    /// `SET` alone, or `SHOW SET`: list settings.
    ShowSettings,
    /// `RESET 'key'`, or `RESET` for all.
    Reset {
        /// Setting key, `None` for every setting.
        key: Option<String>,
    },
    /// `DESCRIBE name`.
    Describe {
        /// Table name.
        name: String,
    },
    /// `SHOW CREATE TABLE name`.
    ShowCreateTable {
        /// Table name.
        name: String,
    },
    /// `SHOW CREATE VIEW name`.
    ShowCreateView {
        /// View name.
        name: String,
    },
    /// `EXPLAIN <query or insert>`.
    Explain(Box<Statement>),
    /// A query (`SELECT`, `WITH`, `VALUES`).
    Query(Box<ast::Statement>),
    /// `INSERT INTO table SELECT ...`.
    Insert(Box<ast::Statement>),
    /// `EXECUTE STATEMENT SET BEGIN INSERT ...; INSERT ...; END`: one job for them all.
    StatementSet(Vec<ast::Statement>),
}

/// `CREATE TABLE` as written.
#[derive(Debug, Clone)]
pub struct CreateTable {
    /// Table name (normalised: unquoted names are lower-cased).
    pub name: String,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// Columns, in order.
    pub columns: Vec<ColumnDecl>,
    /// `WATERMARK FOR col AS expr`.
    pub watermark: Option<WatermarkDecl>,
    /// `PRIMARY KEY (...) NOT ENFORCED` columns.
    pub primary_key: Vec<String>,
    /// `COMMENT '...'`.
    pub comment: Option<String>,
    /// `WITH (...)` options, in order.
    pub options: Vec<OptionEntry>,
    /// Where the statement starts.
    pub location: Location,
}

/// `CREATE VIEW` as written.
#[derive(Debug, Clone)]
pub struct CreateView {
    /// View name (normalised).
    pub name: String,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// `(a, b, ...)`: names for the query's columns (normalised), empty when not given.
    pub columns: Vec<String>,
    /// `COMMENT '...'`.
    pub comment: Option<String>,
    /// The query (an [`ast::Statement::Query`]).
    pub query: Box<ast::Statement>,
    /// The statement as written, for `SHOW CREATE VIEW`.
    pub text: String,
    /// Where the statement starts.
    pub location: Location,
}

/// One declared column.
#[derive(Debug, Clone)]
pub struct ColumnDecl {
    /// Column name (normalised).
    pub name: String,
    /// Arrow type.
    pub data_type: DataType,
    /// False when declared `NOT NULL`.
    pub nullable: bool,
    /// Physical or metadata column.
    pub kind: ColumnKind,
    /// `COMMENT '...'`.
    pub comment: Option<String>,
    /// Where the column is declared.
    pub location: Location,
}

/// Where a column's values come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnKind {
    /// From the message value (decoded by the format).
    Physical,
    /// From the message's Pulsar metadata: `METADATA [FROM 'key'] [VIRTUAL]`.
    Metadata {
        /// The metadata key (`publish_time`, `key`, ...).
        key: String,
        /// `VIRTUAL`: read-only, not written by sinks.
        is_virtual: bool,
    },
}

/// `WATERMARK FOR column AS expression`.
#[derive(Debug, Clone)]
pub struct WatermarkDecl {
    /// The event-time column.
    pub column: String,
    /// The watermark expression.
    pub expr: ast::Expr,
    /// Where it is declared.
    pub location: Location,
}

/// One `'key' = 'value'` of a `WITH` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionEntry {
    /// Key as written.
    pub key: String,
    /// Value as written.
    pub value: String,
    /// Where the key is.
    pub key_location: Option<Location>,
    /// Where the value is.
    pub value_location: Option<Location>,
}
