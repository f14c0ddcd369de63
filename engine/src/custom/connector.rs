//! The traits a Rust connector implements.

use std::collections::BTreeMap;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use magnetar_sql::options::OptionSpec;

/// The error a connector returns: anything that describes itself.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a connector is told about the table it opens.
#[derive(Clone, Debug)]
pub struct TableContext {
    /// The table's name.
    pub table: String,
    /// The table's columns: a source's batches have them in this order; a sink's input has them.
    pub schema: SchemaRef,
    /// The `WITH` options (validated against [`CustomConnector::options`]), with the
    /// defaults of keys not given; without `connector`.
    pub options: BTreeMap<String, String>,
    /// For a source of a job restored from a checkpoint: the position its source had
    /// reported ([`CustomSource::position`]) when the checkpoint was taken.
    pub resume: Option<String>,
}

/// A connector: its name, the `WITH` keys its tables take, and how to open their sources
/// and sinks. A connector that cannot read (or write) keeps the default method, which
/// says so.
#[async_trait]
pub trait CustomConnector: Send + Sync + 'static {
    /// The name tables give in `'connector' = '...'`.
    fn name(&self) -> &str;

    /// The connector's own `WITH` keys; others are rejected naming the nearest one. The
    /// event-time keys (`scan.watermark.emit.strategy`, `source.idle-timeout`) are always
    /// accepted.
    fn options(&self) -> Vec<OptionSpec> {
        Vec::new()
    }

    /// Whether reads end by themselves. Bounded tables are read by batch queries (any SQL);
    /// unbounded ones by continuous queries and jobs.
    fn is_bounded(&self) -> bool {
        false
    }

    /// Opens a reader of a table.
    async fn open_source(&self, table: TableContext) -> Result<Box<dyn CustomSource>, BoxError> {
        Err(format!(
            "the {} connector cannot be read (table '{}')",
            self.name(),
            table.table
        )
        .into())
    }

    /// Opens a writer of a table (the target of `INSERT INTO`).
    async fn open_sink(&self, table: TableContext) -> Result<Box<dyn CustomSink>, BoxError> {
        Err(format!(
            "the {} connector cannot be written (table '{}')",
            self.name(),
            table.table
        )
        .into())
    }
}

/// A reader of one table. The engine runs it in a task of its own: `next_batch` is never
/// cancelled half-way, except when the read is closed.
#[async_trait]
pub trait CustomSource: Send + 'static {
    /// The next rows, with the table's columns (by position; types are cast where Arrow
    /// can); `Ok(None)` ends the read. Waiting for rows is fine: the engine goes on with
    /// barriers and watermarks meanwhile.
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>, BoxError>;

    /// Where the source stands after the rows returned so far. A checkpointed job records
    /// it and hands it back in [`TableContext::resume`] when it is restored.
    fn position(&self) -> Option<String> {
        None
    }

    /// Everything up to `position` (as [`Self::position`] said then) is processed durably:
    /// written by the job's sink, or delivered to the query's caller. Called between
    /// `next_batch` calls, in order, never for the same rows twice.
    async fn commit(&mut self, position: Option<&str>) -> Result<(), BoxError> {
        let _ = position;
        Ok(())
    }

    /// Releases what the source holds; the last commit has been made.
    async fn close(self: Box<Self>) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A writer of one table. Delivery is at-least-once: rows written since the last
/// checkpoint are written again when a job is restored from it.
#[async_trait]
pub trait CustomSink: Send + 'static {
    /// Writes (or buffers) rows with the table's columns.
    async fn write(&mut self, batch: &RecordBatch) -> Result<(), BoxError>;

    /// Makes everything written so far durable: at every checkpoint barrier, and before
    /// the job's sources acknowledge their input.
    async fn flush(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Releases the writer at the end of the job, after a last [`Self::flush`].
    async fn close(self: Box<Self>) -> Result<(), BoxError> {
        Ok(())
    }
}
