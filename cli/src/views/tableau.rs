//! `tableau`: rows appended as they arrive, in a table whose widths are fixed when the
//! first rows come (Flink's tableau mode).

use std::io::Write;

use anyhow::Result;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::cells::{Grid, rows};

/// A table printed row by row.
pub struct Tableau {
    names: Vec<String>,
    max_width: usize,
    grid: Option<Grid>,
}

impl Tableau {
    /// A view of `schema`'s columns; nothing is printed until rows (or the end) come.
    pub fn new(schema: SchemaRef, max_width: usize) -> Tableau {
        Tableau {
            names: schema.fields().iter().map(|f| f.name().clone()).collect(),
            max_width,
            grid: None,
        }
    }

    fn header(&mut self, first: &[Vec<String>]) -> Result<&Grid> {
        if self.grid.is_none() {
            let grid = Grid::fitting(&self.names, first, self.max_width);
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", grid.border())?;
            writeln!(out, "{}", grid.line(&self.names))?;
            writeln!(out, "{}", grid.border())?;
            self.grid = Some(grid);
        }
        Ok(self.grid.get_or_insert_with(|| Grid { widths: Vec::new() }))
    }

    /// Prints every row of `batch`.
    pub fn print_rows(&mut self, batch: &RecordBatch) -> Result<()> {
        self.print_lines(rows(batch))
    }

    /// Prints rows already turned into text.
    pub fn print_lines(&mut self, lines: Vec<Vec<String>>) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let grid = self.header(&lines)?.clone();
        let mut out = std::io::stdout().lock();
        for row in &lines {
            writeln!(out, "{}", grid.line(row))?;
        }
        out.flush()?;
        Ok(())
    }

    /// Prints the bottom border (and the header, when no row came).
    pub fn finish(mut self) -> Result<()> {
        let grid = self.header(&[])?.clone();
        println!("{}", grid.border());
        Ok(())
    }
}
