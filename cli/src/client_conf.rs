//! Pulsar's own client configuration (`conf/client.conf`, Java properties) and
//! `--auth-token-file`, as defaults for the tables of this session.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// `client.conf` keys and the session settings they set.
const MAPPED: &[(&str, &str)] = &[
    ("authPlugin", "pulsar.client.authPluginClassName"),
    ("authParams", "pulsar.client.authParams"),
    (
        "tlsTrustCertsFilePath",
        "pulsar.client.tlsTrustCertsFilePath",
    ),
    (
        "tlsEnableHostnameVerification",
        "pulsar.client.tlsHostnameVerificationEnable",
    ),
];

/// Keys that mean nothing here: the admin URL of `pulsar-admin`, and `useTls`, which the
/// service URL's scheme (`pulsar+ssl://`) already says.
const IGNORED: &[&str] = &["webServiceUrl", "useTls"];

/// What a `client.conf` sets: the service URL, and session settings.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ClientConf {
    /// `brokerServiceUrl`.
    pub service_url: Option<String>,
    /// Session settings, `(key, value)`.
    pub settings: Vec<(String, String)>,
}

/// Reads `path` as a Java properties file. Keys Magnetar cannot honour are errors naming the
/// file, the line and the key, never silently dropped.
pub fn read(path: &Path) -> Result<ClientConf> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&text).with_context(|| format!("in {}", path.display()))
}

fn parse(text: &str) -> Result<ClientConf> {
    let mut conf = ClientConf::default();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((key, value)) = line.split_once(['=', ':']) else {
            bail!("line {}: expected key=value", number + 1);
        };
        let (key, value) = (key.trim(), value.trim());
        if value.is_empty() || IGNORED.contains(&key) {
            continue;
        }
        if key == "brokerServiceUrl" {
            conf.service_url = Some(value.to_string());
        } else if let Some((_, setting)) = MAPPED.iter().find(|(k, _)| *k == key) {
            conf.settings.push((setting.to_string(), value.to_string()));
        } else if key == "tlsAllowInsecureConnection" && value.eq_ignore_ascii_case("false") {
            // The default.
        } else {
            bail!(
                "line {}: '{key}' is not used by Magnetar; remove it (used: brokerServiceUrl, {})",
                number + 1,
                MAPPED
                    .iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(conf)
}

/// The settings `--auth-token-file` stands for: Pulsar's token plugin reading that file at
/// every connect.
pub fn token_file_settings(path: &Path) -> Result<Vec<(String, String)>> {
    let absolute =
        std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
    if !absolute.is_file() {
        bail!("--auth-token-file: {} is not a file", absolute.display());
    }
    Ok(vec![
        (
            "pulsar.client.authPluginClassName".into(),
            "org.apache.pulsar.client.impl.auth.AuthenticationToken".into(),
        ),
        (
            "pulsar.client.authParams".into(),
            format!("file://{}", absolute.display()),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_conf_keys_become_settings_and_unknown_keys_are_errors() {
        let conf = parse(
            "# a comment\nwebServiceUrl=https://broker:8443/\nbrokerServiceUrl=pulsar+ssl://broker:6651/\n\
             authPlugin=org.apache.pulsar.client.impl.auth.AuthenticationToken\n\
             authParams=file:///t\nuseTls=true\ntlsAllowInsecureConnection=false\n\
             tlsEnableHostnameVerification=true\ntlsTrustCertsFilePath=/ca.pem\n",
        )
        .expect("parses");
        assert_eq!(
            conf.service_url.as_deref(),
            Some("pulsar+ssl://broker:6651/")
        );
        assert_eq!(conf.settings.len(), 4);
        let err = parse("brokerServiceUrl=pulsar://b:6650\ntlsAllowInsecureConnection=true\n")
            .expect_err("not honoured");
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = parse("memoryLimitBytes=10\n").expect_err("unknown");
        assert!(err.to_string().contains("'memoryLimitBytes'"), "{err}");
    }
}
