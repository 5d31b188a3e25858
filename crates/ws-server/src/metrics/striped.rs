//! Counters for the hot path, striped over the threads that update them.
//!
//! Every member's writer adds to the same few figures at each wake-up
//! (messages and bytes sent, the outbox depth). One atomic per figure is
//! one cache line that every worker thread takes in turn, once per writer
//! wake-up: a post to a room of a thousand spreads thousands of such
//! transfers over the workers. So each figure is split into [`STRIPES`]
//! cache lines, each thread adds to its own, and a scrape sums them: what
//! `LongAdder` does in Java. (prometheus-client's `Counter` is one atomic,
//! and its `Histogram` takes a mutex per observation.) Measured on two
//! cores, fan-out with the metrics costs the same CPU per delivery as
//! without them, within the run-to-run noise.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Stripes per figure: more than the worker threads of any usual machine
/// share at once; a thread's stripe is its number modulo this.
const STRIPES: usize = 16;

/// Hands each thread its stripe, in turn.
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
}

/// This thread's stripe.
fn stripe() -> usize {
    STRIPE.with(|stripe| *stripe)
}

/// One value on a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Line(AtomicU64);

/// A monotonic counter striped over the threads; cheap to clone (the
/// clones share the value).
#[derive(Debug, Clone, Default)]
pub struct StripedCounter {
    lines: Arc<[Line; STRIPES]>,
}

impl StripedCounter {
    /// Adds one.
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Adds `n`.
    pub fn inc_by(&self, n: u64) {
        self.lines[stripe()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// The total so far.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.lines
            .iter()
            .map(|line| line.0.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

impl TypedMetric for StripedCounter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for StripedCounter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, u64, u64>(&self.get(), None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// Upper bounds of [`DepthHistogram`]'s buckets: 1, 2, 4, ... 4096 frames.
const DEPTH_BUCKETS: usize = 13;

/// One thread's share of a [`DepthHistogram`], on cache lines of its own.
#[derive(Debug, Default)]
#[repr(align(64))]
struct DepthStripe {
    /// Observations per bucket (not cumulative); the last is +Inf.
    buckets: [AtomicU64; DEPTH_BUCKETS + 1],
    sum: AtomicU64,
}

/// A histogram of small counts in power-of-two buckets, striped like
/// [`StripedCounter`] and without a lock.
#[derive(Debug, Clone, Default)]
pub struct DepthHistogram {
    stripes: Arc<[DepthStripe; STRIPES]>,
}

impl DepthHistogram {
    /// Records one observation of `depth`.
    pub fn observe(&self, depth: usize) {
        // Bucket i holds depths in (2^(i-1), 2^i]; 0 and 1 go to the first.
        let bucket = usize::try_from(depth.max(1).next_power_of_two().trailing_zeros())
            .unwrap_or(DEPTH_BUCKETS)
            .min(DEPTH_BUCKETS);
        let stripe = &self.stripes[stripe()];
        stripe.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        stripe
            .sum
            .fetch_add(u64::try_from(depth).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The sum and count of the observations so far, and each bucket's
    /// own count with its upper bound: the encoder makes them cumulative.
    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut count = 0;
        let mut buckets = Vec::with_capacity(DEPTH_BUCKETS + 1);
        for i in 0..=DEPTH_BUCKETS {
            let observed: u64 = self
                .stripes
                .iter()
                .map(|stripe| stripe.buckets[i].load(Ordering::Relaxed))
                .sum();
            count += observed;
            let bound = if i == DEPTH_BUCKETS {
                f64::INFINITY
            } else {
                f64::from(1_u32 << i)
            };
            buckets.push((bound, observed));
        }
        let sum: u64 = self
            .stripes
            .iter()
            .map(|stripe| stripe.sum.load(Ordering::Relaxed))
            .sum();
        // Counts stay far below 2^53, where f64 is exact.
        #[allow(clippy::cast_precision_loss)]
        let sum = sum as f64;
        (sum, count, buckets)
    }
}

impl TypedMetric for DepthHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for DepthHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_striped_counter_sums_what_every_thread_added() {
        let counter = StripedCounter::default();
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        counter.inc();
                    }
                    counter.inc_by(5);
                })
            })
            .collect();
        for thread in threads {
            assert!(thread.join().is_ok());
        }
        assert_eq!(counter.get(), 20 * 1005);
    }

    #[test]
    fn lines_are_a_cache_line_apart() {
        assert_eq!(std::mem::align_of::<Line>(), 64);
        assert_eq!(std::mem::size_of::<Line>(), 64);
        assert_eq!(std::mem::align_of::<DepthStripe>(), 64);
    }

    #[test]
    fn observations_from_several_threads_are_all_counted() {
        let histogram = DepthHistogram::default();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let histogram = histogram.clone();
                std::thread::spawn(move || histogram.observe(3))
            })
            .collect();
        for thread in threads {
            assert!(thread.join().is_ok());
        }
        let (sum, count, buckets) = histogram.snapshot();
        assert_eq!(count, 4);
        assert!((sum - 12.0).abs() < f64::EPSILON);
        assert_eq!(buckets[2], (4.0, 4));
    }

    #[test]
    fn depths_land_in_power_of_two_buckets() {
        let histogram = DepthHistogram::default();
        for depth in [0, 1, 2, 3, 4, 5, 4096, 10_000] {
            histogram.observe(depth);
        }
        let (sum, count, buckets) = histogram.snapshot();
        assert_eq!(count, 8);
        assert!((sum - 14_111.0).abs() < f64::EPSILON);
        // <=1: 0 and 1; (1, 2]: 2; (2, 4]: 3, 4; (4, 8]: 5; (2048, 4096]:
        // 4096; above: 10 000.
        assert_eq!(buckets[0], (1.0, 2));
        assert_eq!(buckets[1], (2.0, 1));
        assert_eq!(buckets[2], (4.0, 2));
        assert_eq!(buckets[3], (8.0, 1));
        assert_eq!(buckets[4], (16.0, 0));
        assert_eq!(buckets[12], (4096.0, 1));
        assert_eq!(buckets[13], (f64::INFINITY, 1));
    }
}
