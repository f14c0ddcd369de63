//! Session settings (`SET 'key' = 'value'`), with Flink's key names where Flink has one.

use std::collections::BTreeMap;
use std::time::Duration;

use magnetar_sql::options::common::{parse_duration, parse_size};

use crate::error::{EngineError, Result};

/// One declared setting.
#[derive(Clone, Copy, Debug)]
pub struct SettingSpec {
    /// The key.
    pub key: &'static str,
    /// Default value, if any.
    pub default: Option<&'static str>,
    /// One line for the docs.
    pub description: &'static str,
    /// The values it takes, when it takes one of a few (for validation and completion).
    pub values: &'static [&'static str],
}

/// Every setting the engine knows.
pub const SETTINGS: &[SettingSpec] = &[
    SettingSpec {
        key: "pulsar.service-url",
        default: None,
        description: "Broker for tables without a `service-url` option (the CLI sets it to its embedded broker when none is given).",
        values: &[],
    },
    SettingSpec {
        key: "pulsar.client.authPluginClassName",
        default: None,
        description: "Default authentication plugin of Pulsar tables created afterwards that set no `pulsar.client.*` option themselves (the CLI's `--auth-token-file` and `--pulsar-conf` set it); see the table option.",
        values: &[],
    },
    SettingSpec {
        key: "pulsar.client.authParams",
        default: None,
        description: "Default authentication parameters (with `pulsar.client.authPluginClassName`); never shown.",
        values: &[],
    },
    SettingSpec {
        key: "pulsar.client.tlsTrustCertsFilePath",
        default: None,
        description: "Default trusted CA certificates (PEM) for `pulsar+ssl://` connections of tables created afterwards.",
        values: &[],
    },
    SettingSpec {
        key: "pulsar.client.tlsHostnameVerificationEnable",
        default: None,
        description: "Default of the table option of the same name (`true` unless set).",
        values: &["true", "false"],
    },
    SettingSpec {
        key: "pipeline.name",
        default: None,
        description: "Name of the job started by the next `INSERT INTO` (shown by `SHOW JOBS`; `STOP JOB` accepts it).",
        values: &[],
    },
    SettingSpec {
        key: "parallelism.default",
        default: None,
        description: "Instances of each keyed operator (window aggregates, Top-N) of the next query or job (Flink's key); sources run at most one per partition or file split. Unset: the number of cores. Operators without a key (a global aggregate, `LIMIT`) run one instance; `EXPLAIN` shows each node's.",
        values: &[],
    },
    SettingSpec {
        key: "pipeline.max-parallelism",
        default: Some("128"),
        description: "Key groups of the next job (Flink's key and default): keys hash to key groups, key groups to instances, and state is checkpointed per key group, so a job restored at another parallelism (up to this) redistributes it. A checkpoint restores only with the same value.",
        values: &[],
    },
    SettingSpec {
        key: "execution.runtime-mode",
        default: Some("automatic"),
        description: "How a query (`SELECT`) over bounded tables runs (Flink's key): `automatic` runs it in DataFusion, except its event-time parts (windows, patterns, event-time joins), which run on the streaming runtime; `streaming` runs it all on the streaming runtime, as it would run over a stream (what the streaming runtime cannot run is refused); `batch` is `automatic`. Unbounded queries always stream. `INSERT INTO` jobs follow `automatic`.",
        values: &["automatic", "streaming", "batch"],
    },
    SettingSpec {
        key: "table.dml-sync",
        default: Some("false"),
        description: "`true`: `INSERT INTO` returns when its job has ended (Flink's key); for a bounded job, when everything is written. `false`: it returns once the job runs.",
        values: &["true", "false"],
    },
    SettingSpec {
        key: "table.exec.source.idle-timeout",
        default: None,
        description: "Idle timeout of source partitions for tables that set no `source.idle-timeout` (Flink's key): after it, a partition without data stops holding the watermark back.",
        values: &[],
    },
    SettingSpec {
        key: "execution.batch-size",
        default: Some("8192"),
        description: "Most messages decoded into one Arrow batch.",
        values: &[],
    },
    SettingSpec {
        key: "execution.checkpointing.interval",
        default: None,
        description: "How often a job started by `INSERT INTO` takes a checkpoint (Flink's key), e.g. `10 s`. Unset: no checkpoints (a crash loses window state; input is acknowledged after each flush).",
        values: &[],
    },
    SettingSpec {
        key: "execution.checkpointing.dir",
        default: None,
        description: "Where checkpoints go: a local directory, or an `object_store` URL (`file://`, `s3://`, `gs://`, `az://`, `memory://`). Unset: `checkpoints/` in the engine's data directory.",
        values: &[],
    },
    SettingSpec {
        key: "execution.checkpointing.num-retained",
        default: Some("3"),
        description: "Complete checkpoints kept per job; older ones are deleted.",
        values: &[],
    },
    SettingSpec {
        key: "execution.memory-limit",
        default: None,
        description: "Most memory the engine's queries may reserve together for sorts, joins, aggregates and windows run by DataFusion (e.g. `2 gb`); past it a statement fails with \"resources exhausted\" instead of the process running out of memory. Unset: no limit.",
        values: &[],
    },
    SettingSpec {
        key: "execution.flush-interval",
        default: Some("200 ms"),
        description: "How often a job's sink waits for the broker's confirmations, after which the input read so far is acknowledged.",
        values: &[],
    },
    SettingSpec {
        key: "sql-client.execution.result-mode",
        default: Some("table"),
        description: "How the shell shows a continuous query's rows (Flink's key): `table` keeps a live table updated in place (on a terminal; elsewhere as `tableau`), `tableau` appends rows as they arrive, `changelog` appends them with their change kind (`+I`, `-U`, `+U`, `-D`).",
        values: &["table", "tableau", "changelog"],
    },
    SettingSpec {
        key: "sql-client.execution.max-table-result.rows",
        default: Some("10000"),
        description: "Most rows the `table` view keeps (Flink's key); past it the oldest rows leave the view, with a notice.",
        values: &[],
    },
    SettingSpec {
        key: "sql-client.display.max-column-width",
        default: Some("40"),
        description: "Widest a column of a streamed result gets in the shell (Flink's key); longer values end in `…`.",
        values: &[],
    },
];

