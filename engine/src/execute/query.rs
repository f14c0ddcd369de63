//! SELECT: bounded queries run in DataFusion (their window TVF parts as streaming subplans),
//! unbounded ones on the streaming runtime.

use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast;
use magnetar_sql::plan::{QueryBoundedness, boundedness, lower};

use super::plan_error;
use super::window_subplans::embed_window_subplans;
use crate::engine::Shared;
use crate::error::Result;
use crate::runtime::{PipelineContext, QueryStream, build_pipeline};
use crate::sources::{BarrierPolicy, QueryCommit};

/// Plans a parsed query into DataFusion's optimised logical plan.
pub(crate) async fn logical_plan(shared: &Shared, query: ast::Statement) -> Result<LogicalPlan> {
    let state = shared.ctx.state();
    let plan = state
        .statement_to_plan(DFStatement::Statement(Box::new(query)))
        .await
        .map_err(plan_error)?;
    state.optimize(&plan).map_err(plan_error)
}

/// A session state whose bounded scans hand their acknowledgements to `commit`.
pub(crate) fn state_with_commit(shared: &Shared, commit: Arc<QueryCommit>) -> SessionState {
    // The copy shares the catalog list; creating a default catalog again would replace the
    // one that holds our tables.
    let config = shared
        .ctx
        .copied_config()
        .with_create_default_catalog_and_schema(false)
        .with_extension(commit);
    SessionStateBuilder::new_from_existing(shared.ctx.state())
        .with_config(config)
        .build()
}

pub(crate) fn pipeline_context(shared: &Shared, barriers: BarrierPolicy) -> PipelineContext {
    let settings = shared.settings();
    PipelineContext {
        clients: shared.clients.clone(),
        default_service_url: shared.default_service_url(),
        batch_size: settings.batch_size(),
        barriers,
        clock: shared.config.clock.clone(),
        idle_timeout: settings.idle_timeout(),
        state: shared.ctx.state(),
        checkpoint: None,
    }
}

/// Runs a query and returns its rows.
pub(crate) async fn run_query(shared: &Shared, query: ast::Statement) -> Result<QueryStream> {
    let plan = logical_plan(shared, query).await?;
    match boundedness(&plan) {
        QueryBoundedness::Bounded => {
            let plan = embed_window_subplans(shared, plan)?.plan;
            let commit = Arc::new(QueryCommit::default());
            let state = state_with_commit(shared, commit.clone());
            let physical = state
                .create_physical_plan(&plan)
                .await
                .map_err(plan_error)?;
            let stream = execute_stream(physical, state.task_ctx()).map_err(plan_error)?;
            Ok(QueryStream::from_bounded(stream, commit))
        }
        QueryBoundedness::Unbounded { .. } => {
            let state = shared.ctx.state();
            let stream_plan = lower(&plan, &state)?;
            let ctx = pipeline_context(shared, BarrierPolicy::AfterEachBatch);
            let pipeline = build_pipeline(&stream_plan, &ctx).await?;
            Ok(QueryStream::from_pipeline(stream_plan.schema(), pipeline))
        }
    }
}
