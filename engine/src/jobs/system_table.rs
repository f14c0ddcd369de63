//! `system.jobs`: the jobs as a table, so SQL can select and filter what `SHOW JOBS`
//! prints (tests check a job's counters with it). Per job: input rate (messages per second
//! over the last ten seconds), backlog (entries its subscriptions are behind), watermark and
//! its lag behind the wall clock, late rows, window state size, the last checkpoint.

use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Float64Array, StringArray, TimestampMillisecondArray, UInt64Array,
};
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
    let time = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("state", DataType::Utf8, false),
        Field::new("sink", DataType::Utf8, false),
        Field::new("input_rate", DataType::Float64, true),
        Field::new("backlog", DataType::UInt64, true),
        Field::new("watermark", time(), true),
        Field::new("watermark_lag_s", DataType::Float64, true),
        Field::new("late", DataType::UInt64, false),
        Field::new("state_bytes", DataType::UInt64, false),
        Field::new("last_checkpoint", DataType::UInt64, true),
        Field::new("last_checkpoint_at", time(), true),
        Field::new("read", DataType::UInt64, false),
        Field::new("written", DataType::UInt64, false),
        Field::new("skipped", DataType::UInt64, false),
        Field::new("dead_lettered", DataType::UInt64, false),
        Field::new("duplicates_dropped", DataType::UInt64, false),
        Field::new("restored_from", DataType::UInt64, true),
        Field::new("restarts", DataType::UInt64, false),
        Field::new("replays_dropped", DataType::UInt64, false),
        Field::new("started", time(), false),
        Field::new("error", DataType::Utf8, true),
    ]))
});

/// Milliseconds since the epoch.
fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The jobs as one batch: what `SHOW JOBS` prints and `system.jobs` holds. The watermark
/// lag is measured against `now`.
pub fn jobs_batch(jobs: &[JobInfo]) -> Result<RecordBatch> {
    let now_ms = epoch_ms(SystemTime::now());
    let u64s = |f: fn(&JobInfo) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from(jobs.iter().map(f).collect::<Vec<_>>()))
    };
    let optional = |f: fn(&JobInfo) -> Option<u64>| -> ArrayRef {
        Arc::new(UInt64Array::from(jobs.iter().map(f).collect::<Vec<_>>()))
    };
    let strings = |f: fn(&JobInfo) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from(jobs.iter().map(f).collect::<Vec<_>>()))
    };
    let times = |values: Vec<Option<i64>>| -> ArrayRef {
        Arc::new(TimestampMillisecondArray::from(values).with_timezone("UTC"))
    };
    let watermarks: Vec<Option<i64>> = jobs.iter().map(|j| j.watermark.map(|w| w.0.0)).collect();
    let lag: Vec<Option<f64>> = watermarks
        .iter()
        .map(|w| w.map(|w| now_ms.saturating_sub(w) as f64 / 1000.0))
        .collect();
    Ok(RecordBatch::try_new(
        SCHEMA.clone(),
        vec![
            strings(|j| Some(j.id.clone())),
            strings(|j| j.name.clone()),
            strings(|j| Some(j.state.name().to_string())),
            strings(|j| Some(j.sink_table.clone())),
            Arc::new(Float64Array::from(
                jobs.iter()
                    .map(|j| j.input_rate.map(|r| (r * 10.0).round() / 10.0))
                    .collect::<Vec<_>>(),
            )),
            optional(|j| j.backlog),
            times(watermarks),
            Arc::new(Float64Array::from(lag)),
            u64s(|j| j.late_rows),
            u64s(|j| j.state_bytes),
            optional(|j| j.last_checkpoint),
            times(
                jobs.iter()
                    .map(|j| j.last_checkpoint_at.map(epoch_ms))
                    .collect(),
            ),
            u64s(|j| j.messages_read),
            u64s(|j| j.messages_written),
            u64s(|j| j.messages_skipped),
            u64s(|j| j.messages_dead_lettered),
            u64s(|j| j.duplicates_dropped),
            optional(|j| j.restored_from),
            u64s(|j| j.restarts),
            u64s(|j| j.replays_dropped),
            times(jobs.iter().map(|j| Some(epoch_ms(j.started))).collect()),
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
