//! `idle`: open N connections, hold them, close them. How fast the server
//! accepts (handshakes per second), what fails, and what an idle
//! connection costs it in memory.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Context, SETUP_TIMEOUT, ScenarioError, per, round3};
use crate::cli::IdleArgs;
use crate::client;
use crate::latency::{LatencySummary, SharedHistogram};
use crate::progress::Progress;

/// After the last handshake, before reading the server's memory: lets it
/// finish what each new connection allocates (welcome, buffers).
const SETTLE: Duration = Duration::from_millis(500);

/// How long closing may take before the run stops waiting.
const CLOSE_DEADLINE: Duration = Duration::from_secs(30);

/// `idle`'s results.
#[derive(Debug, Clone, Serialize)]
pub struct IdleResult {
    /// Connections open at once.
    pub connected: u32,
    /// Connections that failed to open.
    pub failures: u32,
    /// The first of those failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Handshakes per second, from the first completed to the last.
    pub connect_rate_per_s: f64,
    /// Seconds from the first attempt to the last handshake.
    pub connect_wall_s: f64,
    /// Time per handshake (in duplex mode, until `welcome`).
    pub handshake_us: LatencySummary,
    /// Connections that ended while held.
    pub dropped_while_held: u32,
    /// The server's RSS with every connection open (with --server-pid).
    pub rss_kib_open: Option<u64>,
    /// `(rss_kib_open - rss before) / connected`.
    pub rss_kib_per_connection: Option<f64>,
    /// Seconds to close them all.
    pub close_wall_s: f64,
    /// The generator's CPU seconds while connecting.
    pub loadgen_connect_cpu_s: f64,
    /// The server's CPU seconds while connecting (with --server-pid).
    pub server_connect_cpu_s: Option<f64>,
}

/// Runs `args`.
///
/// # Errors
/// When not one connection opened.
pub async fn run(cx: &Context, args: &IdleArgs) -> Result<serde_json::Value, ScenarioError> {
    let rss_before = cx.server_sample().map(|s| s.rss_kib);
    let limiter = Arc::new(Semaphore::new(args.in_flight as usize));
    let handshakes = SharedHistogram::new();
    let stop = CancellationToken::new();
    let _stop_guard = stop.clone().drop_guard();
    let (ready_tx, mut ready_rx) = mpsc::channel(args.connections as usize);
    let window = cx.open_window();
    let tasks: Vec<_> = (0..args.connections)
        .map(|index| {
            let cx = cx.clone();
            let limiter = Arc::clone(&limiter);
            let mut recorder = handshakes.recorder();
            let ready = ready_tx.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let connected = {
                    let _permit = limiter.acquire().await;
                    let began = Instant::now();
                    let connected = cx.target.connect(u64::from(index)).await;
                    let took = u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    recorder.record_ns(took);
                    connected
                };
                drop(recorder);
                let mut ws = match connected {
                    Ok(ws) => ws,
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string())).await;
                        return false;
                    }
                };
                let _ = ready.send(Ok(Instant::now())).await;
                drop(ready);
                // Hold: reading answers the server's pings.
                let dropped = loop {
                    tokio::select! {
                        biased;
                        () = stop.cancelled() => break false,
                        frame = ws.next() => if !matches!(frame, Some(Ok(_))) { break true },
                    }
                };
                client::close(ws).await;
                dropped
            })
        })
        .collect();
    drop(ready_tx);

    let mut connected = 0_u32;
    let mut first_error = None;
    let (mut first, mut last) = (None, None);
    let deadline = Instant::now() + SETUP_TIMEOUT;
    for _ in 0..args.connections {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(Ok(at))) => {
                connected += 1;
                first.get_or_insert(at);
                last = Some(at);
            }
            Ok(Some(Err(e))) => {
                first_error.get_or_insert(e);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let connecting = window.close(cx);
    if connected == 0 {
        return Err(ScenarioError::NoConnections {
            what: "connection",
            error: first_error.unwrap_or_else(|| "timed out".to_owned()),
        });
    }
    let span = match (first, last) {
        (Some(first), Some(last)) => last.saturating_duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    let connect_wall_s = last.map_or(0.0, |last| {
        last.saturating_duration_since(window.started())
            .as_secs_f64()
    });

    tokio::time::sleep(SETTLE).await;
    let rss_open = cx.server_sample().map(|s| s.rss_kib);
    {
        let _progress = Progress::timed("holding", args.hold);
        tokio::time::sleep(args.hold).await;
    }
    stop.cancel();
    let closing = Instant::now();
    let mut dropped_while_held = 0;
    let _ = tokio::time::timeout(CLOSE_DEADLINE, async {
        for task in tasks {
            dropped_while_held += u32::from(task.await.unwrap_or(false));
        }
    })
    .await;
    let close_wall_s = closing.elapsed().as_secs_f64();

    let result = IdleResult {
        connected,
        failures: args.connections - connected,
        first_error,
        // N handshakes completed over N - 1 intervals.
        connect_rate_per_s: round3(per(f64::from(connected.saturating_sub(1)), span)),
        connect_wall_s: round3(connect_wall_s),
        handshake_us: handshakes.summary(),
        dropped_while_held,
        rss_kib_open: rss_open,
        rss_kib_per_connection: match (rss_before, rss_open) {
            (Some(before), Some(open)) => {
                Some(round3((open as f64 - before as f64) / f64::from(connected)))
            }
            _ => None,
        },
        close_wall_s: round3(close_wall_s),
        loadgen_connect_cpu_s: connecting.loadgen_cpu_s,
        server_connect_cpu_s: connecting.server_cpu_s,
    };
    // Serializing plain numbers and strings cannot fail.
    Ok(serde_json::to_value(result).unwrap_or_default())
}
