//! Printing statement outputs and errors.

use std::io::Write;

use anyhow::Result;
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use magnetar::{QueryStream, StatementError, StatementOutput};

use crate::backfill_bar::BackfillBar;

use crate::args::OutputFormat;

/// Prints batches in `format`; `header` says whether this is the first output of a result.
pub fn print_batches(batches: &[RecordBatch], format: OutputFormat, header: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        OutputFormat::Table => {
            if batches.iter().any(|b| b.num_rows() > 0) || header {
                writeln!(
                    out,
                    "{}",
                    arrow::util::pretty::pretty_format_batches(batches)?
                )?;
            }
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(header)
                .build(&mut out);
            for b in batches {
                writer.write(b)?;
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(&mut out);
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Prints a query's rows: a bounded result as one table; an unbounded one row by row as
/// batches arrive (a fixed-width table, like Flink's tableau mode). Returns the row count.
pub async fn print_query(stream: QueryStream, format: OutputFormat) -> Result<usize> {
    let stats = stream.stats_handle();
    let bar = BackfillBar::start(stats.clone());
    let rows = print_rows(stream, format).await;
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

async fn print_rows(mut stream: QueryStream, format: OutputFormat) -> Result<usize> {
    if format == OutputFormat::Table && stream.is_bounded() {
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
    let mut rows = 0;
    let mut tableau: Option<Tableau> = None;
    let mut header_printed = false;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows();
        match format {
            OutputFormat::Table => tableau
                .get_or_insert_with(|| Tableau::new(&batch))
                .print_rows(&batch)?,
            _ => print_batches(&[batch], format, !header_printed)?,
        }
        header_printed = true;
    }
    match tableau {
        Some(t) => t.finish()?,
        // No row arrived: still show the columns.
        None if format != OutputFormat::Json && !header_printed => {
            print_batches(&[RecordBatch::new_empty(stream.schema())], format, true)?
        }
        None => {}
    }
    eprintln!("{rows} row(s)");
    Ok(rows)
}

/// A table printed row by row: widths fixed from the column names and the first batch.
pub struct Tableau {
    widths: Vec<usize>,
}

/// The widest a streamed column gets; longer values are cut with an ellipsis.
const MAX_WIDTH: usize = 40;

impl Tableau {
    /// Prints the header for `first`'s columns.
    pub fn new(first: &RecordBatch) -> Tableau {
        let schema = first.schema();
        let widths = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let values = cells(first, i);
                values
                    .iter()
                    .map(|v| v.chars().count())
                    .chain([f.name().chars().count(), 4])
                    .max()
                    .unwrap_or(4)
                    .min(MAX_WIDTH)
            })
            .collect();
        let t = Tableau { widths };
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        println!("{}", t.border());
        println!("{}", t.line(&names));
        println!("{}", t.border());
        t
    }

    fn border(&self) -> String {
        let mut s = String::from("+");
        for w in &self.widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s
    }

    fn line(&self, values: &[String]) -> String {
        let mut s = String::from("|");
        for (v, &w) in values.iter().zip(&self.widths) {
            let count = v.chars().count();
            let cell: String = if count > w {
                v.chars().take(w.saturating_sub(1)).chain(['…']).collect()
            } else {
                format!("{v}{}", " ".repeat(w - count))
            };
            s.push_str(&format!(" {cell} |"));
        }
        s
    }

    /// Prints every row of `batch`.
    pub fn print_rows(&self, batch: &RecordBatch) -> Result<()> {
        let columns: Vec<Vec<String>> = (0..batch.num_columns()).map(|i| cells(batch, i)).collect();
        let mut out = std::io::stdout().lock();
        for row in 0..batch.num_rows() {
            let values: Vec<String> = columns.iter().map(|c| c[row].clone()).collect();
            writeln!(out, "{}", self.line(&values))?;
        }
        out.flush()?;
        Ok(())
    }

    /// Prints the bottom border.
    pub fn finish(&self) -> Result<()> {
        println!("{}", self.border());
        Ok(())
    }
}

/// Column `i` of `batch` as display strings (NULL for nulls).
fn cells(batch: &RecordBatch, i: usize) -> Vec<String> {
    let options = arrow::util::display::FormatOptions::default().with_null("NULL");
    match arrow::util::display::ArrayFormatter::try_new(batch.column(i).as_ref(), &options) {
        Ok(f) => (0..batch.num_rows())
            .map(|r| f.value(r).to_string())
            .collect(),
        Err(_) => vec![String::from("?"); batch.num_rows()],
    }
}

/// Prints one statement's output (reading query results to their end).
pub async fn print_output(output: StatementOutput, format: OutputFormat) -> Result<()> {
    match output {
        StatementOutput::Done(message) => eprintln!("{message}"),
        StatementOutput::Table(batches) => print_batches(&batches, format, true)?,
        StatementOutput::Explain(text) => println!("{text}"),
        StatementOutput::JobStarted(job) if job.state.is_terminal() => {
            eprintln!(
                "Job {} {}: wrote {} message(s) to '{}'.",
                job.id,
                job.state.name().to_ascii_lowercase(),
                job.messages_written,
                job.sink_table
            );
        }
        StatementOutput::JobStarted(job) => {
            let name = job.name.map(|n| format!(" '{n}'")).unwrap_or_default();
            let resumed = job
                .restored_from
                .map(|id| format!(" (resumed from checkpoint {id})"))
                .unwrap_or_default();
            eprintln!(
                "Job{name} {} started{resumed}, writing to '{}'. SHOW JOBS lists it; STOP JOB '{}' stops it.",
                job.id, job.sink_table, job.id
            );
        }
        StatementOutput::Query(stream) => {
            print_query(stream, format).await?;
        }
    }
    Ok(())
}

/// The error with its place: `line L, column C`, the statement line and a caret.
pub fn format_statement_error(error: &StatementError, file: Option<&str>) -> String {
    let location = error.location();
    let place = match file {
        Some(f) => format!("{f}:{}:{}", location.line, location.column),
        None => format!("line {}, column {}", location.line, location.column),
    };
    let mut text = format!("Error at {place}: {}", error.error);
    // Show the failing line of the statement with a caret under the column.
    let line_in_statement = location.line.saturating_sub(error.start.line) as usize;
    if let Some(line) = error.statement.lines().nth(line_in_statement) {
        let column = if line_in_statement == 0 {
            location.column.saturating_sub(error.start.column)
        } else {
            location.column.saturating_sub(1)
        } as usize;
        let pad: String = line
            .chars()
            .take(column)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        text.push_str(&format!("\n  {line}\n  {pad}^"));
    }
    text
}
