//! The interactive shell: multi-line statements that end with `;` (outside strings,
//! quoted identifiers and comments), completion, highlighting, persistent history, result
//! views, and shell commands (`HELP`, `\timing`, `\q`).

mod commands;
mod completion;
mod helper;
mod highlight;
mod history;

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use magnetar::Engine;
use rustyline::config::{ColorMode, CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::{Editor, history::DefaultHistory};

use crate::args::OutputFormat;
use crate::render::{format_statement_error, print_output};
use crate::views::ViewOptions;
use commands::{Command, HELP};
use helper::SqlHelper;

/// Runs the shell until `\q` or Ctrl-D. Running jobs keep running after that until they
/// end or Ctrl-C stops them (`\q!` stops them at once). Returns the exit code.
pub fn run(
    engine: &Engine,
    runtime: &tokio::runtime::Runtime,
    history: &Path,
    format: OutputFormat,
) -> Result<i32> {
    let colours = std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none()
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .color_mode(if colours {
            ColorMode::Enabled
        } else {
            ColorMode::Disabled
        })
        .auto_add_history(false)
        .build();
    let mut editor: Editor<SqlHelper, DefaultHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(SqlHelper::new(engine.clone(), colours)));
    history::load(&mut editor, history);
    eprintln!(
        "Magnetar {} — streaming SQL over Pulsar. Type HELP or \\? for help, \\q to quit.",
        env!("CARGO_PKG_VERSION")
    );
    let mut timing = false;
    let mut stop_jobs = false;
    loop {
        let line = match editor.readline("magnetar> ") {
            Ok(line) => line,
            // Ctrl-C at the prompt clears the line.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let input = line.trim();
        if input.is_empty() {
            continue;
        }
        // History is a file on disk: it never holds a secret.
        let _ = editor.add_history_entry(magnetar::sql::redact::statement(input));
        history::save(&mut editor, history);
        match commands::parse(input) {
            Some(Command::Help) => {
                println!("{HELP}");
                continue;
            }
            Some(Command::Quit) => break,
            Some(Command::QuitAndStopJobs) => {
                stop_jobs = true;
                break;
            }
            Some(Command::Timing) => {
                timing = !timing;
                eprintln!("Timing is {}.", if timing { "on" } else { "off" });
                continue;
            }
            None if input.starts_with('\\') => {
                eprintln!("Unknown command {input}; \\? lists the commands.");
                continue;
            }
            None => {}
        }
        let statements = match magnetar::sql::split_statements(input) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("Error: {e}");
                continue;
            }
        };
        for statement in statements {
            let view = ViewOptions::from_settings(&engine.settings(), format);
            let started = Instant::now();
            let outcome: Result<bool> = runtime.block_on(async {
                tokio::select! {
                    result = async {
                        match engine.execute_statement(&statement).await {
                            Ok(output) => print_output(output, &view).await.map(|()| true),
                            Err(e) => {
                                eprintln!("{}", format_statement_error(&e, None));
                                Ok(false)
                            }
                        }
                    } => result,
                    // Dropping the statement's future cancels its query.
                    _ = tokio::signal::ctrl_c() => {
                        eprintln!("Cancelled.");
                        Ok(false)
                    }
                }
            });
            if timing {
                eprintln!("Time: {:.3} ms", started.elapsed().as_secs_f64() * 1000.0);
            }
            match outcome {
                Ok(true) => {}
                // The rest of the line is not run after a failed or cancelled statement.
                Ok(false) => break,
                Err(e) => {
                    eprintln!("Error: {e}");
                    break;
                }
            }
        }
    }
    let running = engine
        .jobs()
        .iter()
        .filter(|j| !j.state.is_terminal())
        .count();
    if running > 0 && stop_jobs {
        eprintln!("Stopping {running} job(s)...");
        runtime.block_on(engine.shutdown());
    }
    // Jobs run in this process: leaving waits while they run, as `magnetar -f` does.
    runtime.block_on(crate::script::wait_for_jobs(engine))
}
