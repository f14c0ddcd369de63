//! `system.jobs`: the jobs as a table, so SQL can select and filter what `SHOW JOBS`
//! prints (tests check a job's counters with it).

use std::sync::{Arc, LazyLock};
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, StringArray, TimestampMillisecondArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DFResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::{JobInfo, JobRegistry, JobState};
use crate::error::Result;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("state", DataType::Utf8, false),
        Field::new("sink", DataType::Utf8, false),
        Field::new("read", DataType::UInt64, false),
        Field::new("written", DataType::UInt64, false),
        Field::new("skipped", DataType::UInt64, false),
        Field::new("dead_lettered", DataType::UInt64, false),
        Field::new("duplicates_dropped", DataType::UInt64, false),
        Field::new("late", DataType::UInt64, false),
        Field::new("restored_from", DataType::UInt64, true),
        Field::new("last_checkpoint", DataType::UInt64, true),
        Field::new("restarts", DataType::UInt64, false),
        Field::new("replays_dropped", DataType::UInt64, false),
        Field::new(
            "started",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("error", DataType::Utf8, true),
    ]))
});

/// The jobs as one batch: what `SHOW JOBS` prints and `system.jobs` holds.
pub fn jobs_batch(jobs: &[JobInfo]) -> Result<RecordBatch> {
    let u64s = |f: fn(&JobInfo) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from(jobs.iter().map(f).collect::<Vec<_>>()))
    };
    let optional = |f: fn(&JobInfo) -> Option<u64>| -> ArrayRef {
        Arc::new(UInt64Array::from(jobs.iter().map(f).collect::<Vec<_>>()))
    };
    let strings = |f: fn(&JobInfo) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(jobs.iter().map(f).collect::<Vec<_>>()))
    };
    let started = TimestampMillisecondArray::from(
        jobs.iter()
            .map(|j| {
                j.started
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0)
            })
            .collect::<Vec<_>>(),
    )
    .with_timezone("UTC");
    Ok(RecordBatch::try_new(
        SCHEMA.clone(),
        vec![
            strings(|j| Some(j.id.clone())),
            strings(|j| j.name.clone()),
            strings(|j| Some(j.state.name().to_string())),
            strings(|j| Some(j.sink_table.clone())),
            u64s(|j| j.messages_read),
            u64s(|j| j.messages_written),
            u64s(|j| j.messages_skipped),
            u64s(|j| j.messages_dead_lettered),
            u64s(|j| j.duplicates_dropped),
            u64s(|j| j.late_rows),
            optional(|j| j.restored_from),
            optional(|j| j.last_checkpoint),
            u64s(|j| j.restarts),
            u64s(|j| j.replays_dropped),
            Arc::new(started),
            strings(|j| match &j.state {
                JobState::Failed(e) => Some(e.clone()),
                _ => None,
            }),
        ],
    )?)
}

/// `system.jobs`, read fresh by every query.
#[derive(Debug)]
pub(crate) struct JobsTable {
    pub jobs: Arc<JobRegistry>,
}

#[async_trait]
impl TableProvider for JobsTable {
    fn schema(&self) -> SchemaRef {
        SCHEMA.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let jobs: Vec<JobInfo> = self.jobs.all().iter().map(|j| j.info()).collect();
        let batch = jobs_batch(&jobs)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            SCHEMA.clone(),
            projection.cloned(),
        )?)
    }
}
