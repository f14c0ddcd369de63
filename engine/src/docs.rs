//! Documentation the code generates: the README's option, setting and function tables. A
//! test keeps the README current; `MAGNETAR_UPDATE_README=1 cargo test -p magnetar docs`
//! rewrites it.

use magnetar_sql::options::{
    FILESYSTEM_OPTIONS, MEMORY_OPTIONS, OptionScope, OptionSpec, PULSAR_OPTIONS, options_markdown,
};
use magnetar_sql::window::window_functions_markdown;

use crate::settings::settings_markdown;
use crate::{Engine, EngineConfig};

/// Each generated README section: its marker name and its text.
pub fn generated_sections() -> Vec<(&'static str, String)> {
    vec![
        ("pulsar-options", options_markdown(PULSAR_OPTIONS)),
        (
            "filesystem-options",
            options_markdown(&source_only(FILESYSTEM_OPTIONS)),
        ),
        ("memory-options", options_markdown(MEMORY_OPTIONS)),
        ("settings", settings_markdown()),
        ("window-functions", window_functions_markdown()),
        ("aggregate-functions", aggregate_functions_markdown()),
    ]
}

/// `specs` of a connector that is only read: options shared with writable connectors apply to
/// reading alone.
fn source_only(specs: &[OptionSpec]) -> Vec<OptionSpec> {
    specs
        .iter()
        .map(|s| OptionSpec {
            scope: OptionScope::Source,
            ..*s
        })
        .collect()
}

/// The aggregate functions an engine registers, as one line of names.
fn aggregate_functions_markdown() -> String {
    let names = Engine::new(EngineConfig::default()).aggregate_function_names();
    let listed: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    format!("{}\n", listed.join(", "))
}

/// `text` with every generated section replaced by its current version.
pub fn refresh(text: &str) -> Result<String, String> {
    let mut out = text.to_string();
    for (name, body) in generated_sections() {
        let begin = format!("<!-- BEGIN GENERATED {name} -->\n");
        let end = format!("<!-- END GENERATED {name} -->");
        let start = out
            .find(&begin)
            .ok_or_else(|| format!("README has no '{}' marker", begin.trim()))?
            + begin.len();
        let stop = out[start..]
            .find(&end)
            .ok_or_else(|| format!("README has no '{end}' marker"))?
            + start;
        out.replace_range(start..stop, &body);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_tables_are_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
        let text = std::fs::read_to_string(path).expect("README.md");
        let fresh = refresh(&text).expect("markers");
        if std::env::var_os("MAGNETAR_UPDATE_README").is_some() {
            std::fs::write(path, &fresh).expect("write README.md");
            return;
        }
        assert!(
            fresh == text,
            "README.md's generated tables are out of date: run MAGNETAR_UPDATE_README=1 cargo test -p magnetar docs"
        );
    }
}
