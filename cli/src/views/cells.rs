//! Values as display text, and fitting them into a fixed width.

use arrow::record_batch::RecordBatch;

/// Column `i` of `batch` as display strings (NULL for nulls).
pub fn column_cells(batch: &RecordBatch, i: usize) -> Vec<String> {
    let options = arrow::util::display::FormatOptions::default().with_null("NULL");
    match arrow::util::display::ArrayFormatter::try_new(batch.column(i).as_ref(), &options) {
        Ok(f) => (0..batch.num_rows())
            .map(|r| f.value(r).to_string())
            .collect(),
        Err(_) => vec![String::from("?"); batch.num_rows()],
    }
}

/// Every row of `batch` as display strings.
pub fn rows(batch: &RecordBatch) -> Vec<Vec<String>> {
    let columns: Vec<Vec<String>> = (0..batch.num_columns())
        .map(|i| column_cells(batch, i))
        .collect();
    (0..batch.num_rows())
        .map(|r| columns.iter().map(|c| c[r].clone()).collect())
        .collect()
}

/// A fixed-width text grid: `+---+` borders and `| a |` lines.
#[derive(Clone, Debug)]
pub struct Grid {
    /// Column widths, in characters.
    pub widths: Vec<usize>,
}

impl Grid {
    /// Widths that fit `names` and `rows`, each at most `max_width` (and at least 4).
    pub fn fitting(names: &[String], rows: &[Vec<String>], max_width: usize) -> Grid {
        let widths = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                rows.iter()
                    .filter_map(|r| r.get(i))
                    .map(|v| v.chars().count())
                    .chain([name.chars().count(), 4])
                    .max()
                    .unwrap_or(4)
                    .min(max_width.max(4))
            })
            .collect();
        Grid { widths }
    }

    /// `+------+----+`
    pub fn border(&self) -> String {
        let mut s = String::from("+");
        for w in &self.widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s
    }

    /// `| a    | bc |`, cutting long values with an ellipsis.
    pub fn line(&self, values: &[String]) -> String {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_and_short_ones_padded() {
        let names = vec!["name".to_string(), "n".to_string()];
        let rows = vec![vec!["a-very-long-value".to_string(), "7".to_string()]];
        let grid = Grid::fitting(&names, &rows, 8);
        assert_eq!(grid.widths, vec![8, 4]);
        assert_eq!(grid.line(&rows[0]), "| a-very-… | 7    |");
        assert_eq!(grid.border(), "+----------+------+");
    }
}
