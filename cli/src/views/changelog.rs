//! `changelog`: rows appended with their change kind in an `op` column (Flink's changelog
//! mode). Magnetar's continuous queries emit final results — a window's row when it closes
//! — so every row is an insertion, `+I`; `-U`/`+U`/`-D` would mark updates and deletions.

use anyhow::Result;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::cells::rows;
use super::tableau::Tableau;

/// A tableau with a leading `op` column.
pub struct Changelog {
    tableau: Tableau,
}

/// The change kind of an inserted row.
const INSERT: &str = "+I";

impl Changelog {
    /// A view of `schema`'s columns plus `op`.
    pub fn new(schema: SchemaRef, max_width: usize) -> Changelog {
        let mut fields = vec![arrow::datatypes::Field::new(
            "op",
            arrow::datatypes::DataType::Utf8,
            false,
        )];
        fields.extend(schema.fields().iter().map(|f| f.as_ref().clone()));
        let with_op = std::sync::Arc::new(arrow::datatypes::Schema::new(fields));
        Changelog {
            tableau: Tableau::new(with_op, max_width),
        }
    }

    /// Prints every row of `batch` as an insertion.
    pub fn print_rows(&mut self, batch: &RecordBatch) -> Result<()> {
        let lines = rows(batch)
            .into_iter()
            .map(|row| std::iter::once(INSERT.to_string()).chain(row).collect())
            .collect();
        self.tableau.print_lines(lines)
    }

    /// Prints the bottom border.
    pub fn finish(self) -> Result<()> {
        self.tableau.finish()
    }
}
