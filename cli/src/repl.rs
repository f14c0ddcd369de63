//! The interactive shell: multi-line statements that end with `;` (outside strings and
//! comments), persistent history, backslash commands.

use std::path::Path;

use anyhow::Result;
use magnetar::Engine;
use rustyline::error::ReadlineError;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Completer, Editor, Helper, Highlighter, Hinter};

use crate::args::OutputFormat;
use crate::render::{format_statement_error, print_output};

#[derive(Completer, Helper, Highlighter, Hinter)]
struct SqlHelper;

impl Validator for SqlHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        let input = ctx.input();
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed.starts_with('\\') || magnetar::sql::ends_statement(input) {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

const HELP: &str = "\
Statements end with ';' and may span lines.
  CREATE TABLE t (...) WITH ('connector'='pulsar', 'topics'='...', ...)
  SELECT ... FROM t ...;          rows stream until the query ends (Ctrl-C cancels)
  INSERT INTO sink SELECT ...;    starts a background job
  SHOW TABLES; DESCRIBE t; SHOW JOBS; STOP JOB 'id'; EXPLAIN SELECT ...;
  SET 'key' = 'value'; RESET 'key'; SHOW SET;
Commands: \\? help, \\q quit";

/// Runs the shell until `\q` or Ctrl-D. Returns when the user leaves.
pub fn run(
    engine: &Engine,
    runtime: &tokio::runtime::Runtime,
    history: &Path,
    format: OutputFormat,
) -> Result<()> {
    let mut editor: Editor<SqlHelper, rustyline::history::DefaultHistory> = Editor::new()?;
    editor.set_helper(Some(SqlHelper));
    let _ = editor.load_history(history);
    eprintln!(
        "Magnetar {} — streaming SQL over Pulsar. Type \\? for help, \\q to quit.",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        let line = match editor.readline("magnetar> ") {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let input = line.trim();
        if input.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(input);
        save_history(&mut editor, history);
        match input {
            "\\q" | "quit" | "exit" => break,
            "\\?" | "help" | "HELP" => {
                println!("{HELP}");
                continue;
            }
            _ => {}
        }
        let statements = match magnetar::sql::split_statements(input) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("Error: {e}");
                continue;
            }
        };
        for statement in statements {
            let result: Result<()> = runtime.block_on(async {
                tokio::select! {
                    result = async {
                        match engine.execute_statement(&statement).await {
                            Ok(output) => print_output(output, format).await,
                            Err(e) => {
                                eprintln!("{}", format_statement_error(&e, None));
                                Ok(())
                            }
                        }
                    } => result,
                    _ = tokio::signal::ctrl_c() => {
                        eprintln!("Cancelled.");
                        Ok(())
                    }
                }
            });
            if let Err(e) = result {
                eprintln!("Error: {e}");
                break;
            }
        }
    }
    let running = engine
        .jobs()
        .iter()
        .filter(|j| !j.state.is_terminal())
        .count();
    if running > 0 {
        eprintln!("Stopping {running} job(s)...");
        runtime.block_on(engine.shutdown());
    }
    Ok(())
}

fn save_history(editor: &mut Editor<SqlHelper, rustyline::history::DefaultHistory>, path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if editor.save_history(path).is_ok() {
        restrict_permissions(path);
    }
}

/// History may hold credentials typed into WITH options: owner-only.
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}
