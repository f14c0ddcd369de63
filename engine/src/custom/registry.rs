//! The connectors registered with an engine: the planner's view (names, keys) and the
//! implementations the runtime opens.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use magnetar_sql::catalog::TableDef;
use magnetar_sql::options::{CONNECTORS, Connector, CustomConnectorSpec, CustomConnectors};

use super::{CustomConnector, TableContext};
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
        let invalid = |reason: String| EngineError::InvalidConnector {
            name: name.clone(),
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

    /// The connector of a custom table, and what it is told of the table (`resume`: a
    /// restored source's position).
    pub(crate) fn for_table(
        &self,
        table: &TableDef,
        resume: Option<String>,
    ) -> Result<(Arc<dyn CustomConnector>, TableContext)> {
        let Connector::Custom(options) = &table.connector else {
            return Err(EngineError::Internal(format!(
                "table '{}' is not a custom connector's",
                table.name
            )));
        };
        let connector = self
            .read()
            .connectors
            .get(&options.connector)
            .cloned()
            .ok_or_else(|| {
                EngineError::Internal(format!(
                    "table '{}' names connector '{}', which is not registered",
                    table.name, options.connector
                ))
            })?;
        let context = TableContext {
            table: table.name.clone(),
            schema: table.schema.clone(),
            options: options.options.clone(),
            resume,
        };
        Ok((connector, context))
    }
}
