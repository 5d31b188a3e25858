//! `slow`: a fanout in which some readers stop reading after the first
//! second and keep their sockets open. It shows whether one stuck client
//! costs the others their messages, and whether the server lets stuck
//! clients go (and its memory with them).

use std::time::Duration;

use serde::Serialize;

use super::broadcast::{self, ReaderTotals, Spec, StalledFate};
use super::{Context, ScenarioError, per, round3};
use crate::cli::SlowArgs;
use crate::latency::LatencySummary;

/// When stalled readers stop reading, from the start.
pub const STALL_AFTER: Duration = Duration::from_secs(1);

/// `slow`'s results.
#[derive(Debug, Clone, Serialize)]
pub struct SlowResult {
    /// Messages the schedule offered.
    pub offered: u64,
    /// Messages sent.
    pub sent: u64,
    /// Connections that failed to set up.
    pub connect_failures: u32,
    /// What the readers that kept reading got.
    pub healthy: HealthyResult,
    /// What became of the readers that stopped.
    pub stalled: StalledResult,
    /// The server's RSS when deliveries ended, before any connection
    /// closed (with --server-pid).
    pub rss_kib_end: Option<u64>,
    /// The server's CPU seconds from the start to the last delivery.
    pub server_cpu_s: Option<f64>,
}

/// What the readers that kept reading got.
#[derive(Debug, Clone, Serialize)]
pub struct HealthyResult {
    /// How many.
    pub subscribers: u32,
    /// `sent` times `subscribers`.
    pub expected_deliveries: u64,
    /// Deliveries, loss, duplicates, early closes.
    #[serde(flatten)]
    pub totals: ReaderTotals,
    /// `deliveries / expected_deliveries`.
    pub delivered_fraction: f64,
    /// Send to receive.
    pub latency_us: LatencySummary,
}

/// What became of the readers that stopped.
#[derive(Debug, Clone, Serialize)]
pub struct StalledResult {
    /// How many stopped.
    pub count: u32,
    /// How many of them the server closed during the run.
    pub closed_by_server: u32,
    /// The slowest of those closes, seconds after the stall.
    pub max_closed_after_s: Option<f64>,
    /// Each one.
    pub each: Vec<StalledFate>,
}

/// Runs `args`.
///
/// # Errors
/// When no reader or no writer could connect.
pub async fn run(cx: &Context, args: &SlowArgs) -> Result<serde_json::Value, ScenarioError> {
    // Stalled readers spread over the indices, so they join among the others.
    let every = (args.subscribers / args.stalled.max(1)).max(1);
    let stalled = (0..args.stalled).map(|i| i * every).collect();
    let spec = Spec {
        subscribers: args.subscribers,
        publishers: args.publishers,
        rate: args.rate,
        duration: args.duration,
        stalled,
        stall_after: STALL_AFTER,
        label: "slow".to_owned(),
    };
    let outcome = broadcast::run(cx, &spec).await?;
    let expected = outcome.sent * u64::from(outcome.healthy_ready);
    let closed: Vec<f64> = outcome
        .stalled
        .iter()
        .filter_map(|s| s.server_closed_after_s)
        .collect();
    let result = SlowResult {
        offered: outcome.offered,
        sent: outcome.sent,
        connect_failures: outcome.connect_failures,
        healthy: HealthyResult {
            subscribers: outcome.healthy_ready,
            expected_deliveries: expected,
            totals: outcome.healthy,
            delivered_fraction: round3(per(outcome.healthy.deliveries as f64, expected as f64)),
            latency_us: outcome.latency,
        },
        stalled: StalledResult {
            count: outcome.stalled.len() as u32,
            closed_by_server: closed.len() as u32,
            max_closed_after_s: closed.iter().copied().reduce(f64::max),
            each: outcome.stalled.clone(),
        },
        rss_kib_end: outcome.server_rss_kib_end,
        server_cpu_s: outcome.window.server_cpu_s,
    };
    // Serializing plain numbers and strings cannot fail.
    Ok(serde_json::to_value(result).unwrap_or_default())
}
