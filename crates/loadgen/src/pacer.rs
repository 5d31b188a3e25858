//! Open-loop pacing: when each message is due, independent of replies.
//!
//! Message `k` of a stream at `rate` per second is due at
//! `start + k / rate`. A sender asks how many are due now and sends them
//! all: if it was held up (a slow write, a late timer), the backlog goes out
//! at once (catch-up), so the offered rate holds over the run instead of
//! drifting down with every delay. Nothing is due at or after `end`, so a
//! run offers exactly `ceil(rate × duration)` messages.

use std::time::Duration;

use tokio::time::Instant;

/// The most messages one call hands out: a sender that fell far behind
/// still returns to its loop (and its stop signal) between batches.
pub const MAX_BATCH: u64 = 1024;

/// The schedule of one stream of messages.
#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    /// Nanoseconds between two messages.
    interval_ns: f64,
    /// Messages in the whole run.
    total: u64,
    /// Messages handed out so far.
    issued: u64,
}

impl Pacer {
    /// A stream of `rate` messages per second from `start` for `duration`.
    /// A rate that is not positive and finite offers nothing.
    #[must_use]
    pub fn new(rate: f64, start: Instant, duration: Duration) -> Self {
        let valid = rate.is_finite() && rate > 0.0;
        let total = if valid {
            // ceil(rate × duration): message k is due before the end iff
            // k < rate × duration. Saturating float-to-int cast.
            (rate * duration.as_secs_f64()).ceil() as u64
        } else {
            0
        };
        Self {
            start,
            interval_ns: if valid { 1e9 / rate } else { f64::INFINITY },
            total,
            issued: 0,
        }
    }

    /// Messages the whole run offers.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Messages handed out so far.
    #[must_use]
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// When message `k` is due.
    #[must_use]
    pub fn due_at(&self, k: u64) -> Instant {
        // Saturating float-to-int cast; k < total keeps it within the run.
        self.start + Duration::from_nanos((k as f64 * self.interval_ns) as u64)
    }

    /// When the next message is due, or `None` once the run offered all.
    #[must_use]
    pub fn next_due(&self) -> Option<Instant> {
        (self.issued < self.total).then(|| self.due_at(self.issued))
    }

    /// Hands out the messages due by `now` and not yet handed out (at most
    /// [`MAX_BATCH`]), as the range of their numbers.
    pub fn take_due(&mut self, now: Instant) -> std::ops::Range<u64> {
        let elapsed_ns = now.saturating_duration_since(self.start).as_nanos() as f64;
        // Messages 0..=floor(elapsed / interval) are due by now.
        let due = if now < self.start {
            0
        } else {
            ((elapsed_ns / self.interval_ns).floor() as u64).saturating_add(1)
        };
        let due = due.min(self.total);
        let from = self.issued;
        let to = due.max(from).min(from + MAX_BATCH);
        self.issued = to;
        from..to
    }

    /// Waits until the next message is due, then hands out every message
    /// due by then; an empty range once the run offered all.
    pub async fn tick(&mut self) -> std::ops::Range<u64> {
        let Some(at) = self.next_due() else {
            return self.issued..self.issued;
        };
        tokio::time::sleep_until(at).await;
        self.take_due(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_run_offers_rate_times_duration() {
        let start = Instant::now();
        let mut pacer = Pacer::new(200.0, start, Duration::from_secs(1));
        assert_eq!(pacer.total(), 200);
        let mut sent = 0;
        loop {
            let batch = pacer.tick().await;
            if batch.is_empty() {
                break;
            }
            sent += batch.end - batch.start;
        }
        assert_eq!(sent, 200);
        // The last one was due at 995 ms, before the end.
        assert_eq!(Instant::now() - start, Duration::from_millis(995));
    }

    #[tokio::test(start_paused = true)]
    async fn on_time_ticks_hand_out_one_message_each() {
        let start = Instant::now();
        let mut pacer = Pacer::new(100.0, start, Duration::from_secs(1));
        assert_eq!(pacer.tick().await, 0..1);
        assert_eq!(pacer.tick().await, 1..2);
        assert_eq!(Instant::now() - start, Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_sender_catches_up_at_once() {
        let start = Instant::now();
        let mut pacer = Pacer::new(1000.0, start, Duration::from_secs(1));
        assert_eq!(pacer.tick().await, 0..1);
        // Held up for 50 ms: messages 1..=50 are due now, all together.
        tokio::time::advance(Duration::from_millis(50)).await;
        assert_eq!(pacer.tick().await, 1..51);
        // Then back on schedule.
        assert_eq!(pacer.tick().await, 51..52);
        assert_eq!(Instant::now() - start, Duration::from_millis(51));
    }

    #[tokio::test(start_paused = true)]
    async fn a_backlog_comes_in_bounded_batches_and_never_past_the_run() {
        let start = Instant::now();
        let mut pacer = Pacer::new(10_000.0, start, Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(5)).await;
        let mut batches = 0;
        loop {
            let batch = pacer.tick().await;
            if batch.is_empty() {
                break;
            }
            assert!(batch.end - batch.start <= MAX_BATCH);
            batches += 1;
        }
        assert_eq!(pacer.issued(), 10_000);
        assert_eq!(batches, 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_in_the_future_waits_for_it() {
        let start = Instant::now() + Duration::from_millis(30);
        let mut pacer = Pacer::new(10.0, start, Duration::from_secs(1));
        assert_eq!(pacer.take_due(Instant::now()), 0..0);
        assert_eq!(pacer.tick().await, 0..1);
        assert_eq!(Instant::now(), start);
    }

    #[test]
    fn a_rate_that_is_not_positive_offers_nothing() {
        let start = Instant::now();
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let mut pacer = Pacer::new(rate, start, Duration::from_secs(1));
            assert_eq!(pacer.total(), 0);
            assert_eq!(pacer.next_due(), None);
            assert!(pacer.take_due(start + Duration::from_secs(2)).is_empty());
        }
    }

    #[test]
    fn a_fractional_product_rounds_up() {
        let pacer = Pacer::new(2.5, Instant::now(), Duration::from_secs(1));
        // Due at 0, 400 and 800 ms.
        assert_eq!(pacer.total(), 3);
    }
}
