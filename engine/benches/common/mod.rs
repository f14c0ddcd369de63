//! What the engine's benchmarks share: reading their command-line options, and running one
//! case in a child process of its own (so that its peak RSS is its own).

use std::path::Path;
use std::process::Command;

/// The value after `name` in `args` (`--events 1000`), parsed; `None` when not given.
pub fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<T>, String> {
    let Some(i) = args.iter().position(|a| a == name) else {
        return Ok(None);
    };
    let text = args
        .get(i + 1)
        .ok_or_else(|| format!("{name} needs a value"))?;
    text.parse()
        .map(Some)
        .map_err(|_| format!("{name}: cannot read '{text}'"))
}

/// CPU seconds (user + system, all threads) and peak RSS (KiB) of this process, from
/// Linux's `/proc/self/stat` (in USER_HZ ticks, 100 per second) and `/proc/self/status`.
#[allow(dead_code)] // not every bench measures itself
pub fn usage() -> (f64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let cpu = (ticks(11) + ticks(12)) as f64 / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (cpu, rss_kb)
}

/// Runs one case in a child process: `[rows, wall_s, cpu_s, rss_kb]`.
#[allow(dead_code)] // not every bench runs cases in child processes
pub fn run_child(
    exe: &Path,
    case: &str,
    file: &Path,
    parallelism: usize,
) -> Result<[f64; 4], Box<dyn std::error::Error>> {
    let out = Command::new(exe)
        .args([
            "--case",
            case,
            "--file",
            &file.to_string_lossy(),
            "--parallelism",
            &parallelism.to_string(),
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "case {case} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<f64> = line
        .split_whitespace()
        .map(|f| f.parse::<f64>())
        .collect::<Result<_, _>>()?;
    match fields[..] {
        [rows, wall, cpu, rss_kb] => Ok([rows, wall, cpu, rss_kb]),
        _ => Err(format!("case {case} printed {line}").into()),
    }
}
