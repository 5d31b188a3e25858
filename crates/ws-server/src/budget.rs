//! A connection's frame budget: how many requests it may send per second,
//! and how many refusals it may ignore before it is closed.
//!
//! A token bucket (governor's GCRA) refills at `max_frames_per_second` up
//! to `frame_burst`; a post costs one token, a join or a `history` request
//! [`crate::settings::JOIN_COST`], since each may send many messages back.
//! A request over budget is refused with `rate_limited` and counts a
//! strike; `rate_limit_strikes` strikes in a row close the
//! connection with 1008, since a client that ignores the error is not
//! misjudging its rate.
//!
//! The bucket reads tokio's clock, so that tests on paused time control it.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// Tokio's clock, as governor reads it: time since the limiter started.
#[derive(Debug, Clone)]
struct TokioClock {
    start: Instant,
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.start.elapsed())
    }
}

/// What the budget says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within budget: carry it out.
    Allowed,
    /// Over budget: refuse it with `rate_limited`.
    Refused,
    /// Over budget once too often in a row: close the connection.
    Exhausted,
}

/// One connection's budget.
#[derive(Debug)]
pub(crate) struct Budget {
    bucket: RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>,
    /// Requests refused since the last one allowed.
    strikes: AtomicU32,
    max_strikes: u32,
}

impl Budget {
    /// A full bucket of `burst` tokens refilling at `per_second`, closing
    /// after `max_strikes` refusals in a row (settings validation keeps
    /// each at least 1).
    pub fn new(per_second: u32, burst: u32, max_strikes: u32) -> Self {
        let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(rate).allow_burst(burst);
        let clock = TokioClock {
            start: Instant::now(),
        };
        Self {
            bucket: RateLimiter::direct_with_clock(quota, clock),
            strikes: AtomicU32::new(0),
            max_strikes,
        }
    }

    /// Spends `cost` tokens for one request, if the bucket holds them.
    pub fn spend(&self, cost: u32) -> Verdict {
        let cost = NonZeroU32::new(cost).unwrap_or(NonZeroU32::MIN);
        if matches!(self.bucket.check_n(cost), Ok(Ok(()))) {
            self.strikes.store(0, Ordering::Relaxed);
            return Verdict::Allowed;
        }
        let strikes = self.strikes.fetch_add(1, Ordering::Relaxed) + 1;
        if strikes >= self.max_strikes {
            Verdict::Exhausted
        } else {
            Verdict::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn budget(rate: u32, burst: u32, strikes: u32) -> Budget {
        Budget::new(rate, burst, strikes)
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_allowed_then_the_rate_refills_it() {
        let budget = budget(10, 5, 100);
        for _ in 0..5 {
            assert_eq!(budget.spend(1), Verdict::Allowed);
        }
        assert_eq!(budget.spend(1), Verdict::Refused);
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(budget.spend(1), Verdict::Allowed);
        assert_eq!(budget.spend(1), Verdict::Refused);
    }

    #[tokio::test(start_paused = true)]
    async fn a_join_costs_more_than_a_post() {
        let budget = budget(10, 5, 100);
        assert_eq!(budget.spend(4), Verdict::Allowed);
        assert_eq!(budget.spend(4), Verdict::Refused);
        assert_eq!(budget.spend(1), Verdict::Allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn ignoring_refusals_exhausts_the_budget_and_an_allowed_request_forgives() {
        let budget = budget(10, 1, 3);
        assert_eq!(budget.spend(1), Verdict::Allowed);
        assert_eq!(budget.spend(1), Verdict::Refused);
        assert_eq!(budget.spend(1), Verdict::Refused);
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(budget.spend(1), Verdict::Allowed);
        assert_eq!(budget.spend(1), Verdict::Refused);
        assert_eq!(budget.spend(1), Verdict::Refused);
        assert_eq!(budget.spend(1), Verdict::Exhausted);
    }
}
