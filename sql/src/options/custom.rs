//! Connectors an embedding program registers in Rust: the planner knows their name, the
//! `WITH` keys they take and whether their reads end; the engine runs their sources and
//! sinks. Their keys are validated like a built-in connector's: unknown keys are rejected
//! with the nearest valid one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::common::{self, EmitStrategy, IDLE_TIMEOUT, WATERMARK_EMIT};
use super::{OptionKind, OptionScope, OptionSpec, ValidatedOptions};
use crate::error::{Location, Result};
use crate::statement::OptionEntry;

/// The `connector` key of a custom connector's table (its value was matched already).
const CONNECTOR: OptionSpec = OptionSpec {
    key: "connector",
    kind: OptionKind::Text,
    default: None,
    required: true,
    scope: OptionScope::Table,
    description: "The connector's registered name.",
};

/// What the planner knows of a registered connector.
#[derive(Clone, Debug)]
pub struct CustomConnectorSpec {
    /// The name tables give in `'connector' = '...'`.
    pub name: String,
    /// The connector's own `WITH` keys.
    pub options: Vec<OptionSpec>,
    /// Whether reads of its tables end by themselves.
    pub bounded: bool,
}

impl CustomConnectorSpec {
    /// Every key a table of this connector takes: `connector`, the connector's own, and the
    /// event-time keys every source has.
    pub fn all_options(&self) -> Vec<OptionSpec> {
        let mut all = vec![CONNECTOR];
        all.extend(self.options.iter().copied());
        for shared in [WATERMARK_EMIT, IDLE_TIMEOUT] {
            if !all.iter().any(|s| s.key == shared.key) {
                all.push(shared);
            }
        }
        all
    }
}

/// The registered connectors, by name.
#[derive(Clone, Debug, Default)]
pub struct CustomConnectors {
    by_name: BTreeMap<String, Arc<CustomConnectorSpec>>,
}

impl CustomConnectors {
    /// Adds (or replaces) a connector.
    pub fn insert(&mut self, spec: CustomConnectorSpec) {
        self.by_name.insert(spec.name.clone(), Arc::new(spec));
    }

    /// The connector named `name` (case-insensitive, as built-in names are).
    pub fn get(&self, name: &str) -> Option<&Arc<CustomConnectorSpec>> {
        self.by_name
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, spec)| spec)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// Validated options of a table of a registered connector.
#[derive(Clone, Debug)]
pub struct CustomTableOptions {
    /// The connector's registered name.
    pub connector: String,
    /// Every given key with its value, and the defaults of keys not given (without
    /// `connector`).
    pub options: BTreeMap<String, String>,
    /// Whether reads end by themselves.
    pub bounded: bool,
    /// Watermark emission.
    pub emit: EmitStrategy,
    /// Idle timeout of the source.
    pub idle_timeout: Option<Duration>,
}

impl CustomTableOptions {
    /// Validates the `WITH` entries of table `table` against `spec`.
    pub fn parse(
        spec: &CustomConnectorSpec,
        table: &str,
        entries: &[OptionEntry],
        location: Option<Location>,
    ) -> Result<Self> {
        let specs = spec.all_options();
        let o = ValidatedOptions::new(&spec.name, table, &specs, entries, location)?;
        let (emit, idle_timeout) = common::event_time(&o)?;
        let options = specs
            .iter()
            .filter(|s| s.key != CONNECTOR.key)
            .filter_map(|s| Some((s.key.to_string(), o.get(s.key)?.to_string())))
            .collect();
        Ok(Self {
            connector: spec.name.clone(),
            options,
            bounded: spec.bounded,
            emit,
            idle_timeout,
        })
    }
}