/// The prefix of the settings that are defaults for Pulsar tables' client options.
pub const CLIENT_SETTING_PREFIX: &str = "pulsar.client.";

/// Current setting values.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    values: BTreeMap<String, String>,
    /// The engine's parallelism when `parallelism.default` is not set (`None`: the cores).
    default_parallelism: Option<usize>,
}

impl Settings {
    fn spec(key: &str) -> Result<&'static SettingSpec> {
        SETTINGS
            .iter()
            .find(|s| s.key == key)
            .ok_or_else(|| EngineError::UnknownSetting {
                key: key.to_string(),
                suggestion: magnetar_sql::error::nearest(key, SETTINGS.iter().map(|s| s.key)),
            })
    }

    /// Sets `key`, validating the value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let spec = Self::spec(key)?;
        let invalid = |reason: &str| EngineError::InvalidSetting {
            key: key.to_string(),
            value: magnetar_sql::options::shown_value(key, value),
            reason: reason.to_string(),
        };
        if !spec.values.is_empty() && !spec.values.iter().any(|v| v.eq_ignore_ascii_case(value)) {
            return Err(invalid(&format!(
                "expected one of {}",
                spec.values.join(", ")
            )));
        }
        match spec.key {
            "sql-client.execution.max-table-result.rows"
            | "sql-client.display.max-column-width"
            | "execution.checkpointing.num-retained" => {
                let n: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| invalid("expected a positive whole number"))?;
                if n == 0 {
                    return Err(invalid("expected at least 1"));
                }
            }
            "parallelism.default" | "pipeline.max-parallelism" => {
                let n: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| invalid("expected a positive whole number"))?;
                if n == 0 || n > usize::from(u16::MAX / 2) {
                    return Err(invalid("expected 1 to 32767"));
                }
                let (parallelism, max) = if key == "parallelism.default" {
                    (n, self.max_parallelism())
                } else {
                    (self.parallelism(), n as u16)
                };
                if parallelism > usize::from(max) {
                    return Err(invalid(&format!(
                        "'parallelism.default' ({parallelism}) cannot exceed 'pipeline.max-parallelism' ({max}): each instance owns at least one key group"
                    )));
                }
            }
            "execution.batch-size" => {
                let n: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| invalid("expected a positive whole number"))?;
                if n == 0 || n > 1 << 20 {
                    return Err(invalid("expected 1 to 1048576"));
                }
            }
            "execution.flush-interval" | "table.exec.source.idle-timeout" => {
                parse_duration(value).map_err(|e| invalid(&e))?;
            }
            "execution.memory-limit" => {
                let bytes = parse_size(value).map_err(|e| invalid(&e))?;
                if bytes < 1 << 20 {
                    return Err(invalid("expected at least 1 mb"));
                }
            }
            "execution.checkpointing.interval" => {
                let d = parse_duration(value).map_err(|e| invalid(&e))?;
                if d.is_zero() {
                    return Err(invalid(
                        "expected a positive duration; RESET it to turn checkpoints off",
                    ));
                }
            }
            "pulsar.service-url"
                if !value.starts_with("pulsar://") && !value.starts_with("pulsar+ssl://") =>
            {
                return Err(invalid("expected pulsar://host:port"));
            }
            _ => {}
        }
        self.values.insert(spec.key.to_string(), value.to_string());
        Ok(())
    }

    /// Resets `key` (or everything) to its default.
    pub fn reset(&mut self, key: Option<&str>) -> Result<()> {
        match key {
            Some(key) => {
                Self::spec(key)?;
                self.values.remove(key);
            }
            None => self.values.clear(),
        }
        Ok(())
    }

    /// The value of `key` or its default.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str).or_else(|| {
            SETTINGS
                .iter()
                .find(|s| s.key == key)
                .and_then(|s| s.default)
        })
    }

    /// Removes and returns a one-shot setting (such as `pipeline.name`).
    pub fn take(&mut self, key: &str) -> Option<String> {
        self.values.remove(key)
    }

    /// The `pulsar.client.*` settings that are set, as table options.
    pub fn client_options(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .filter(|(k, _)| k.starts_with(CLIENT_SETTING_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every setting with its current value (or default), for `SHOW SET`.
    pub fn all(&self) -> Vec<(&'static str, Option<String>)> {
        SETTINGS
            .iter()
            .map(|s| (s.key, self.get(s.key).map(str::to_string)))
            .collect()
    }

    /// These settings with the engine's own default parallelism.
    pub fn with_default_parallelism(mut self, parallelism: Option<usize>) -> Self {
        self.default_parallelism = parallelism;
        self
    }

    /// `parallelism.default`: the instances of keyed operators (default: the engine's, or
    /// the number of cores).
    pub fn parallelism(&self) -> usize {
        self.get("parallelism.default")
            .and_then(|v| v.trim().parse().ok())
            .or(self.default_parallelism)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(usize::from)
                    .unwrap_or(1)
            })
            .clamp(1, usize::from(self.max_parallelism()))
    }

    /// `pipeline.max-parallelism`: the number of key groups.
    pub fn max_parallelism(&self) -> u16 {
        self.get("pipeline.max-parallelism")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(crate::runtime::DEFAULT_MAX_PARALLELISM)
    }

    /// `execution.memory-limit` in bytes, if set.
    pub fn memory_limit(&self) -> Option<u64> {
        self.get("execution.memory-limit")
            .and_then(|v| parse_size(v).ok())
    }

    /// `execution.batch-size`.
    pub fn batch_size(&self) -> usize {
        self.get("execution.batch-size")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(8192)
    }

    /// `table.exec.source.idle-timeout`.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.get("table.exec.source.idle-timeout")
            .and_then(|v| parse_duration(v).ok())
    }

    /// `table.dml-sync`.
    /// `execution.runtime-mode` = `streaming`: bounded queries run on the streaming runtime.
    pub fn streaming_mode(&self) -> bool {
        self.get("execution.runtime-mode")
            .is_some_and(|v| v.eq_ignore_ascii_case("streaming"))
    }

    pub fn dml_sync(&self) -> bool {
        self.get("table.dml-sync")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// `execution.checkpointing.interval`: `None` when jobs take no checkpoints.
    pub fn checkpoint_interval(&self) -> Option<Duration> {
        self.get("execution.checkpointing.interval")
            .and_then(|v| parse_duration(v).ok())
            .filter(|d| !d.is_zero())
    }

    /// `execution.checkpointing.dir`.
    pub fn checkpoint_dir(&self) -> Option<&str> {
        self.get("execution.checkpointing.dir")
    }

    /// `execution.checkpointing.num-retained`.
    pub fn checkpoints_retained(&self) -> usize {
        self.get("execution.checkpointing.num-retained")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(3)
    }

    /// `execution.flush-interval`.
    pub fn flush_interval(&self) -> Duration {
        self.get("execution.flush-interval")
            .and_then(|v| parse_duration(v).ok())
            .unwrap_or(Duration::from_millis(200))
    }
}

