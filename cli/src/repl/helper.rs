//! The line editor's helper: where a statement ends, completion, highlighting.

use std::borrow::Cow;

use magnetar::Engine;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::commands::is_command;
use super::completion::{Catalog, complete};
use super::highlight::highlight;

/// Reads the engine's tables and settings for completion; colours input when `colours`.
pub struct SqlHelper {
    engine: Engine,
    colours: bool,
}

impl SqlHelper {
    /// A helper over `engine`'s catalog.
    pub fn new(engine: Engine, colours: bool) -> SqlHelper {
        SqlHelper { engine, colours }
    }

    fn catalog(&self) -> Catalog {
        let tables = self
            .engine
            .table_names()
            .into_iter()
            .map(|name| {
                let columns = self
                    .engine
                    .table(&name)
                    .map(|t| t.columns.iter().map(|c| c.field.name().clone()).collect())
                    .unwrap_or_default();
                (name, columns)
            })
            .chain(self.engine.view_names().into_iter().map(|name| {
                let columns = self
                    .engine
                    .view(&name)
                    .map(|v| v.schema.fields().iter().map(|f| f.name().clone()).collect())
                    .unwrap_or_default();
                (name, columns)
            }))
            .collect();
        let settings = magnetar::settings::SETTINGS
            .iter()
            .map(|s| (s.key, s.values))
            .collect();
        Catalog { tables, settings }
    }
}

impl Helper for SqlHelper {}

impl Completer for SqlHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, items) = complete(line, pos, &self.catalog());
        Ok((
            start,
            items
                .into_iter()
                .map(|c| Pair {
                    display: c.display,
                    replacement: c.replacement,
                })
                .collect(),
        ))
    }
}

impl Hinter for SqlHelper {
    type Hint = String;
}

impl Highlighter for SqlHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if self.colours {
            highlight(line)
        } else {
            Cow::Borrowed(line)
        }
    }

    fn highlight_char(&self, _line: &str, _pos: usize, kind: CmdKind) -> bool {
        self.colours && kind != CmdKind::MoveCursor
    }
}

impl Validator for SqlHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        let input = ctx.input();
        if input.trim().is_empty() || is_command(input) || magnetar::sql::ends_statement(input) {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}
