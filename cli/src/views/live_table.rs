//! `table`: a live table redrawn in place on the terminal as rows arrive — a window's rows
//! appear when it closes. It keeps the newest `sql-client.execution.max-table-result.rows`
//! rows and shows as many of them as the terminal has room for.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::Result;
use arrow::datatypes::SchemaRef;
use console::Term;
use futures::StreamExt;
use magnetar::QueryStream;

use super::ViewOptions;
use super::cells::{Grid, rows};

/// Redraws are at most this frequent (a burst of batches is drawn once).
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// Lines of the view that are not rows: three above the rows, border and status below.
const FRAME_LINES: usize = 5;

/// The live table's state.
pub struct LiveTable {
    names: Vec<String>,
    rows: VecDeque<Vec<String>>,
    total: usize,
    max_rows: usize,
    max_width: usize,
    term: Term,
    drawn_lines: usize,
}

impl LiveTable {
    /// An empty view of `schema`'s columns.
    pub fn new(schema: SchemaRef, options: &ViewOptions) -> LiveTable {
        LiveTable {
            names: schema.fields().iter().map(|f| f.name().clone()).collect(),
            rows: VecDeque::new(),
            total: 0,
            max_rows: options.max_rows.max(1),
            max_width: options.max_width,
            term: Term::stdout(),
            drawn_lines: 0,
        }
    }

    /// Shows the stream until it ends (or the caller drops this future: Ctrl-C). Returns
    /// the row count.
    pub async fn run(mut self, mut stream: QueryStream) -> Result<usize> {
        self.draw(false)?;
        let mut dirty = false;
        let mut next_draw = tokio::time::Instant::now();
        loop {
            tokio::select! {
                batch = stream.next() => match batch {
                    Some(batch) => {
                        self.push(rows(&batch?));
                        dirty = true;
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(next_draw), if dirty => {
                    self.draw(false)?;
                    dirty = false;
                    next_draw = tokio::time::Instant::now() + REDRAW_EVERY;
                }
            }
        }
        self.draw(true)?;
        Ok(self.total)
    }

    fn push(&mut self, new_rows: Vec<Vec<String>>) {
        self.total += new_rows.len();
        self.rows.extend(new_rows);
        while self.rows.len() > self.max_rows {
            self.rows.pop_front();
        }
    }

    /// Rows the terminal has room for.
    fn room(&self) -> usize {
        let (height, _) = self.term.size();
        (height as usize).saturating_sub(FRAME_LINES + 2).max(3)
    }

    fn draw(&mut self, finished: bool) -> Result<()> {
        let room = self.room();
        let shown: Vec<Vec<String>> = self
            .rows
            .iter()
            .skip(self.rows.len().saturating_sub(room))
            .cloned()
            .collect();
        let grid = Grid::fitting(&self.names, &shown, self.max_width);
        let mut lines = vec![grid.border(), grid.line(&self.names), grid.border()];
        lines.extend(shown.iter().map(|r| grid.line(r)));
        lines.push(grid.border());
        lines.push(self.status(shown.len(), finished));
        // Lines wider than the terminal would wrap and throw off the next redraw: cut them.
        let (_, width) = self.term.size();
        let lines: Vec<String> = lines
            .iter()
            .map(|l| console::truncate_str(l, width.max(10) as usize, "…").into_owned())
            .collect();
        if self.drawn_lines > 0 {
            self.term.clear_last_lines(self.drawn_lines)?;
        }
        self.term.write_line(&lines.join("\n"))?;
        self.drawn_lines = lines.len();
        Ok(())
    }

    fn status(&self, shown: usize, finished: bool) -> String {
        let mut s = format!("{} row(s)", self.total);
        if shown < self.total {
            s.push_str(&format!(", showing the newest {shown}"));
        }
        let dropped = self.total - self.rows.len();
        if dropped > 0 {
            s.push_str(&format!(
                "; row cap {} reached: {dropped} older row(s) left the view (SET 'sql-client.execution.max-table-result.rows' keeps more)",
                self.max_rows
            ));
        }
        if !finished {
            s.push_str(" · updating as results arrive · Ctrl-C stops");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(max_rows: usize) -> LiveTable {
        LiveTable {
            names: vec!["n".into()],
            rows: VecDeque::new(),
            total: 0,
            max_rows,
            max_width: 40,
            term: Term::stdout(),
            drawn_lines: 0,
        }
    }

    #[test]
    fn the_row_cap_keeps_the_newest_rows_and_says_so() {
        let mut v = view(3);
        v.push((0..5).map(|i| vec![i.to_string()]).collect());
        assert_eq!(v.total, 5);
        let kept: Vec<&str> = v.rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(kept, ["2", "3", "4"]);
        let status = v.status(3, true);
        assert!(
            status.starts_with(
                "5 row(s), showing the newest 3; row cap 3 reached: 2 older row(s) left the view"
            ),
            "{status}"
        );
    }
}
