//! `echo`: every connection keeps exactly one message in flight: it sends,
//! waits for its own message to come back (skipping everyone else's), and
//! sends the next. Closed-loop, so the figure is round trips per second at
//! a given concurrency, and the latency of each.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{CONNECT_IN_FLIGHT, Context, SETUP_TIMEOUT, START_DELAY, ScenarioError, per, round3};
use crate::cli::EchoArgs;
use crate::client::{self, Ws};
use crate::latency::{LatencySummary, Recorder, SharedHistogram};
use crate::payload::{Payload, text_of};
use crate::progress::Progress;

/// The room every connection joins.
const ROOM: &str = "bench-echo";

/// How long a message sent before the end may take to come back before it
/// counts as timed out.
const ECHO_GRACE: Duration = Duration::from_secs(2);

/// `echo`'s results.
#[derive(Debug, Clone, Serialize)]
pub struct EchoResult {
    /// Connections that took part.
    pub connections_ready: u32,
    /// Connections that failed to set up.
    pub connect_failures: u32,
    /// The first of those failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Messages that came back to their sender.
    pub round_trips: u64,
    /// Round trips per second of the run.
    pub round_trips_per_s: f64,
    /// Messages that did not come back within the grace after the end.
    pub timed_out: u64,
    /// Connections that ended during the run.
    pub closed_early: u32,
    /// Send to own copy received.
    pub latency_us: LatencySummary,
    /// The generator's CPU seconds during the run.
    pub loadgen_cpu_s: f64,
    /// The server's CPU seconds during the run (with --server-pid).
    pub server_cpu_s: Option<f64>,
}

/// What one connection did.
#[derive(Debug, Default)]
struct Tally {
    round_trips: u64,
    timed_out: u64,
    closed_early: bool,
}

/// Runs `args`.
///
/// # Errors
/// When no connection could be set up.
pub async fn run(cx: &Context, args: &EchoArgs) -> Result<serde_json::Value, ScenarioError> {
    let limiter = Arc::new(Semaphore::new(CONNECT_IN_FLIGHT));
    let histogram = SharedHistogram::new();
    let stop = CancellationToken::new();
    let _stop_guard = stop.clone().drop_guard();
    let (start_tx, start_rx) = watch::channel(None::<Instant>);
    let (ready_tx, mut ready_rx) = mpsc::channel(args.connections as usize);
    let (done_tx, mut done_rx) = mpsc::channel(args.connections as usize);
    let tasks: Vec<_> = (0..args.connections)
        .map(|index| {
            let cx = cx.clone();
            let limiter = Arc::clone(&limiter);
            let recorder = histogram.recorder();
            let mut start_rx = start_rx.clone();
            let ready = ready_tx.clone();
            let done = done_tx.clone();
            let stop = stop.clone();
            let duration = args.duration;
            tokio::spawn(async move {
                let connected = {
                    let _permit = limiter.acquire().await;
                    cx.target.member(u64::from(index), ROOM).await
                };
                let mut ws = match connected {
                    Ok(ws) => ws,
                    Err(e) => {
                        let _ = ready.send(Err(e.to_string())).await;
                        return Tally::default();
                    }
                };
                let _ = ready.send(Ok(())).await;
                let start = tokio::select! {
                    () = stop.cancelled() => None,
                    s = start_rx.wait_for(Option::is_some) => s.ok().and_then(|s| *s),
                };
                let Some(start) = start else {
                    client::close(ws).await;
                    return Tally::default();
                };
                let tally = ping_pong(&cx, &mut ws, index, start + duration, recorder).await;
                let _ = done.send(()).await;
                // Keep reading others' messages until everyone is done, so
                // that the server never sees this one as a slow reader.
                loop {
                    tokio::select! {
                        biased;
                        () = stop.cancelled() => break,
                        frame = ws.next() => if !matches!(frame, Some(Ok(_))) { break },
                    }
                }
                client::close(ws).await;
                tally
            })
        })
        .collect();
    drop((ready_tx, done_tx));

    let mut ready = 0_u32;
    let mut first_error = None;
    let deadline = Instant::now() + SETUP_TIMEOUT;
    for _ in 0..args.connections {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => ready += 1,
            Ok(Some(Err(e))) => {
                first_error.get_or_insert(e);
            }
            Ok(None) | Err(_) => break,
        }
    }
    if ready == 0 {
        return Err(ScenarioError::NoConnections {
            what: "connection",
            error: first_error.unwrap_or_else(|| "timed out".to_owned()),
        });
    }

    let window = cx.open_window();
    let start = Instant::now() + START_DELAY;
    let _ = start_tx.send(Some(start));
    let progress = Progress::timed("echo", args.duration);
    let finish_by = start + args.duration + ECHO_GRACE + Duration::from_secs(1);
    for _ in 0..ready {
        if tokio::time::timeout_at(finish_by, done_rx.recv())
            .await
            .ok()
            .flatten()
            .is_none()
        {
            break;
        }
    }
    drop(progress);
    let totals = window.close(cx);
    stop.cancel();
    let (mut round_trips, mut timed_out, mut closed_early) = (0, 0, 0);
    for task in tasks {
        if let Ok(tally) = task.await {
            round_trips += tally.round_trips;
            timed_out += tally.timed_out;
            closed_early += u32::from(tally.closed_early);
        }
    }
    let result = EchoResult {
        connections_ready: ready,
        connect_failures: args.connections - ready,
        first_error,
        round_trips,
        round_trips_per_s: round3(per(round_trips as f64, args.duration.as_secs_f64())),
        timed_out,
        closed_early,
        latency_us: histogram.summary(),
        loadgen_cpu_s: totals.loadgen_cpu_s,
        server_cpu_s: totals.server_cpu_s,
    };
    // Serializing plain numbers and strings cannot fail.
    Ok(serde_json::to_value(result).unwrap_or_default())
}

/// Sends, waits for the own copy, sends the next, until `end`.
async fn ping_pong(
    cx: &Context,
    ws: &mut Ws,
    index: u32,
    end: Instant,
    mut recorder: Recorder,
) -> Tally {
    let mode = cx.target.mode();
    let mut tally = Tally::default();
    let mut text = String::with_capacity(cx.payload);
    let mut sequence = 0_u64;
    while Instant::now() < end {
        let sent_ns = cx.clock.now_ns();
        Payload {
            publisher: index,
            sequence,
            sent_ns,
        }
        .encode_into(cx.payload, &mut text);
        if ws
            .send(Message::text(cx.target.outgoing(ROOM, &text)))
            .await
            .is_err()
        {
            tally.closed_early = true;
            break;
        }
        let own = async {
            while let Some(frame) = ws.next().await {
                let Ok(Message::Text(frame)) = frame else {
                    if frame.is_err() {
                        return false;
                    }
                    continue;
                };
                if let Some(p) = text_of(&frame, mode).and_then(Payload::parse)
                    && p.publisher == index
                    && p.sequence == sequence
                {
                    return true;
                }
            }
            false
        };
        match tokio::time::timeout_at(end + ECHO_GRACE, own).await {
            Ok(true) => {
                recorder.record_ns(cx.clock.now_ns().saturating_sub(sent_ns));
                tally.round_trips += 1;
            }
            Ok(false) => {
                tally.closed_early = true;
                break;
            }
            Err(_) => {
                tally.timed_out += 1;
                break;
            }
        }
        sequence += 1;
    }
    tally
}
