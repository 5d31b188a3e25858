//! A budget of log lines per second, for lines that clients can cause.
//!
//! Anyone can open a thousand sockets a second and send garbage on each;
//! a line per refused handshake would then turn the log into the attack's
//! amplifier. [`LogLimit`] lets a few lines a second through and counts the
//! rest, so that one line later says how many were left out.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Lines of one kind written per window at most.
pub(crate) const LINES_PER_WINDOW: u32 = 10;

/// The window over which [`LINES_PER_WINDOW`] applies.
pub(crate) const WINDOW: Duration = Duration::from_secs(1);

/// Counts lines per window; see the module docs.
#[derive(Debug)]
pub(crate) struct LogLimit {
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    written: u32,
    /// Lines left out since the last summary.
    suppressed: u64,
}

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Write it; if `suppressed_before` is not zero, first write one line
    /// saying that many were left out.
    Write { suppressed_before: u64 },
    /// Leave it out: the window's budget is spent.
    Suppress,
}

impl LogLimit {
    /// A limit whose first window starts at `now`.
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            state: Mutex::new(Window {
                started: now,
                written: 0,
                suppressed: 0,
            }),
        }
    }

    /// Decides about one line at `now`.
    pub(crate) fn admit(&self, now: Instant) -> Verdict {
        let mut window = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut suppressed_before = 0;
        if now.saturating_duration_since(window.started) >= WINDOW {
            window.started = now;
            window.written = 0;
            suppressed_before = std::mem::take(&mut window.suppressed);
        }
        if window.written < LINES_PER_WINDOW {
            window.written += 1;
            Verdict::Write { suppressed_before }
        } else {
            window.suppressed += 1;
            Verdict::Suppress
        }
    }

    /// How many lines were left out in a window that has ended by `now`;
    /// the count is then reset. Called periodically, so that the summary is
    /// written even when no further line comes.
    pub(crate) fn take_suppressed(&self, now: Instant) -> u64 {
        let mut window = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if now.saturating_duration_since(window.started) >= WINDOW {
            std::mem::take(&mut window.suppressed)
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_cut_after_the_budget_and_summed_up_in_the_next_window() {
        let start = Instant::now();
        let limit = LogLimit::new(start);
        for _ in 0..LINES_PER_WINDOW {
            assert_eq!(
                limit.admit(start),
                Verdict::Write {
                    suppressed_before: 0
                }
            );
        }
        for _ in 0..25 {
            assert_eq!(limit.admit(start + WINDOW / 2), Verdict::Suppress);
        }
        assert_eq!(
            limit.admit(start + WINDOW),
            Verdict::Write {
                suppressed_before: 25
            }
        );
        assert_eq!(
            limit.admit(start + WINDOW),
            Verdict::Write {
                suppressed_before: 0
            }
        );
    }

    #[test]
    fn the_summary_is_taken_once_the_window_is_over() {
        let start = Instant::now();
        let limit = LogLimit::new(start);
        for _ in 0..LINES_PER_WINDOW + 3 {
            let _ = limit.admit(start);
        }
        assert_eq!(limit.take_suppressed(start + WINDOW / 2), 0);
        assert_eq!(limit.take_suppressed(start + WINDOW), 3);
        assert_eq!(limit.take_suppressed(start + WINDOW * 2), 0);
    }
}
