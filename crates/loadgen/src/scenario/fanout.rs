//! `fanout`: readers and open-loop writers in one room, at one rate or at
//! a ladder of rates, each step on fresh connections so that one step's
//! backlog cannot spill into the next.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::broadcast::{self, Outcome, Spec};
use super::{Context, ScenarioError, per, round3};
use crate::cli::FanoutArgs;
use crate::latency::LatencySummary;

/// A step kept up when it sent at least this share of what it offered...
const MIN_SENT_SHARE: f64 = 0.99;

/// ...lost at most this share of the expected deliveries...
const MAX_LOST_SHARE: f64 = 0.001;

/// ...and delivered 99 % of messages within this, microseconds.
const MAX_P99_US: u64 = 100_000;

/// Between ladder steps: the previous step's connections finish closing.
const STEP_PAUSE: Duration = Duration::from_millis(500);

/// One rate's results.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// Messages per second offered by all writers together.
    pub rate: f64,
    /// Messages the schedule offered.
    pub offered: u64,
    /// Messages sent.
    pub sent: u64,
    /// Offered messages per second of the run.
    pub offered_rate: f64,
    /// Sent messages per second of the run.
    pub send_rate: f64,
    /// Readers connected and joined.
    pub subscribers_ready: u32,
    /// Writers connected and joined.
    pub publishers_ready: u32,
    /// Connections that failed to set up.
    pub connect_failures: u32,
    /// The first of those failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Writers whose connection failed while sending.
    pub publisher_errors: u32,
    /// The first of those failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher_error: Option<String>,
    /// Messages received by all readers.
    pub deliveries: u64,
    /// `sent` times readers.
    pub expected_deliveries: u64,
    /// Deliveries per second, from the start to the last delivery.
    pub deliveries_per_s: f64,
    /// Messages some reader never received.
    pub lost: u64,
    /// Repeated deliveries.
    pub duplicated: u64,
    /// Deliveries out of their writer's order (late, not lost).
    pub reordered: u64,
    /// Readers whose connection ended during the run.
    pub closed_early: u32,
    /// How they ended (`close CODE`, `ended`, `error: ...`), and how many
    /// each way.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub closed_early_reasons: BTreeMap<String, u32>,
    /// Send to receive, over every delivery.
    pub latency_us: LatencySummary,
    /// How late writers sent against their schedule: the generator's own
    /// lag, kept out of `latency_us`.
    pub send_lag_us: LatencySummary,
    /// Seconds from the start to the last delivery.
    pub delivery_span_s: f64,
    /// The generator's CPU seconds in that span.
    pub loadgen_cpu_s: f64,
    /// The server's CPU seconds in that span (with --server-pid).
    pub server_cpu_s: Option<f64>,
    /// The server's CPU seconds per million deliveries.
    pub server_cpu_s_per_million: Option<f64>,
    /// Sent at least 99 % of offered, lost at most 0.1 %, p99 at most
    /// 100 ms.
    pub kept_up: bool,
}

