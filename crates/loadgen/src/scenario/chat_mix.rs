//! `chat-mix`: members spread over rooms, posting at a total rate, while
//! members leave and new ones arrive at a churn rate: a day in a chat
//! service, compressed. Latency and loss under that mix, and whether the
//! server's memory drifts while members come and go.
//!
//! One coordinator owns the member slots: it hands posts out round-robin on
//! the rate's schedule and, on the churn's schedule, lets a slot's member go
//! (by dropping its command sender) and starts a new one in its place, so
//! neither needs a lock. A member that arrives mid-run follows each poster
//! from the first message it sees ([`Start::FromFirstSeen`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{CONNECT_IN_FLIGHT, Context, SETUP_TIMEOUT, START_DELAY, ScenarioError, per, round3};
use crate::cli::ChatMixArgs;
use crate::client;
use crate::latency::{LatencySummary, SharedHistogram};
use crate::pacer::Pacer;
use crate::payload::{Payload, text_of};
use crate::progress::Progress;
use crate::sequence::{SequenceCounts, SequenceTracker, Start};

/// Posts a member may have queued; more means it is stuck, and the post is
/// skipped rather than queued without bound.
const MEMBER_QUEUE: usize = 16;

/// What a member is told.
#[derive(Debug, Clone, Copy)]
enum Command {
    /// Post one message now.
    Post,
}

/// Why a scheduled post was not sent.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Skipped {
    /// Its slot's member was arriving (churn) or had failed to connect.
    pub absent: u64,
    /// Its slot's member had [`MEMBER_QUEUE`] posts queued already.
    pub busy: u64,
}

/// Members leaving and arriving during the run.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Churn {
    /// Members told to leave.
    pub left: u64,
    /// New members that connected and joined.
    pub joined: u64,
    /// New members that failed to.
    pub join_failures: u64,
}

/// `chat-mix`'s results.
#[derive(Debug, Clone, Serialize)]
pub struct ChatMixResult {
    /// Members connected and joined before the start.
    pub members_ready: u32,
    /// Members that failed to, before the start.
    pub connect_failures: u32,
    /// The first failure, before or during the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Members leaving and arriving.
    pub churn: Churn,
    /// Posts the schedule offered.
    pub posts_offered: u64,
    /// Posts sent.
    pub posts_sent: u64,
    /// Scheduled posts not sent.
    pub skipped: Skipped,
    /// Messages received by members, their own included.
    pub deliveries: u64,
    /// Deliveries per second, from the start to the last delivery.
    pub deliveries_per_s: f64,
    /// Gaps in a poster's sequence seen by a member, duplicates, reorders.
    #[serde(flatten)]
    pub counts: SequenceCounts,
    /// Posts of members still there at the end that never came back to
    /// their poster.
    pub own_missing: u64,
    /// Members whose connection ended without being told to leave.
    pub closed_early: u32,
    /// Send to receive, over every delivery.
    pub latency_us: LatencySummary,
    /// The server's RSS before any member connected (with --server-pid).
    pub rss_kib_before: Option<u64>,
    /// Its RSS with every member joined, before the start.
    pub rss_kib_steady: Option<u64>,
    /// Its RSS when deliveries ended.
    pub rss_kib_end: Option<u64>,
    /// `(end - steady) / steady`, in percent.
    pub rss_drift_pct: Option<f64>,
    /// The generator's CPU seconds from the start to the last delivery.
    pub loadgen_cpu_s: f64,
    /// The server's CPU seconds in that span (with --server-pid).
    pub server_cpu_s: Option<f64>,
}

/// What every member shares.
struct Shared {
    cx: Context,
    limiter: Semaphore,
    stop: CancellationToken,
    latency: SharedHistogram,
    deliveries: AtomicU64,
}

/// A member's account at the end.
#[derive(Debug, Default)]
struct MemberResult {
    /// Whether it stayed until the end of the run.
    stayed: bool,
    closed_early: bool,
    posts: u64,
    own_received: u64,
    counts: SequenceCounts,
}

/// A slot's news for the coordinator: its new member is ready (with the
/// sender that reaches it), or failed.
type Arrival = (usize, Result<mpsc::Sender<Command>, String>);

