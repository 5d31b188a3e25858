//! duplex-bench: bounded load on Duplex's ws-server, or on a plain relay
//! server, from this machine to this machine.
//!
//! [`run`] takes the parsed command line and returns a [`Report`]: the
//! scenario's results with both sides' CPU time and the server's memory
//! around them, so a reader can tell which side ran out first. The binary
//! (`src/main.rs`) only parses, picks a runtime and prints.
//!
//! Data flows one way: the [`cli`] settings build a [`client::Target`];
//! a scenario opens connections to it, writers stamp [`payload`]s on a
//! [`pacer`]'s schedule, readers cut payloads out of frames in place and
//! feed [`latency`] and [`sequence`]; [`procfs`] reads the server and this
//! process; [`report`] prints.

pub mod cli;
pub mod client;
pub mod clock;
pub mod latency;
pub mod pacer;
pub mod payload;
pub mod procfs;
pub mod progress;
pub mod raw;
pub mod report;
pub mod scenario;
pub mod sequence;

use cli::{Cli, Command};
use client::Target;
use procfs::{ServerProcesses, open_file_limit, own_cpu_s};
use report::{ProcessReport, Report, ServerReport};
use scenario::{Context, ScenarioError, per, round3};
use serde_json::Value;
use tokio::time::Instant;

/// Files the generator keeps for itself beside its connections.
const SPARE_FILES: u64 = 64;

/// Why a run did not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The settings are out of bounds.
    #[error(transparent)]
    Bounds(#[from] cli::BoundsError),
    /// The target or the server process cannot be used.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The server process cannot be read.
    #[error("--server-pid {pid}: {error}")]
    ServerPid {
        /// The id given.
        pid: u32,
        /// Why /proc cannot read it.
        error: std::io::Error,
    },
    /// More connections than this process may open files.
    #[error("{wanted} connections need {needed} open files; this process may open {limit}")]
    FileLimit {
        /// Connections asked for.
        wanted: u64,
        /// Files they need.
        needed: u64,
        /// The limit in force.
        limit: u64,
    },
}

/// Runs the scenario `cli` names and reports on it.
///
/// # Errors
/// Settings out of bounds, an unusable target or server pid, or a scenario
/// that could not connect at all.
pub async fn run(cli: &Cli) -> Result<Report, RunError> {
    cli.check_bounds()?;
    let wanted = u64::from(connections_of(&cli.command));
    let limit = open_file_limit();
    if wanted + SPARE_FILES > limit {
        return Err(RunError::FileLimit {
            wanted,
            needed: wanted + SPARE_FILES,
            limit,
        });
    }
    let server = ServerProcesses::new(&cli.server_pid)
        .map_err(|(pid, error)| RunError::ServerPid { pid, error })?;
    let target = Target::new(&cli.url, cli.mode, cli.secret.as_deref())
        .await
        .map_err(ScenarioError::from)?;
    let cx = Context::new(target, server, cli.payload);

    let began = Instant::now();
    let cpu_before = own_cpu_s();
    let each_before = server_samples(&cx);
    let (params, results) = match &cli.command {
        Command::Idle(args) => (to_value(args), scenario::idle::run(&cx, args).await?),
        Command::Echo(args) => (to_value(args), scenario::echo::run(&cx, args).await?),
        Command::Fanout(args) => (to_value(args), scenario::fanout::run(&cx, args).await?),
        Command::Slow(args) => (to_value(args), scenario::slow::run(&cx, args).await?),
        Command::ChatMix(args) => (to_value(args), scenario::chat_mix::run(&cx, args).await?),
    };
    let wall_s = began.elapsed().as_secs_f64();
    let loadgen_cpu_s = own_cpu_s() - cpu_before;
    let server_report = match (&cx.server, each_before, server_samples(&cx)) {
        (Some(server), Some(before), Some(after)) => {
            let each: Vec<ProcessReport> = server
                .pids()
                .into_iter()
                .zip(before.iter().zip(&after))
                .map(|(pid, (before, after))| ProcessReport {
                    pid,
                    rss_kib_before: before.rss_kib,
                    rss_kib_after: after.rss_kib,
                    cpu_s: round3(after.cpu_s - before.cpu_s),
                })
                .collect();
            let cpu_s: f64 = after
                .iter()
                .zip(&before)
                .map(|(a, b)| a.cpu_s - b.cpu_s)
                .sum();
            Some(ServerReport {
                pid: each.first().map_or(0, |p| p.pid),
                rss_kib_before: before.iter().map(|s| s.rss_kib).sum(),
                rss_kib_after: after.iter().map(|s| s.rss_kib).sum(),
                cpu_s: round3(cpu_s),
                cpu_util: round3(per(cpu_s, wall_s)),
                // One process says it all above.
                each: if each.len() > 1 { each } else { Vec::new() },
            })
        }
        _ => None,
    };
    Ok(Report {
        scenario: cli.command.name(),
        mode: cli.mode,
        params: with_globals(params, cli),
        results,
        wall_s: round3(wall_s),
        loadgen_cpu_s: round3(loadgen_cpu_s),
        loadgen_cpu_util: round3(per(loadgen_cpu_s, wall_s)),
        server: server_report,
    })
}

/// Each server process's memory and CPU time now, if all are readable.
fn server_samples(cx: &Context) -> Option<Vec<procfs::ProcessSample>> {
    cx.server.as_ref().and_then(|s| s.samples().ok())
}

/// Connections a scenario holds open at once, at most.
fn connections_of(command: &Command) -> u32 {
    match command {
        Command::Idle(a) => a.connections,
        Command::Echo(a) => a.connections,
        Command::Fanout(a) => a.subscribers + a.publishers,
        Command::Slow(a) => a.subscribers + a.publishers,
        // Churn holds a leaving and an arriving member in a slot for at
        // most an arrival's timeouts plus a departure's close.
        Command::ChatMix(a) => {
            let overlap = client::CONNECT_TIMEOUT + client::JOIN_TIMEOUT + client::CLOSE_TIMEOUT;
            let in_transit = (a.churn * overlap.as_secs_f64()).ceil();
            // Bounded by the check of --churn (at most MAX_RATE).
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let in_transit = in_transit.min(f64::from(a.connections)) as u32;
            a.connections.saturating_add(in_transit)
        }
    }
}

fn to_value(args: &impl serde::Serialize) -> Value {
    // Serializing numbers and strings cannot fail.
    serde_json::to_value(args).unwrap_or_default()
}

/// The scenario's settings plus the global ones (never the secret).
fn with_globals(mut params: Value, cli: &Cli) -> Value {
    if let Some(fields) = params.as_object_mut() {
        // One URL as before; several joined with commas, in split order.
        fields.insert("url".to_owned(), cli.url.join(",").into());
        fields.insert("payload_bytes".to_owned(), cli.payload.into());
        fields.insert("threads".to_owned(), cli.threads.into());
    }
    params
}