impl StepResult {
    /// The results of `outcome`, run at `rate` for `duration`.
    #[must_use]
    pub fn of(outcome: &Outcome, rate: f64, duration: Duration) -> Self {
        let seconds = duration.as_secs_f64();
        let expected = outcome.sent * u64::from(outcome.healthy_ready);
        let deliveries = outcome.healthy.deliveries;
        let lost = outcome.healthy.counts.lost;
        let kept_up = outcome.sent as f64 >= MIN_SENT_SHARE * outcome.offered as f64
            && lost as f64 <= MAX_LOST_SHARE * expected as f64
            && outcome.latency.p99_us <= MAX_P99_US;
        Self {
            rate,
            offered: outcome.offered,
            sent: outcome.sent,
            offered_rate: round3(per(outcome.offered as f64, seconds)),
            send_rate: round3(per(outcome.sent as f64, seconds)),
            subscribers_ready: outcome.subscribers_ready,
            publishers_ready: outcome.publishers_ready,
            connect_failures: outcome.connect_failures,
            first_error: outcome.first_error.clone(),
            publisher_errors: outcome.publisher_errors,
            publisher_error: outcome.publisher_error.clone(),
            deliveries,
            expected_deliveries: expected,
            deliveries_per_s: round3(per(deliveries as f64, outcome.delivery_span_s)),
            lost,
            duplicated: outcome.healthy.counts.duplicated,
            reordered: outcome.healthy.counts.reordered,
            closed_early: outcome.healthy.closed_early,
            closed_early_reasons: outcome.closed_early_reasons.clone(),
            latency_us: outcome.latency,
            send_lag_us: outcome.send_lag,
            delivery_span_s: round3(outcome.delivery_span_s),
            loadgen_cpu_s: outcome.window.loadgen_cpu_s,
            server_cpu_s: outcome.window.server_cpu_s,
            server_cpu_s_per_million: outcome
                .window
                .server_cpu_s
                .map(|cpu| round3(per(cpu * 1e6, deliveries as f64))),
            kept_up,
        }
    }
}

/// What a ladder found.
#[derive(Debug, Clone, Serialize)]
pub struct LadderResult {
    /// Each rate's results, in the order run.
    pub steps: Vec<StepResult>,
    /// The highest rate that kept up, if any did.
    pub highest_kept_up_rate: Option<f64>,
    /// Why the ladder ended before its last rate, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_early: Option<String>,
}

/// Runs one step at `rate`.
///
/// # Errors
/// When no reader or no writer could connect.
pub async fn step(cx: &Context, args: &FanoutArgs, rate: f64) -> Result<StepResult, ScenarioError> {
    let spec = Spec {
        subscribers: args.subscribers,
        publishers: args.publishers,
        rate,
        duration: args.duration,
        stalled: Vec::new(),
        stall_after: Duration::ZERO,
        label: format!("fanout {rate}/s"),
    };
    let outcome = broadcast::run(cx, &spec).await?;
    Ok(StepResult::of(&outcome, rate, args.duration))
}

/// Runs `args`: one step, or each rate of the ladder.
///
/// # Errors
/// When a step's readers or writers could not connect at all.
pub async fn run(cx: &Context, args: &FanoutArgs) -> Result<serde_json::Value, ScenarioError> {
    let Some(ladder) = &args.ladder else {
        let result = step(cx, args, args.rate).await?;
        return Ok(serde_json::to_value(result).unwrap_or_default());
    };
    let mut steps: Vec<StepResult> = Vec::with_capacity(ladder.len());
    let mut failed_in_a_row = 0;
    let mut ended_early = None;
    for (i, rate) in ladder.iter().enumerate() {
        if failed_in_a_row >= args.give_up_after.max(1) {
            ended_early = Some(format!(
                "{failed_in_a_row} steps in a row did not keep up; {rate}/s and the rates after it not run"
            ));
            break;
        }
        if i > 0 {
            tokio::time::sleep(STEP_PAUSE).await;
        }
        let result = match step(cx, args, *rate).await {
            Ok(result) => result,
            // A server that no longer takes connections ends the ladder;
            // the steps before it stand.
            Err(e) if !steps.is_empty() => {
                ended_early = Some(format!("{rate}/s: {e}"));
                break;
            }
            Err(e) => return Err(e),
        };
        if result.kept_up {
            failed_in_a_row = 0;
        } else {
            failed_in_a_row += 1;
        }
        eprintln!(
            "step {rate}/s: sent {}, {:.0} deliveries/s, lost {}, p99 {} us, kept up: {}",
            result.sent,
            result.deliveries_per_s,
            result.lost,
            result.latency_us.p99_us,
            result.kept_up
        );
        steps.push(result);
    }
    let highest_kept_up_rate = steps
        .iter()
        .filter(|s| s.kept_up)
        .map(|s| s.rate)
        .reduce(f64::max);
    Ok(serde_json::to_value(LadderResult {
        steps,
        highest_kept_up_rate,
        ended_early,
    })
    .unwrap_or_default())
}