/// Runs `args`.
///
/// # Errors
/// When no member could connect.
pub async fn run(cx: &Context, args: &ChatMixArgs) -> Result<serde_json::Value, ScenarioError> {
    let rss_before = cx.server_sample().map(|s| s.rss_kib);
    let shared = Arc::new(Shared {
        cx: cx.clone(),
        limiter: Semaphore::new(CONNECT_IN_FLIGHT),
        stop: CancellationToken::new(),
        latency: SharedHistogram::new(),
        deliveries: AtomicU64::new(0),
    });
    let _stop_guard = shared.stop.clone().drop_guard();
    let slots_count = args.connections as usize;
    let (arrival_tx, mut arrival_rx) = mpsc::channel::<Arrival>(slots_count);
    let mut members: Vec<JoinHandle<MemberResult>> = Vec::new();
    let mut next_id = 0_u32;
    let servers = cx.target.urls().len();
    let mut spawn = |slot: usize, members: &mut Vec<JoinHandle<MemberResult>>| {
        let room = format!("mix-{}", room_of(slot, servers, args.rooms));
        members.push(tokio::spawn(member(
            Arc::clone(&shared),
            next_id,
            slot,
            room,
            arrival_tx.clone(),
        )));
        next_id += 1;
    };
    for slot in 0..slots_count {
        spawn(slot, &mut members);
    }

    let mut slots: Vec<Option<mpsc::Sender<Command>>> = vec![None; slots_count];
    let mut first_error = None;
    let (mut members_ready, mut connect_failures) = (0_u32, 0_u32);
    let deadline = Instant::now() + SETUP_TIMEOUT;
    while members_ready + connect_failures < args.connections {
        match tokio::time::timeout_at(deadline, arrival_rx.recv()).await {
            Ok(Some((slot, Ok(sender)))) => {
                members_ready += 1;
                if let Some(s) = slots.get_mut(slot) {
                    *s = Some(sender);
                }
            }
            Ok(Some((_, Err(e)))) => {
                connect_failures += 1;
                first_error.get_or_insert(e);
            }
            Ok(None) | Err(_) => break,
        }
    }
    if members_ready == 0 {
        return Err(ScenarioError::NoConnections {
            what: "member",
            error: first_error.unwrap_or_else(|| "timed out".to_owned()),
        });
    }
    connect_failures = args.connections - members_ready;
    let rss_steady = cx.server_sample().map(|s| s.rss_kib);

    // The run: one loop owns the slots.
    let window = cx.open_window();
    let start = Instant::now() + START_DELAY;
    let end = start + args.duration;
    let mut posts = Pacer::new(args.rate, start, args.duration);
    let mut churn_pacer = Pacer::new(args.churn, start, args.duration);
    let mut churn = Churn::default();
    let mut skipped = Skipped::default();
    let mut next_churned = 0_usize;
    let progress = Progress::timed("chat-mix", args.duration);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(end) => break,
            batch = posts.tick(), if posts.next_due().is_some() => {
                for k in batch {
                    let slot = (k % slots_count as u64) as usize;
                    match slots.get(slot).and_then(Option::as_ref) {
                        None => skipped.absent += 1,
                        Some(member) => match member.try_send(Command::Post) {
                            Ok(()) => {}
                            Err(TrySendError::Full(_)) => skipped.busy += 1,
                            Err(TrySendError::Closed(_)) => skipped.absent += 1,
                        },
                    }
                }
            }
            batch = churn_pacer.tick(), if churn_pacer.next_due().is_some() => {
                for _ in batch {
                    let slot = next_churned % slots_count;
                    next_churned += 1;
                    // Dropping its sender tells the member to leave.
                    if let Some(s) = slots.get_mut(slot)
                        && s.take().is_some()
                    {
                        churn.left += 1;
                    }
                    spawn(slot, &mut members);
                }
            }
            Some((slot, arrived)) = arrival_rx.recv() => match arrived {
                Ok(sender) => {
                    churn.joined += 1;
                    if let Some(s) = slots.get_mut(slot) {
                        *s = Some(sender);
                    }
                }
                Err(e) => {
                    churn.join_failures += 1;
                    first_error.get_or_insert(e);
                }
            },
        }
    }
    drop(progress);
    let last_delivery = super::drain(&shared.deliveries, u64::MAX, Instant::now()).await;
    let mut totals = window.close(cx);
    totals.wall_s = round3(last_delivery.saturating_duration_since(start).as_secs_f64());
    let rss_end = cx.server_sample().map(|s| s.rss_kib);
    shared.stop.cancel();
    drop(slots);

    let mut posts_sent = 0;
    let mut own_missing = 0;
    let mut closed_early = 0;
    let mut counts = SequenceCounts::default();
    for handle in members {
        let Ok(result) = handle.await else { continue };
        posts_sent += result.posts;
        if result.stayed {
            own_missing += result.posts.saturating_sub(result.own_received);
        }
        closed_early += u32::from(result.closed_early);
        counts += result.counts;
    }
    let deliveries = shared.deliveries.load(Ordering::Relaxed);
    let result = ChatMixResult {
        members_ready,
        connect_failures,
        first_error,
        churn,
        posts_offered: posts.total(),
        posts_sent,
        skipped,
        deliveries,
        deliveries_per_s: round3(per(deliveries as f64, totals.wall_s)),
        counts,
        own_missing,
        closed_early,
        latency_us: shared.latency.summary(),
        rss_kib_before: rss_before,
        rss_kib_steady: rss_steady,
        rss_kib_end: rss_end,
        rss_drift_pct: match (rss_steady, rss_end) {
            (Some(steady), Some(end)) if steady > 0 => {
                Some(round3((end as f64 - steady as f64) * 100.0 / steady as f64))
            }
            _ => None,
        },
        loadgen_cpu_s: totals.loadgen_cpu_s,
        server_cpu_s: totals.server_cpu_s,
    };
    // Serializing plain numbers and strings cannot fail.
    Ok(serde_json::to_value(result).unwrap_or_default())
}

