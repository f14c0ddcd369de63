//! The shell's own commands (not SQL): help, quit, timing.

/// What a shell command asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `HELP`, `\?`, `\h`.
    Help,
    /// `\q`, `quit`, `exit`: leave; running jobs keep running until they end or Ctrl-C.
    Quit,
    /// `\q!`: leave and stop running jobs now.
    QuitAndStopJobs,
    /// `\timing`: toggle printing how long each statement took.
    Timing,
}

/// The command `input` is, if it is one (with or without a trailing `;`).
pub fn parse(input: &str) -> Option<Command> {
    let word = input.trim().trim_end_matches(';').trim();
    match word.to_ascii_lowercase().as_str() {
        "help" | "\\?" | "\\h" | "\\help" => Some(Command::Help),
        "\\q" | "quit" | "exit" => Some(Command::Quit),
        "\\q!" => Some(Command::QuitAndStopJobs),
        "\\timing" => Some(Command::Timing),
        _ => None,
    }
}

/// Whether `input` is a command, or starts like one (so Enter runs it without a `;`).
pub fn is_command(input: &str) -> bool {
    parse(input).is_some() || input.trim_start().starts_with('\\')
}

/// The help text.
pub const HELP: &str = "\
Statements end with ';' and may span lines. Tab completes keywords, tables, columns,
WITH option keys and values, and SET keys.
  CREATE TABLE t (...) WITH ('connector'='pulsar', 'topics'='...', ...);
  SELECT ... FROM t ...;          rows stream until the query ends; Ctrl-C cancels it
  INSERT INTO sink SELECT ...;    starts a job that runs in the background
  CREATE VIEW v AS SELECT ...;    a named query, read like a table (DROP VIEW v)
  SHOW TABLES; SHOW VIEWS; DESCRIBE t; EXPLAIN SELECT ...;
  SHOW JOBS; STOP JOB 'id';       jobs with input rate, backlog, watermark lag, state
  SET 'key' = 'value'; RESET 'key'; SHOW SET;
  SET 'sql-client.execution.result-mode' = 'table' | 'tableau' | 'changelog';
Commands:
  HELP, \\?     this help
  \\timing      print how long each statement takes (toggle)
  \\q, Ctrl-D   quit; running jobs keep running until they end (Ctrl-C stops them)
  \\q!          quit and stop running jobs now";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_with_or_without_semicolon() {
        assert_eq!(parse("help"), Some(Command::Help));
        assert_eq!(parse("HELP;"), Some(Command::Help));
        assert_eq!(parse("\\?"), Some(Command::Help));
        assert_eq!(parse(" \\q "), Some(Command::Quit));
        assert_eq!(parse("\\q!"), Some(Command::QuitAndStopJobs));
        assert_eq!(parse("\\timing"), Some(Command::Timing));
        assert_eq!(parse("SELECT 1;"), None);
        assert!(is_command("\\unknown"));
    }
}
