//! The one time base of a run: nanoseconds since an epoch taken when the
//! run starts, shared by every task of this process.
//!
//! Publishers stamp each message with [`Clock::now_ns`] and readers subtract
//! it from their own [`Clock::now_ns`]: both read the same monotonic clock,
//! so a latency never depends on wall-clock adjustments, and the stamp fits
//! in a short decimal number.

use tokio::time::Instant;

/// A monotonic epoch; cheap to copy into every task.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    #[must_use]
    pub fn start() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    /// Nanoseconds since the epoch. Saturates after 584 years.
    #[must_use]
    pub fn now_ns(&self) -> u64 {
        self.ns_at(Instant::now())
    }

    /// Nanoseconds from the epoch to `at` (0 for an instant before it).
    #[must_use]
    pub fn ns_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }
}
