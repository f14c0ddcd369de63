//! A Pulsar table as DataFusion sees it: for planning every query, and for executing
//! bounded ones. Unbounded queries are lowered to Magnetar's streaming operators instead
//! (see [`crate::plan`]); their scan is never executed by DataFusion.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::TableDef;

/// Creates the execution plan of a bounded scan; the engine provides it.
#[async_trait]
pub trait ScanFactory: std::fmt::Debug + Send + Sync {
    /// A plan reading `table` from its start to its stop position.
    async fn bounded_scan(
        &self,
        table: Arc<TableDef>,
        projection: Option<&Vec<usize>>,
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>>;
}

/// A [`TableDef`] registered with DataFusion.
#[derive(Debug)]
pub struct MagnetarTable {
    def: Arc<TableDef>,
    factory: Arc<dyn ScanFactory>,
}

impl MagnetarTable {
    /// Wraps a table definition.
    pub fn new(def: Arc<TableDef>, factory: Arc<dyn ScanFactory>) -> Self {
        Self { def, factory }
    }

    /// The definition.
    pub fn def(&self) -> &Arc<TableDef> {
        &self.def
    }
}

#[async_trait]
impl TableProvider for MagnetarTable {
    fn schema(&self) -> SchemaRef {
        self.def.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        if !self.def.is_bounded() {
            return Err(DataFusionError::Plan(format!(
                "table '{}' is unbounded and cannot be read as a batch",
                self.def.name
            )));
        }
        self.factory
            .bounded_scan(self.def.clone(), projection, limit)
            .await
    }
}