/// A markdown table of the settings, for the README.
pub fn settings_markdown() -> String {
    let mut out = String::from("| setting | default | meaning |\n|---|---|---|\n");
    for s in SETTINGS {
        let default = s.default.map(|d| format!("`{d}`")).unwrap_or_default();
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            s.key, default, s.description
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_and_suggests() {
        let mut s = Settings::default();
        s.set("pipeline.name", "clicks").expect("ok");
        assert_eq!(s.get("pipeline.name"), Some("clicks"));
        let err = s.set("pipeline.nme", "x").expect_err("typo");
        assert!(
            err.to_string().contains("did you mean 'pipeline.name'"),
            "{err}"
        );
        assert!(s.set("execution.batch-size", "0").is_err());
        assert!(s.set("pulsar.service-url", "localhost:6650").is_err());
        s.set("execution.flush-interval", "2 s").expect("ok");
        assert_eq!(s.flush_interval(), Duration::from_secs(2));
        s.reset(None).expect("ok");
        assert_eq!(s.get("pipeline.name"), None);
        assert_eq!(s.batch_size(), 8192);
    }

    #[test]
    fn enumerated_values_are_checked() {
        let mut s = Settings::default();
        assert_eq!(s.get("sql-client.execution.result-mode"), Some("table"));
        s.set("sql-client.execution.result-mode", "changelog")
            .expect("ok");
        let err = s
            .set("sql-client.execution.result-mode", "live")
            .expect_err("not a mode");
        assert!(
            err.to_string()
                .contains("expected one of table, tableau, changelog"),
            "{err}"
        );
        assert!(s.set("table.dml-sync", "yes").is_err());
        assert!(
            s.set("sql-client.execution.max-table-result.rows", "0")
                .is_err()
        );
    }

    #[test]
    fn parallelism_stays_within_the_key_groups() {
        let mut s = Settings::default();
        assert!(s.parallelism() >= 1);
        assert_eq!(s.max_parallelism(), 128);
        s.set("parallelism.default", "4").expect("ok");
        assert_eq!(s.parallelism(), 4);
        assert!(s.set("parallelism.default", "0").is_err());
        let err = s
            .set("pipeline.max-parallelism", "2")
            .expect_err("fewer key groups than instances");
        assert!(err.to_string().contains("cannot exceed"), "{err}");
        s.set("pipeline.max-parallelism", "16").expect("ok");
        assert!(s.set("parallelism.default", "17").is_err());
    }
}
