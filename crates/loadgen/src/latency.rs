//! Latency histograms: one shared per measurement, fed in batches.
//!
//! A histogram per connection would cost tens of KiB each (thousands of
//! connections make that hundreds of MiB in the generator); one locked per
//! sample would make the lock the hot spot. So each reader keeps a small
//! buffer of samples and moves it into the shared histogram when full: the
//! lock is taken once per [`BATCH`] deliveries, and held only for that copy.

use std::sync::{Arc, Mutex, PoisonError};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Samples a reader buffers before taking the lock.
const BATCH: usize = 256;

/// The largest latency recorded exactly, in microseconds (60 s); larger
/// ones are recorded as this.
const MAX_LATENCY_US: u64 = 60_000_000;

/// Significant decimal digits of every recorded value: 0.1 % resolution.
const SIGNIFICANT_DIGITS: u8 = 3;

/// The histogram every reader of one measurement feeds, in microseconds.
#[derive(Debug, Clone)]
pub struct SharedHistogram {
    inner: Arc<Mutex<Histogram<u64>>>,
}

impl Default for SharedHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedHistogram {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Self {
        // Cannot fail: the bounds are constants hdrhistogram accepts (low
        // 1, high at least twice low, digits within 0..=5).
        #[allow(clippy::expect_used)]
        let histogram = Histogram::new_with_bounds(1, MAX_LATENCY_US, SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
        Self {
            inner: Arc::new(Mutex::new(histogram)),
        }
    }

    /// A recorder for one reader.
    #[must_use]
    pub fn recorder(&self) -> Recorder {
        Recorder {
            shared: self.clone(),
            buffer: Vec::with_capacity(BATCH),
        }
    }

    /// Percentiles of everything recorded so far.
    #[must_use]
    pub fn summary(&self) -> LatencySummary {
        let histogram = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        LatencySummary::of(&histogram)
    }

    fn absorb(&self, samples: &[u64]) {
        let mut histogram = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        for &us in samples {
            histogram.saturating_record(us.clamp(1, MAX_LATENCY_US));
        }
    }
}

/// One reader's buffer in front of a [`SharedHistogram`].
#[derive(Debug)]
pub struct Recorder {
    shared: SharedHistogram,
    buffer: Vec<u64>,
}

impl Recorder {
    /// Records one latency in nanoseconds (kept in microseconds).
    pub fn record_ns(&mut self, ns: u64) {
        self.buffer.push(ns / 1000);
        if self.buffer.len() >= BATCH {
            self.flush();
        }
    }

    /// Moves the buffered samples into the shared histogram.
    pub fn flush(&mut self) {
        if !self.buffer.is_empty() {
            self.shared.absorb(&self.buffer);
            self.buffer.clear();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

/// What a report says of a latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Samples recorded.
    pub count: u64,
    /// The mean.
    pub mean_us: f64,
    /// The median.
    pub p50_us: u64,
    /// The 99th percentile.
    pub p99_us: u64,
    /// The 99.9th percentile.
    pub p999_us: u64,
    /// The largest sample.
    pub max_us: u64,
}

impl LatencySummary {
    fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            mean_us: (histogram.mean() * 10.0).round() / 10.0,
            p50_us: histogram.value_at_quantile(0.5),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_reach_the_summary_through_batches_and_drop() {
        let shared = SharedHistogram::new();
        let mut a = shared.recorder();
        let mut b = shared.recorder();
        for us in 1..=1000_u64 {
            a.record_ns(us * 1000);
            b.record_ns(us * 1000);
        }
        drop(a);
        drop(b);
        let summary = shared.summary();
        assert_eq!(summary.count, 2000);
        assert_eq!(summary.max_us, 1000);
        assert!((499..=501).contains(&summary.p50_us), "{summary:?}");
        assert!((989..=991).contains(&summary.p99_us), "{summary:?}");
    }

    #[test]
    fn an_empty_histogram_summarises_to_zeros() {
        assert_eq!(SharedHistogram::new().summary(), LatencySummary::default());
    }
}
