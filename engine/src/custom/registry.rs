//! The connectors registered with an engine: the planner's view (names, keys) and the
//! implementations the runtime opens.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use magnetar_sql::options::{CONNECTORS, CustomConnectorSpec, CustomConnectors};

use super::CustomConnector;
use crate::error::{EngineError, Result};

/// Registered connectors by name.
#[derive(Default)]
pub(crate) struct ConnectorRegistry {
    inner: RwLock<Registered>,
}

#[derive(Default)]
struct Registered {
    specs: CustomConnectors,
    connectors: BTreeMap<String, Arc<dyn CustomConnector>>,
}

impl std::fmt::Debug for ConnectorRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorRegistry")
            .field("names", &self.read().connectors.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ConnectorRegistry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registered> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `connector`; its name must not be a built-in connector's or taken already.
    pub(crate) fn register(&self, connector: Arc<dyn CustomConnector>) -> Result<()> {
        let name = connector.name().to_string();
        let invalid = |reason: String| EngineError::InvalidSetting {
            key: "connector".into(),
            value: name.clone(),
            reason,
        };
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '\'') {
            return Err(invalid(
                "a connector name is a word without spaces or quotes".into(),
            ));
        }
        if CONNECTORS.iter().any(|b| b.eq_ignore_ascii_case(&name)) {
            return Err(invalid("a built-in connector has this name".into()));
        }
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if inner.specs.get(&name).is_some() {
            return Err(invalid(
                "a connector of this name is registered already".into(),
            ));
        }
        let options = connector.options();
        if let Some(spec) = options.iter().find(|s| s.key == "connector") {
            return Err(invalid(format!(
                "its options declare '{}', which names the connector itself",
                spec.key
            )));
        }
        inner.specs.insert(CustomConnectorSpec {
            name: name.clone(),
            options,
            bounded: connector.is_bounded(),
        });
        inner.connectors.insert(name, connector);
        Ok(())
    }

    /// What the planner needs: names and keys.
    pub(crate) fn specs(&self) -> CustomConnectors {
        self.read().specs.clone()
    }

    /// The connector named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<dyn CustomConnector>> {
        self.read().connectors.get(name).cloned()
    }
}
