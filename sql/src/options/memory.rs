//! The `memory` connector: an in-process, partitioned, append-only table. `INSERT INTO`
//! appends rows; reads are continuous (waiting for rows) or, with `'scan.bounded'`, a
//! snapshot. For tests (rows fed step by step, with a controllable clock) and embedding.

use std::time::Duration;

use super::common::{self, EmitStrategy, IDLE_TIMEOUT, SCAN_PARALLELISM, WATERMARK_EMIT};
use super::{OptionKind, OptionScope, OptionSpec, ValidatedOptions};
use crate::error::{Location, Result};
use crate::statement::OptionEntry;

/// Every option of the `memory` connector.
pub const MEMORY_OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        key: "connector",
        kind: OptionKind::OneOf(&["memory"]),
        default: None,
        required: true,
        scope: OptionScope::Table,
        description: "The connector: `memory`.",
    },
    OptionSpec {
        key: "name",
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Table,
        description: "The storage the table reads and writes (default: the table's name); tables naming the same storage share its rows.",
    },
    OptionSpec {
        key: "partitions",
        kind: OptionKind::Integer,
        default: Some("1"),
        required: false,
        scope: OptionScope::Table,
        description: "Number of partitions (each with its own watermark).",
    },
    OptionSpec {
        key: "partition.field",
        kind: OptionKind::Text,
        default: None,
        required: false,
        scope: OptionScope::Sink,
        description: "An integer column whose value (modulo the partition count) chooses the partition a written row goes to; default: partition 0.",
    },
    OptionSpec {
        key: "scan.bounded",
        kind: OptionKind::Bool,
        default: Some("false"),
        required: false,
        scope: OptionScope::Source,
        description: "`true`: a read sees the rows present when it starts, then ends. `false`: it waits for more.",
    },
    WATERMARK_EMIT,
    IDLE_TIMEOUT,
    SCAN_PARALLELISM,
];

/// Validated options of a memory table.
#[derive(Clone, Debug)]
pub struct MemoryTableOptions {
    /// Storage name.
    pub name: String,
    /// Partition count.
    pub partitions: usize,
    /// Column choosing the partition of written rows.
    pub partition_field: Option<String>,
    /// Snapshot reads.
    pub bounded: bool,
    /// Watermark emission.
    pub emit: EmitStrategy,
    /// Idle timeout of a partition.
    pub idle_timeout: Option<Duration>,
    /// Most source instances (`scan.parallelism`).
    pub scan_parallelism: Option<usize>,
}

impl MemoryTableOptions {
    /// Validates the `WITH` entries of table `table`.
    pub fn parse(table: &str, entries: &[OptionEntry], location: Option<Location>) -> Result<Self> {
        let o = ValidatedOptions::new("memory", table, MEMORY_OPTIONS, entries, location)?;
        let partitions = o
            .get("partitions")
            .and_then(|p| p.trim().parse::<usize>().ok())
            .filter(|p| (1..=1024).contains(p))
            .ok_or_else(|| o.invalid("partitions", "expected 1 to 1024"))?;
        let (emit, idle_timeout) = common::event_time(&o)?;
        let scan_parallelism = common::scan_parallelism(&o)?;
        Ok(Self {
            name: o.get("name").unwrap_or(table).to_string(),
            partitions,
            partition_field: o.get("partition.field").map(str::to_string),
            bounded: o.get_bool("scan.bounded"),
            emit,
            idle_timeout,
            scan_parallelism,
        })
    }
}
