//! The scenarios, and what they share: the run's context, the measuring
//! window around a phase, and waiting for deliveries to stop.
//!
//! Every scenario returns its own results; [`crate::run`] wraps them with
//! the parameters and both sides' CPU and memory into the report.

pub mod broadcast;
pub mod chat_mix;
pub mod echo;
pub mod fanout;
pub mod idle;
pub mod slow;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::client::{SetupError, Target};
use crate::clock::Clock;
use crate::procfs::{ProcessSample, ServerProcesses, own_cpu_s};

/// Handshakes (with their join) in flight at once in the timed scenarios:
/// enough to set up thousands of connections in seconds, and no more than
/// the ws-server's listen backlog holds (128, tokio's default as measured
/// with `ss -ltn`): past it the kernel drops SYNs, and each dropped client
/// retries a second later.
pub const CONNECT_IN_FLIGHT: usize = 128;

/// How long every connection of a scenario may take to be ready.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(120);

/// From "all ready" to the first message: lets every task see the start
/// before it is due, so no writer begins behind.
pub const START_DELAY: Duration = Duration::from_millis(50);

/// Deliveries are over once none came for this long...
pub const DRAIN_QUIET: Duration = Duration::from_secs(1);

/// ...or this long after the writers stopped, whichever comes first: an
/// overloaded server's backlog is its latency, not a reason to wait.
pub const DRAIN_MAX: Duration = Duration::from_secs(5);

/// How often the drain looks at the delivery count.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// What every scenario of a run works with.
#[derive(Debug, Clone)]
pub struct Context {
    /// Where to connect, and how.
    pub target: Target,
    /// The time base of every payload stamp.
    pub clock: Clock,
    /// The server processes (one, or each instance), when their ids were
    /// given.
    pub server: Option<ServerProcesses>,
    /// Bytes of every message's text.
    pub payload: usize,
}

impl Context {
    /// A context for `target`, the clock starting now.
    #[must_use]
    pub fn new(target: Target, server: Option<ServerProcesses>, payload: usize) -> Self {
        Self {
            target,
            clock: Clock::start(),
            server,
            payload,
        }
    }

    /// The server's memory and CPU time now (summed over instances), if
    /// it is known and readable.
    #[must_use]
    pub fn server_sample(&self) -> Option<ProcessSample> {
        self.server.as_ref().and_then(|s| s.sample().ok())
    }

    /// Starts measuring a phase.
    #[must_use]
    pub fn open_window(&self) -> Window {
        Window {
            started: Instant::now(),
            own_cpu_s: own_cpu_s(),
            server: self.server_sample(),
        }
    }
}

/// Why a scenario could not produce results.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The target is unusable.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// Not one connection of a kind the scenario needs could be opened.
    #[error("no {what} could connect; first error: {error}")]
    NoConnections {
        /// Which connections.
        what: &'static str,
        /// The first failure.
        error: String,
    },
}

/// A phase being measured: when it began, and both sides' CPU then.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    started: Instant,
    own_cpu_s: f64,
    server: Option<ProcessSample>,
}

/// What a phase cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WindowTotals {
    /// How long it lasted, seconds.
    pub wall_s: f64,
    /// The generator's CPU time in it, seconds.
    pub loadgen_cpu_s: f64,
    /// The server's CPU time in it, seconds (with --server-pid).
    pub server_cpu_s: Option<f64>,
}

impl Window {
    /// When the phase began.
    #[must_use]
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Ends the phase now.
    #[must_use]
    pub fn close(&self, cx: &Context) -> WindowTotals {
        let server_cpu_s = match (self.server, cx.server_sample()) {
            (Some(before), Some(after)) => Some(round3(after.cpu_s - before.cpu_s)),
            _ => None,
        };
        WindowTotals {
            wall_s: round3(self.started.elapsed().as_secs_f64()),
            loadgen_cpu_s: round3(own_cpu_s() - self.own_cpu_s),
            server_cpu_s,
        }
    }
}

/// Waits until `count` reaches `expected`, or stops growing for
/// [`DRAIN_QUIET`], or [`DRAIN_MAX`] passed; returns when it last grew
/// (`since` if it never did).
pub async fn drain(count: &AtomicU64, expected: u64, since: Instant) -> Instant {
    let give_up = Instant::now() + DRAIN_MAX;
    let mut seen = count.load(Ordering::Relaxed);
    let mut last_growth = since;
    loop {
        if seen >= expected {
            return Instant::now();
        }
        tokio::time::sleep(DRAIN_POLL).await;
        let now = Instant::now();
        let current = count.load(Ordering::Relaxed);
        if current != seen {
            seen = current;
            last_growth = now;
        }
        if seen >= expected {
            return now;
        }
        if now >= give_up || now.saturating_duration_since(last_growth.max(since)) >= DRAIN_QUIET {
            return last_growth;
        }
    }
}

/// Rounds to three decimals, so reports do not print float noise.
#[must_use]
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// `numerator / denominator`, or 0 when the denominator is not positive.
#[must_use]
pub fn per(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    }
}
