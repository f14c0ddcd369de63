//! The memory pool of the engine's DataFusion session: `SET 'execution.memory-limit'` bounds
//! what sorts, joins and aggregates reserve, so that a runaway query fails with "resources
//! exhausted" instead of taking the process down. The limit can change while the engine runs.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::{DataFusionError, Result as DFResult};
use datafusion::execution::memory_pool::{MemoryLimit, MemoryPool, MemoryReservation};

/// A first-come-first-served pool whose limit is a setting.
#[derive(Debug)]
pub struct SettableMemoryPool {
    used: AtomicUsize,
    /// `usize::MAX`: no limit.
    limit: AtomicUsize,
}

impl Default for SettableMemoryPool {
    fn default() -> Self {
        Self {
            used: AtomicUsize::new(0),
            limit: AtomicUsize::new(usize::MAX),
        }
    }
}

impl SettableMemoryPool {
    /// Sets the limit in bytes (`None`: no limit); reservations held already stay.
    pub fn set_limit(&self, bytes: Option<u64>) {
        let limit = bytes.map_or(usize::MAX, |b| usize::try_from(b).unwrap_or(usize::MAX));
        self.limit.store(limit, Ordering::Relaxed);
    }
}

impl fmt::Display for SettableMemoryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "execution.memory-limit pool (used: {} bytes)",
            self.used.load(Ordering::Relaxed)
        )
    }
}

impl MemoryPool for SettableMemoryPool {
    fn name(&self) -> &str {
        "execution.memory-limit"
    }

    fn grow(&self, _reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::Relaxed);
    }

    fn shrink(&self, _reservation: &MemoryReservation, shrink: usize) {
        self.used.fetch_sub(shrink, Ordering::Relaxed);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DFResult<()> {
        let limit = self.limit.load(Ordering::Relaxed);
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(additional).filter(|n| *n <= limit)
            })
            .map_err(|used| {
                DataFusionError::ResourcesExhausted(format!(
                    "the query needs more memory than 'execution.memory-limit' ({limit} bytes) allows: {} asked for {additional} more bytes with {used} in use; raise the limit, or make the query smaller",
                    reservation.consumer().name()
                ))
            })?;
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        match self.limit.load(Ordering::Relaxed) {
            usize::MAX => MemoryLimit::Infinite,
            limit => MemoryLimit::Finite(limit),
        }
    }
}
