//! Documentation the code generates: the README's option and setting tables. A test keeps
//! the README current; `MAGNETAR_UPDATE_README=1 cargo test -p magnetar docs` rewrites it.

use magnetar_sql::options::{PULSAR_OPTIONS, options_markdown};

use crate::settings::settings_markdown;

/// Each generated README section: its marker name and its text.
pub fn generated_sections() -> Vec<(&'static str, String)> {
    vec![
        ("pulsar-options", options_markdown(PULSAR_OPTIONS)),
        ("settings", settings_markdown()),
    ]
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
