//! Running each kind of statement.

pub(crate) mod ddl;
pub(crate) mod explain;
pub(crate) mod insert;
pub(crate) mod query;
pub(crate) mod streaming_job;
pub(crate) mod views;
pub(crate) mod window_subplans;

use datafusion::error::DataFusionError;

use crate::error::EngineError;

/// A planning error: ours if DataFusion carried one of ours, else a located SQL error.
pub(crate) fn plan_error(e: DataFusionError) -> EngineError {
    match crate::runtime::unwrap_external(e) {
        EngineError::DataFusion(df) => EngineError::Sql(df.into()),
        ours => ours,
    }
}
