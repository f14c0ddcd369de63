//! `magnetar -f script.sql` and `magnetar -e "..."`: run statements in order, stop at the
//! first error (exit code 1, with the statement's line and column), then keep running while
//! the jobs they started run. Ctrl-C (or SIGTERM) stops the jobs cleanly.

use anyhow::Result;
use magnetar::{Engine, JobState};

use crate::args::OutputFormat;
use crate::render::{format_statement_error, print_output};
use crate::views::ViewOptions;

/// Exit codes scripts can rely on.
pub mod exit {
    /// Everything ran; every job finished or was stopped.
    pub const OK: i32 = 0;
    /// A statement failed (nothing after it ran).
    pub const STATEMENT_FAILED: i32 = 1;
    /// A job failed.
    pub const JOB_FAILED: i32 = 2;
}

/// Runs `sql`, then waits while its jobs run; `file` names it in error messages. Returns
/// the exit code.
pub async fn run_script(
    engine: &Engine,
    sql: &str,
    file: Option<&str>,
    format: OutputFormat,
) -> Result<i32> {
    let code = run_statements(engine, sql, file, format).await?;
    if code != exit::OK {
        return Ok(code);
    }
    wait_for_jobs(engine).await
}

/// Runs the statements of `sql` in order; stops at the first error.
pub async fn run_statements(
    engine: &Engine,
    sql: &str,
    file: Option<&str>,
    format: OutputFormat,
) -> Result<i32> {
    let statements = match magnetar::sql::split_statements(sql) {
        Ok(s) => s,
        Err(e) => {
            let location = e.location().unwrap_or(magnetar::sql::Location::START);
            let place = file
                .map(|f| format!("{f}:{}:{}", location.line, location.column))
                .unwrap_or_else(|| location.to_string());
            eprintln!("Error at {place}: {e}");
            return Ok(exit::STATEMENT_FAILED);
        }
    };
    for statement in &statements {
        // Settings (the result mode, column width) may change between statements.
        let view = ViewOptions::from_settings(&engine.settings(), format);
        let output = tokio::select! {
            output = engine.execute_statement(statement) => output,
            _ = shutdown_signal() => {
                eprintln!("Interrupted; stopping jobs.");
                engine.shutdown().await;
                return Ok(exit::STATEMENT_FAILED);
            }
        };
        match output {
            Ok(output) => {
                let printed = tokio::select! {
                    printed = print_output(output, &view) => printed,
                    _ = shutdown_signal() => {
                        eprintln!("Interrupted; stopping jobs.");
                        engine.shutdown().await;
                        return Ok(exit::STATEMENT_FAILED);
                    }
                };
                if let Err(e) = printed {
                    eprintln!("Error at {}: {e}", place(file, statement.start));
                    engine.shutdown().await;
                    return Ok(exit::STATEMENT_FAILED);
                }
            }
            Err(e) => {
                eprintln!("{}", format_statement_error(&e, file));
                engine.shutdown().await;
                return Ok(exit::STATEMENT_FAILED);
            }
        }
    }
    Ok(exit::OK)
}

fn place(file: Option<&str>, location: magnetar::sql::Location) -> String {
    match file {
        Some(f) => format!("{f}:{}:{}", location.line, location.column),
        None => location.to_string(),
    }
}

/// Waits while jobs run; Ctrl-C or SIGTERM stops them cleanly.
pub async fn wait_for_jobs(engine: &Engine) -> Result<i32> {
    let running = engine
        .jobs()
        .iter()
        .filter(|j| !j.state.is_terminal())
        .count();
    if running > 0 {
        eprintln!("{running} job(s) running; Ctrl-C stops them cleanly.");
        tokio::select! {
            _ = engine.wait_for_jobs() => {}
            _ = shutdown_signal() => {
                eprintln!("Stopping jobs...");
                engine.shutdown().await;
            }
        }
    }
    let mut code = exit::OK;
    for job in engine.jobs() {
        match &job.state {
            JobState::Failed(e) => {
                eprintln!("Job {} failed: {e}", job.id);
                code = exit::JOB_FAILED;
            }
            state => eprintln!(
                "Job {} {}: read {} message(s), wrote {}{}{}{}{}.",
                job.id,
                state.name().to_ascii_lowercase(),
                job.messages_read,
                job.messages_written,
                if job.restarts > 0 {
                    format!(", restarted {} time(s) from a checkpoint", job.restarts)
                } else {
                    String::new()
                },
                if job.replays_dropped > 0 {
                    format!(
                        ", dropped {} re-emitted result(s) already written",
                        job.replays_dropped
                    )
                } else {
                    String::new()
                },
                if job.messages_skipped > 0 {
                    format!(", skipped {} bad one(s)", job.messages_skipped)
                } else {
                    String::new()
                },
                if job.late_rows > 0 {
                    format!(", dropped {} late row(s)", job.late_rows)
                } else {
                    String::new()
                }
            ),
        }
    }
    Ok(code)
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
