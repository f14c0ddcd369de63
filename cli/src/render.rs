//! Printing statement outputs and errors.

use std::io::Write;

use anyhow::Result;
use arrow::record_batch::RecordBatch;
use magnetar::{StatementError, StatementOutput};

use crate::args::OutputFormat;
use crate::views::{ViewOptions, print_query};

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

/// Prints one statement's output (reading query results to their end).
pub async fn print_output(output: StatementOutput, view: &ViewOptions) -> Result<()> {
    let format = view.format;
    match output {
        StatementOutput::Done(message) => eprintln!("{message}"),
        StatementOutput::Table(batches) => print_batches(&batches, format, true)?,
        StatementOutput::Explain(text) | StatementOutput::Text(text) => println!("{text}"),
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
            print_query(stream, view).await?;
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
    // The statement as shown: secret option values and URL credentials masked.
    let statement = magnetar::sql::redact::statement(&error.statement);
    if let Some(line) = statement.lines().nth(line_in_statement) {
        let column = if line_in_statement == 0 {
            location.column.saturating_sub(error.start.column)
        } else {
            location.column.saturating_sub(1)
        } as usize;
        let (shown, column) = around_column(line, column);
        let pad: String = shown
            .chars()
            .take(column)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        text.push_str(&format!("\n  {shown}\n  {pad}^"));
    }
    text
}

/// Characters of a statement line shown on each side of the error's column.
const CONTEXT_CHARS: usize = 60;

/// `line`, or for a long one the part around `column` with `...` where it is cut; and the
/// column within what is shown.
fn around_column(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= 2 * CONTEXT_CHARS + 20 {
        return (line.to_string(), column);
    }
    let start = column.saturating_sub(CONTEXT_CHARS).min(chars.len());
    let end = (column + CONTEXT_CHARS).min(chars.len());
    let mut shown = String::new();
    let mut column = column - start;
    if start > 0 {
        shown.push_str("...");
        column += 3;
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push_str("...");
    }
    (shown, column)
}

#[cfg(test)]
mod tests {
    use super::around_column;

    #[test]
    fn a_long_line_is_shown_around_the_column() {
        let line = format!("SELECT {}", vec!["1"; 5000].join(" + "));
        let (shown, column) = around_column(&line, 5000);
        assert!(
            shown.starts_with("...") && shown.ends_with("..."),
            "{shown}"
        );
        assert!(shown.chars().count() < 130);
        let original: Vec<char> = line.chars().collect();
        assert_eq!(shown.chars().nth(column), Some(original[5000]));
        // Short lines as they are; columns past the end do not panic.
        assert_eq!(around_column("SELECT 1", 3), ("SELECT 1".to_string(), 3));
        let _ = around_column(&line, 1_000_000);
    }
}
