//! SELECT: bounded queries run in DataFusion (their window TVF parts as streaming subplans),
//! unbounded ones on the streaming runtime.

use std::sync::Arc;

use datafusion::execution::SessionStateBuilder;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast;
use magnetar_sql::plan::{JobGraph, QueryBoundedness, boundedness, lower};
use tokio::sync::watch;

use super::plan_error;
use super::window_subplans::embed_window_subplans;
use crate::engine::Shared;
use crate::error::Result;
use crate::runtime::{Epoch, GraphContext, GraphMode, QueryStream, start_graph};
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

/// How graphs run, from the session's settings.
pub(crate) fn graph_context(shared: &Shared, barriers: BarrierPolicy) -> GraphContext {
    let settings = shared.settings();
    GraphContext {
        clients: shared.clients.clone(),
        default_service_url: shared.default_service_url(),
        batch_size: settings.batch_size(),
        barriers,
        clock: shared.config.clock.clone(),
        idle_timeout: settings.idle_timeout(),
        state: shared.ctx.state(),
        parallelism: settings.parallelism(),
        max_parallelism: settings.max_parallelism(),
    }
}

/// Runs a query and returns its rows.
pub(crate) async fn run_query(shared: &Shared, query: ast::Statement) -> Result<QueryStream> {
    let plan = logical_plan(shared, query).await?;
    let streaming = shared.settings().streaming_mode();
    match boundedness(&plan) {
        QueryBoundedness::Bounded if !streaming => {
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
        _ => {
            let state = shared.ctx.state();
            let stream_plan = lower(&plan, &state)?;
            let ctx = graph_context(shared, BarrierPolicy::AfterEachBatch);
            let (completed, completed_rx) = watch::channel(Epoch(0));
            let graph = start_graph(
                &JobGraph::of_query(&stream_plan),
                &ctx,
                GraphMode::Query,
                completed_rx,
                Arc::default(),
            )
            .await?;
            QueryStream::from_graph(stream_plan.schema(), graph, completed)
        }
    }
}
