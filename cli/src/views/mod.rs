//! How a query's rows are shown: one table for a bounded result, and for a continuous one
//! the view `sql-client.execution.result-mode` picks (`table`, `tableau`, `changelog`), or
//! plain CSV / JSON lines.

mod cells;
mod changelog;
mod live_table;
mod tableau;

use std::io::IsTerminal;

use anyhow::Result;
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use magnetar::QueryStream;
use magnetar::settings::Settings;

use crate::args::OutputFormat;
use crate::backfill_bar::BackfillBar;
use crate::render::print_batches;

pub use changelog::Changelog;
pub use live_table::LiveTable;
pub use tableau::Tableau;

/// The shell's result modes (Flink's `sql-client.execution.result-mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultMode {
    /// A live table, updated in place.
    Table,
    /// Rows appended as they arrive.
    Tableau,
    /// Rows appended with their change kind.
    Changelog,
}

/// Everything that decides how rows are printed.
#[derive(Clone, Copy, Debug)]
pub struct ViewOptions {
    /// Output format (`--format`).
    pub format: OutputFormat,
    /// Result mode, for the `table` format.
    pub mode: ResultMode,
    /// Most rows the live table keeps.
    pub max_rows: usize,
    /// Widest a streamed column gets.
    pub max_width: usize,
    /// Whether standard output is a terminal (the live table needs one).
    pub terminal: bool,
}

impl ViewOptions {
    /// Reads the session's `sql-client.*` settings.
    pub fn from_settings(settings: &Settings, format: OutputFormat) -> ViewOptions {
        let number = |key: &str, default: usize| {
            settings
                .get(key)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        let mode = match settings
            .get("sql-client.execution.result-mode")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("tableau") => ResultMode::Tableau,
            Some("changelog") => ResultMode::Changelog,
            _ => ResultMode::Table,
        };
        ViewOptions {
            format,
            mode,
            max_rows: number("sql-client.execution.max-table-result.rows", 10_000),
            max_width: number("sql-client.display.max-column-width", 40),
            terminal: std::io::stdout().is_terminal(),
        }
    }
}

/// Prints a query's rows as `options` say, with a backfill progress bar while the query
/// reads tiered storage and a summary line of where its input came from. Returns the row
/// count.
pub async fn print_query(stream: QueryStream, options: &ViewOptions) -> Result<usize> {
    let stats = stream.stats_handle();
    let bar = BackfillBar::start(stats.clone());
    let rows = print_rows(stream, options).await;
    drop(bar);
    let read = stats.get();
    if read.from_tiered_storage > 0 {
        eprintln!(
            "read {} message(s) from tiered storage ({} ledger(s), {} bytes), {} from the broker",
            read.from_tiered_storage,
            read.backfill.ledgers_done,
            read.backfill.bytes_read,
            read.from_broker()
        );
    }
    rows
}

async fn print_rows(mut stream: QueryStream, options: &ViewOptions) -> Result<usize> {
    let format = options.format;
    if format == OutputFormat::Table && stream.is_bounded() && options.mode != ResultMode::Changelog
    {
        let mut batches = Vec::new();
        while let Some(batch) = stream.next().await {
            batches.push(batch?);
        }
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        if batches.is_empty() {
            batches.push(RecordBatch::new_empty(stream.schema()));
        }
        print_batches(&batches, format, true)?;
        eprintln!("{rows} row(s)");
        return Ok(rows);
    }
    if format == OutputFormat::Table {
        let rows = match options.mode {
            ResultMode::Table if options.terminal => {
                LiveTable::new(stream.schema(), options).run(stream).await?
            }
            ResultMode::Changelog => {
                let view = Changelog::new(stream.schema(), options.max_width);
                append(stream, view).await?
            }
            // Without a terminal the live table cannot redraw: rows are appended instead.
            ResultMode::Table | ResultMode::Tableau => {
                let view = Tableau::new(stream.schema(), options.max_width);
                append(stream, view).await?
            }
        };
        eprintln!("{rows} row(s)");
        return Ok(rows);
    }
    let mut rows = 0;
    let mut header_printed = false;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows();
        print_batches(&[batch], format, !header_printed)?;
        header_printed = true;
    }
    // No row arrived: CSV still shows the columns.
    if format == OutputFormat::Csv && !header_printed {
        print_batches(&[RecordBatch::new_empty(stream.schema())], format, true)?;
    }
    eprintln!("{rows} row(s)");
    Ok(rows)
}

/// A view that appends rows as they arrive (`tableau`, `changelog`).
trait AppendView {
    /// Prints every row of `batch`.
    fn print_rows(&mut self, batch: &RecordBatch) -> Result<()>;
    /// Prints the end of the view.
    fn finish(self) -> Result<()>;
}

impl AppendView for Tableau {
    fn print_rows(&mut self, batch: &RecordBatch) -> Result<()> {
        Tableau::print_rows(self, batch)
    }

    fn finish(self) -> Result<()> {
        Tableau::finish(self)
    }
}

impl AppendView for Changelog {
    fn print_rows(&mut self, batch: &RecordBatch) -> Result<()> {
        Changelog::print_rows(self, batch)
    }

    fn finish(self) -> Result<()> {
        Changelog::finish(self)
    }
}

/// Appends the stream's rows to `view` until the stream ends; returns the row count.
async fn append(mut stream: QueryStream, mut view: impl AppendView) -> Result<usize> {
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows();
        view.print_rows(&batch)?;
    }
    view.finish()?;
    Ok(rows)
}