/// The room of `slot`'s members. Member i (slot i at the start) connects
/// to URL i mod n ([`crate::client::Target::url_of`]); rooms go by
/// slot / n, so that every room has members on every instance rather than
/// all on one. With one URL, slot i is in room i mod `rooms`.
fn room_of(slot: usize, servers: usize, rooms: u32) -> u32 {
    let index = u32::try_from(slot / servers.max(1)).unwrap_or(u32::MAX);
    index % rooms.max(1)
}

/// One member: connect, join `room`, tell the coordinator, then post when
/// told and read everything, until its sender is dropped (it leaves) or the
/// run stops (it stayed).
async fn member(
    shared: Arc<Shared>,
    id: u32,
    slot: usize,
    room: String,
    arrival: mpsc::Sender<Arrival>,
) -> MemberResult {
    let mut result = MemberResult::default();
    let cx = &shared.cx;
    let connected = {
        let _permit = shared.limiter.acquire().await;
        cx.target.member(u64::from(id), &room).await
    };
    let mut ws = match connected {
        Ok(ws) => ws,
        Err(e) => {
            let _ = arrival.send((slot, Err(e.to_string()))).await;
            return result;
        }
    };
    let (commands_tx, mut commands) = mpsc::channel(MEMBER_QUEUE);
    if arrival.send((slot, Ok(commands_tx))).await.is_err() {
        client::close(ws).await;
        return result;
    }
    drop(arrival);
    let mode = cx.target.mode();
    let mut tracker = SequenceTracker::new(Start::FromFirstSeen);
    let mut recorder = shared.latency.recorder();
    let mut text = String::with_capacity(cx.payload);
    loop {
        tokio::select! {
            biased;
            () = shared.stop.cancelled() => {
                result.stayed = true;
                break;
            }
            command = commands.recv() => match command {
                Some(Command::Post) => {
                    Payload { publisher: id, sequence: result.posts, sent_ns: cx.clock.now_ns() }
                        .encode_into(cx.payload, &mut text);
                    if ws.send(Message::text(cx.target.outgoing(&room, &text))).await.is_err() {
                        result.closed_early = true;
                        break;
                    }
                    result.posts += 1;
                }
                // The coordinator let this slot go: leave.
                None => break,
            },
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(frame))) => {
                    let Some(payload) = text_of(&frame, mode).and_then(Payload::parse) else {
                        continue;
                    };
                    recorder.record_ns(cx.clock.now_ns().saturating_sub(payload.sent_ns));
                    tracker.observe(payload.publisher, payload.sequence);
                    shared.deliveries.fetch_add(1, Ordering::Relaxed);
                    if payload.publisher == id {
                        result.own_received += 1;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    result.closed_early = true;
                    break;
                }
            },
        }
    }
    recorder.flush();
    result.counts = tracker.finish(&[], |_| None);
    client::close(ws).await;
    result
}

#[cfg(test)]
mod tests {
    use super::room_of;

    #[test]
    fn one_server_puts_member_i_in_room_i_mod_k() {
        assert!((0..1000).all(|slot| room_of(slot, 1, 20) == slot as u32 % 20));
    }

    #[test]
    fn every_room_has_members_on_every_instance() {
        for servers in [2, 3] {
            let rooms = 20;
            let mut seen = vec![vec![false; servers]; rooms as usize];
            for slot in 0..2000 {
                // The URL slot i's first member connects to: i mod n.
                seen[room_of(slot, servers, rooms) as usize][slot % servers] = true;
            }
            assert!(seen.iter().all(|r| r.iter().all(|&s| s)), "{servers}");
        }
    }
}
