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
        Field::new("parallelism", DataType::UInt64, false),
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
        Field::new("warning", DataType::Utf8, true),
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
            u64s(|j| j.parallelism as u64),
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
            strings(|j| (!j.warnings.is_empty()).then(|| j.warnings.join("; "))),
        ],
    )?)
}

static TASK_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("job", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("node", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("instance", DataType::UInt64, false),
        Field::new("parallelism", DataType::UInt64, false),
        Field::new("rows_in", DataType::UInt64, false),
        Field::new("rows_out", DataType::UInt64, false),
        Field::new(
            "watermark",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("state_bytes", DataType::UInt64, false),
    ]))
});

/// Every task instance of every streaming job, one row each: what `system.job_tasks` holds.
pub(crate) fn job_tasks_batch(jobs: &JobRegistry) -> Result<RecordBatch> {
    let mut rows = Vec::new();
    for job in jobs.all() {
        let tasks = job.tasks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for task in tasks {
            rows.push((job.id.clone(), job.name.clone(), task));
        }
    }
    let u64s = |f: &dyn Fn(&crate::runtime::TaskMetrics) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from(
            rows.iter().map(|(_, _, t)| f(t)).collect::<Vec<_>>(),
        ))
    };
    use std::sync::atomic::Ordering::Relaxed;
    Ok(RecordBatch::try_new(
        TASK_SCHEMA.clone(),
        vec![
            Arc::new(StringArray::from(
                rows.iter().map(|(id, _, _)| id.clone()).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter()
                    .map(|(_, name, _)| name.clone())
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter()
                    .map(|(_, _, t)| t.task.node.to_string())
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter()
                    .map(|(_, _, t)| t.kind.clone())
                    .collect::<Vec<_>>(),
            )),
            u64s(&|t| t.task.instance as u64),
            u64s(&|t| t.parallelism as u64),
            u64s(&|t| t.rows_in.load(Relaxed)),
            u64s(&|t| t.rows_out.load(Relaxed)),
            Arc::new(
                TimestampMillisecondArray::from(
                    rows.iter()
                        .map(|(_, _, t)| t.watermark().map(|w| w.0.0))
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
            u64s(&|t| t.state_bytes.load(Relaxed)),
        ],
    )?)
}

/// A table of the engine's jobs, computed afresh by every query that reads it.
#[derive(Debug)]
pub(crate) struct SystemTable {
    jobs: Arc<JobRegistry>,
    schema: SchemaRef,
    rows: fn(&JobRegistry) -> Result<RecordBatch>,
}

impl SystemTable {
    /// `system.jobs`: one row per job.
    pub fn jobs(jobs: Arc<JobRegistry>) -> Self {
        Self {
            jobs,
            schema: SCHEMA.clone(),
            rows: |jobs| jobs_batch(&jobs.all().iter().map(|j| j.info()).collect::<Vec<_>>()),
        }
    }

    /// `system.job_tasks`: one row per task instance of every streaming job.
    pub fn job_tasks(jobs: Arc<JobRegistry>) -> Self {
        Self {
            jobs,
            schema: TASK_SCHEMA.clone(),
            rows: job_tasks_batch,
        }
    }
}

#[async_trait]
impl TableProvider for SystemTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
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
        let batch = (self.rows)(&self.jobs)?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}
