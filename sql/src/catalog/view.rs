//! Views: a named query, planned once when created (so that errors show then), and inlined
//! wherever it is read, as Flink's views are.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, col};

use super::MagnetarTable;
use crate::error::{Result, SqlError};
use crate::statement::CreateView;

/// A view: its plan, and what it reads.
#[derive(Clone, Debug)]
pub struct ViewDef {
    /// The name.
    pub name: String,
    /// The query's logical plan (column names as the view gives them).
    pub plan: LogicalPlan,
    /// The view's columns.
    pub schema: SchemaRef,
    /// `CREATE VIEW` as written.
    pub text: String,
    /// `COMMENT`.
    pub comment: Option<String>,
    /// The tables its plan scans, through any views it reads.
    pub tables: BTreeSet<String>,
    /// Other views it reads (by the names they were read under).
    pub views: BTreeSet<String>,
}

impl ViewDef {
    /// The view `create` declares over `plan` (its query, planned); `is_view` tells which
    /// names are views, to record what the view depends on.
    pub fn new(
        create: &CreateView,
        plan: LogicalPlan,
        is_view: &dyn Fn(&str) -> bool,
    ) -> Result<ViewDef> {
        let plan = if create.columns.is_empty() {
            plan
        } else {
            let fields = plan.schema().fields().len();
            if fields != create.columns.len() {
                return Err(SqlError::unsupported(
                    format!(
                        "view '{}' names {} columns, but its query has {fields}",
                        create.name,
                        create.columns.len()
                    ),
                    Some(create.location),
                ));
            }
            let renamed = plan
                .schema()
                .columns()
                .into_iter()
                .zip(&create.columns)
                .map(|(c, name)| col(c).alias(name))
                .collect::<Vec<_>>();
            LogicalPlanBuilder::from(plan).project(renamed)?.build()?
        };
        let mut names = BTreeSet::new();
        for field in plan.schema().fields() {
            if !names.insert(field.name().clone()) {
                return Err(SqlError::unsupported(
                    format!(
                        "view '{}' would have two columns named '{}'; name them with AS, or list the view's columns",
                        create.name,
                        field.name()
                    ),
                    Some(create.location),
                ));
            }
        }
        let mut tables = BTreeSet::new();
        let mut views = BTreeSet::new();
        let _ = plan.apply(|node| {
            match node {
                LogicalPlan::TableScan(scan) => {
                    if let Ok(provider) = source_as_provider(&scan.source)
                        && let Some(table) = provider.downcast_ref::<MagnetarTable>()
                    {
                        tables.insert(table.def().name.clone());
                    }
                }
                // Views are inlined under an alias of their name.
                LogicalPlan::SubqueryAlias(a) if is_view(a.alias.table()) => {
                    views.insert(a.alias.table().to_string());
                }
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        });
        Ok(ViewDef {
            name: create.name.clone(),
            schema: Arc::new(plan.schema().as_arrow().clone()),
            plan,
            text: create.text.clone(),
            comment: create.comment.clone(),
            tables,
            views,
        })
    }

    /// Whether this view reads `name` (a table or a view), directly or through other views.
    pub fn reads(&self, name: &str) -> bool {
        self.tables.contains(name) || self.views.contains(name)
    }
}
