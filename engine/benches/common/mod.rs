//! What the engine's benchmarks share: reading their command-line options.

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
