//! One room, readers and open-loop writers: the measurement under both
//! `fanout` and `slow`.
//!
//! Every reader and writer is a task. Readers connect and join first and
//! read from then on (presence frames must not pile up in their sockets
//! while the others join); writers connect, wait for one shared start, and
//! send on their [`Pacer`]'s schedule, never waiting for replies. Writers
//! also receive the room's messages (in Duplex the sender is a member; a
//! relay sends to everyone), so each drains its socket beside its sends:
//! a writer that stopped reading would be closed as a slow consumer.
//!
//! Readers named in [`Spec::stalled`] stop reading [`Spec::stall_after`]
//! into the run and keep their socket open: the `slow` scenario. A watcher
//! then polls the kernel's socket table to see when the server lets each
//! one go, since a reader that does not read cannot see it itself.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{CONNECT_IN_FLIGHT, Context, SETUP_TIMEOUT, START_DELAY, ScenarioError, WindowTotals};
use crate::client::{self, CLOSE_TIMEOUT};
use crate::latency::{LatencySummary, Recorder, SharedHistogram};
use crate::pacer::Pacer;
use crate::payload::{Payload, text_in};
use crate::procfs::tcp_sockets;
use crate::progress::Progress;
use crate::raw::{RawWs, Step};
use crate::sequence::{SequenceCounts, SequenceTracker, Start};

/// The room every reader and writer joins.
pub const ROOM: &str = "bench";

/// How often the watcher reads the socket table.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// How long a stalled reader reads, after the run, to find out how its
/// connection ended.
const FINAL_READ: Duration = Duration::from_secs(3);

/// How long writers may run past their schedule before the run gives up on
/// them (a write blocked by a server that stopped reading).
const WRITER_GRACE: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Readers, stalled ones included.
    pub subscribers: u32,
    /// Writers, sharing the rate.
    pub publishers: u32,
    /// Messages per second from all writers together.
    pub rate: f64,
    /// How long the writers write.
    pub duration: Duration,
    /// Readers (by index) that stop reading.
    pub stalled: Vec<u32>,
    /// When they stop, from the start.
    pub stall_after: Duration,
    /// The progress bar's label.
    pub label: String,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Readers that connected and joined.
    pub subscribers_ready: u32,
    /// Writers that connected and joined.
    pub publishers_ready: u32,
    /// Connections that failed to set up.
    pub connect_failures: u32,
    /// The first setup failure, if any.
    pub first_error: Option<String>,
    /// Messages the schedule offered (all writers, connected or not).
    pub offered: u64,
    /// Messages sent.
    pub sent: u64,
    /// Writers whose connection failed while sending.
    pub publisher_errors: u32,
    /// The first writer's failure, and how the server closed it if it did.
    pub publisher_error: Option<String>,
    /// How healthy readers' connections ended early, and how many each way.
    pub closed_early_reasons: BTreeMap<String, u32>,
    /// What the healthy readers received.
    pub healthy: ReaderTotals,
    /// Healthy readers that were ready.
    pub healthy_ready: u32,
    /// Latency of the healthy readers' deliveries.
    pub latency: LatencySummary,
    /// How late writers sent, against their schedule.
    pub send_lag: LatencySummary,
    /// From the start to the last delivery.
    pub window: WindowTotals,
    /// Seconds from the start to the last delivery.
    pub delivery_span_s: f64,
    /// What became of each stalled reader.
    pub stalled: Vec<StalledFate>,
    /// The server's RSS when deliveries ended, before any connection closed.
    pub server_rss_kib_end: Option<u64>,
}

/// Deliveries counted by a group of readers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ReaderTotals {
    /// Messages of this run received.
    pub deliveries: u64,
    /// Loss, duplicates and reordering.
    #[serde(flatten)]
    pub counts: SequenceCounts,
    /// Readers whose connection ended before the run did.
    pub closed_early: u32,
}

/// What became of one stalled reader.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StalledFate {
    /// Its index among the readers.
    pub index: u32,
    /// Messages it read before it stalled.
    pub delivered_before_stall: u64,
    /// Seconds from its stall until the server closed its side of the
    /// socket; `None` if it had not by the end of the run.
    pub server_closed_after_s: Option<f64>,
    /// What its connection said when read again after the run: `close
    /// CODE`, `ended` (no close frame), `error: ...` or `open`.
    pub end: String,
}

/// What every task of the run shares.
struct Shared {
    cx: Context,
    spec: Spec,
    limiter: Semaphore,
    stop: CancellationToken,
    start: watch::Receiver<Option<Instant>>,
    latency: SharedHistogram,
    send_lag: SharedHistogram,
    /// Deliveries to healthy readers so far: the drain watches it.
    healthy_deliveries: AtomicU64,
}

/// A connection's word once it is set up.
enum Ready {
    Subscriber {
        stalled: bool,
        /// A stalled reader's index, own address and server address.
        addrs: Option<(u32, SocketAddr, SocketAddr)>,
    },
    Publisher,
    Failed(String),
}

/// A writer's word once it stopped sending.
struct Published {
    sent: u64,
    /// Why it stopped early, if it did.
    error: Option<String>,
}

/// A reader's account at the end.
struct ReaderResult {
    stalled: bool,
    ready: bool,
    deliveries: u64,
    tracker: SequenceTracker,
    closed_early: bool,
    end: String,
}

/// Runs `spec` against `cx`'s target.
///
/// # Errors
/// When no reader or no writer could connect.
pub async fn run(cx: &Context, spec: &Spec) -> Result<Outcome, ScenarioError> {
    let (start_tx, start_rx) = watch::channel(None);
    let shared = Arc::new(Shared {
        cx: cx.clone(),
        spec: spec.clone(),
        limiter: Semaphore::new(CONNECT_IN_FLIGHT),
        stop: CancellationToken::new(),
        start: start_rx,
        latency: SharedHistogram::new(),
        send_lag: SharedHistogram::new(),
        healthy_deliveries: AtomicU64::new(0),
    });
    // Stop every task however this function ends.
    let _stop_guard = shared.stop.clone().drop_guard();
    let total = (spec.subscribers + spec.publishers) as usize;
    let (ready_tx, mut ready_rx) = mpsc::channel(total);
    let (published_tx, mut published_rx) = mpsc::channel(spec.publishers as usize);

    let readers: Vec<_> = (0..spec.subscribers)
        .map(|index| {
            let stalled = spec.stalled.contains(&index);
            tokio::spawn(reader(
                Arc::clone(&shared),
                index,
                stalled,
                ready_tx.clone(),
            ))
        })
        .collect();
    let writers: Vec<_> = (0..spec.publishers)
        .map(|publisher| {
            tokio::spawn(writer(
                Arc::clone(&shared),
                publisher,
                ready_tx.clone(),
                published_tx.clone(),
            ))
        })
        .collect();
    drop((ready_tx, published_tx));

    // Setup: every connection reports once.
    let mut outcome_ready = (0_u32, 0_u32, 0_u32);
    let mut first_error = None;
    let mut stalled_addrs = Vec::new();
    let mut stalled_ready = 0_u32;
    let setup_deadline = Instant::now() + SETUP_TIMEOUT;
    for _ in 0..total {
        match tokio::time::timeout_at(setup_deadline, ready_rx.recv()).await {
            Ok(Some(Ready::Subscriber { stalled, addrs })) => {
                outcome_ready.0 += 1;
                stalled_ready += u32::from(stalled);
                stalled_addrs.extend(addrs);
            }
            Ok(Some(Ready::Publisher)) => outcome_ready.1 += 1,
            Ok(Some(Ready::Failed(e))) => {
                outcome_ready.2 += 1;
                first_error.get_or_insert(e);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let (subscribers_ready, publishers_ready, mut connect_failures) = outcome_ready;
    connect_failures += total as u32 - (subscribers_ready + publishers_ready + connect_failures);
    let no_error = || {
        first_error
            .clone()
            .unwrap_or_else(|| "timed out".to_owned())
    };
    if subscribers_ready == 0 {
        return Err(ScenarioError::NoConnections {
            what: "subscriber",
            error: no_error(),
        });
    }
    if publishers_ready == 0 {
        return Err(ScenarioError::NoConnections {
            what: "publisher",
            error: no_error(),
        });
    }
    let healthy_ready = subscribers_ready - stalled_ready;

    // The run.
    let window = cx.open_window();
    let start = Instant::now() + START_DELAY;
    let _ = start_tx.send(Some(start));
    let watcher = (!stalled_addrs.is_empty()).then(|| {
        tokio::spawn(watch_stalled(
            stalled_addrs,
            start + spec.stall_after,
            shared.stop.clone(),
        ))
    });
    let progress = Progress::timed(&spec.label, spec.duration);
    let mut sent = 0;
    let mut publisher_errors = 0;
    let mut publisher_error = None;
    let writers_deadline = start + spec.duration + WRITER_GRACE;
    for _ in 0..publishers_ready {
        match tokio::time::timeout_at(writers_deadline, published_rx.recv()).await {
            Ok(Some(published)) => {
                sent += published.sent;
                if let Some(e) = published.error {
                    publisher_errors += 1;
                    publisher_error.get_or_insert(e);
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    drop(progress);
    let expected = sent * u64::from(healthy_ready);
    let writers_done = Instant::now();
    let last_delivery = super::drain(&shared.healthy_deliveries, expected, writers_done).await;
    let mut totals = window.close(cx);
    let server_rss_kib_end = cx.server_sample().map(|s| s.rss_kib);
    shared.stop.cancel();

    // Accounts.
    let offered = Pacer::new(spec.rate, start, spec.duration).total();
    let mut sent_by = vec![0_u64; spec.publishers as usize];
    let publishers: Vec<u32> = (0..spec.publishers).collect();
    for (publisher, handle) in writers.into_iter().enumerate() {
        if let Ok(count) = handle.await
            && let Some(slot) = sent_by.get_mut(publisher)
        {
            *slot = count;
        }
    }
    let mut healthy = ReaderTotals::default();
    let mut closed_early_reasons = BTreeMap::new();
    let mut stalled_results = Vec::new();
    for (index, handle) in readers.into_iter().enumerate() {
        let Ok(result) = handle.await else { continue };
        if !result.ready {
            continue;
        }
        if result.stalled {
            stalled_results.push((index as u32, result));
            continue;
        }
        healthy.deliveries += result.deliveries;
        healthy.counts += result
            .tracker
            .finish(&publishers, |p| sent_by.get(p as usize).copied());
        if result.closed_early {
            healthy.closed_early += 1;
            *closed_early_reasons.entry(result.end).or_insert(0) += 1;
        }
    }
    let closed_at = match watcher {
        Some(handle) => handle.await.unwrap_or_default(),
        None => HashMap::new(),
    };
    let stalled = stalled_results
        .into_iter()
        .map(|(index, result)| StalledFate {
            index,
            delivered_before_stall: result.deliveries,
            server_closed_after_s: closed_at.get(&index).copied(),
            end: result.end,
        })
        .collect();
    let delivery_span_s = last_delivery.saturating_duration_since(start).as_secs_f64();
    totals.wall_s = super::round3(delivery_span_s);
    Ok(Outcome {
        subscribers_ready,
        publishers_ready,
        connect_failures,
        first_error,
        offered,
        sent,
        publisher_errors,
        publisher_error,
        closed_early_reasons,
        healthy,
        healthy_ready,
        latency: shared.latency.summary(),
        send_lag: shared.send_lag.summary(),
        window: totals,
        delivery_span_s,
        stalled,
        server_rss_kib_end,
    })
}

/// Waits for the shared start; `None` if the run stopped first.
async fn wait_start(shared: &Shared) -> Option<Instant> {
    let mut start = shared.start.clone();
    tokio::select! {
        () = shared.stop.cancelled() => None,
        started = start.wait_for(Option::is_some) => started.ok().and_then(|s| *s),
    }
}

/// One reader: connect, join, then count deliveries until the run stops
/// (or, if stalled, until it stalls).
async fn reader(
    shared: Arc<Shared>,
    index: u32,
    stalled: bool,
    ready: mpsc::Sender<Ready>,
) -> ReaderResult {
    let mut result = ReaderResult {
        stalled,
        ready: false,
        deliveries: 0,
        tracker: SequenceTracker::new(Start::FromZero),
        closed_early: false,
        end: "open".to_owned(),
    };
    let target = &shared.cx.target;
    let connected = {
        let _permit = shared.limiter.acquire().await;
        target.raw_member(u64::from(index), ROOM).await
    };
    let mut ws = match connected {
        Ok(ws) => ws,
        Err(e) => {
            let _ = ready.send(Ready::Failed(e.to_string())).await;
            return result;
        }
    };
    let addrs = match (ws.local_addr(), ws.peer_addr()) {
        (Some(local), Some(peer)) if stalled => Some((index, local, peer)),
        _ => None,
    };
    result.ready = true;
    let _ = ready.send(Ready::Subscriber { stalled, addrs }).await;
    drop(ready);

    // Stalled readers' deliveries stay out of the healthy readers' figures.
    let mut recorder = (!stalled).then(|| shared.latency.recorder());
    let counter = (!stalled).then_some(&shared.healthy_deliveries);
    let mut reading = Reading {
        shared: &shared,
        recorder: recorder.as_mut(),
        result: &mut result,
        counter,
    };
    if stalled {
        let stall = async {
            if let Some(start) = wait_start(&shared).await {
                tokio::time::sleep_until(start + shared.spec.stall_after).await;
            }
        };
        if reading.read_until(&mut ws, stall).await.is_none() {
            // Keep the socket open without reading it until the run ends.
            shared.stop.cancelled().await;
            result.end = final_read(&mut ws).await;
        }
    } else if reading
        .read_until(&mut ws, shared.stop.cancelled())
        .await
        .is_some()
    {
        result.closed_early = true;
    }
    drop(recorder);
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close()).await;
    result
}

/// A reader's hot loop and what it updates.
struct Reading<'a> {
    shared: &'a Shared,
    recorder: Option<&'a mut Recorder>,
    result: &'a mut ReaderResult,
    counter: Option<&'a AtomicU64>,
}

impl Reading<'_> {
    /// Reads and counts deliveries until `until` resolves (`None`) or the
    /// connection ends (`Some(how)`).
    async fn read_until(
        &mut self,
        ws: &mut RawWs,
        until: impl std::future::Future<Output = ()>,
    ) -> Option<String> {
        let mode = self.shared.cx.target.mode();
        let clock = self.shared.cx.clock;
        tokio::pin!(until);
        loop {
            // Every frame of one read arrived together: one clock reading
            // serves them all.
            let mut now_ns = None;
            let mut delivered = 0;
            let recorder = &mut self.recorder;
            let result = &mut *self.result;
            let read = ws.read(|frame| {
                if let Some(payload) = text_in(frame, mode).and_then(Payload::parse_bytes) {
                    let now = *now_ns.get_or_insert_with(|| clock.now_ns());
                    if let Some(recorder) = recorder.as_deref_mut() {
                        recorder.record_ns(now.saturating_sub(payload.sent_ns));
                    }
                    result.tracker.observe(payload.publisher, payload.sequence);
                    delivered += 1;
                }
                ControlFlow::Continue(())
            });
            // Counted even when `until` ends a read that already handed
            // frames on (and then waited to send a pong).
            let step = tokio::select! {
                biased;
                () = &mut until => None,
                step = read => Some(step),
            };
            self.result.deliveries += delivered;
            if let Some(counter) = self.counter {
                counter.fetch_add(delivered, Ordering::Relaxed);
            }
            let how = match step? {
                Ok(Step::Continue | Step::Stopped) => continue,
                Ok(Step::Closed(code)) => end_of(code),
                Ok(Step::Ended) => "ended".to_owned(),
                Err(e) => format!("error: {e}"),
            };
            self.result.end.clone_from(&how);
            return Some(how);
        }
    }
}

/// How a connection that got a close frame with `code` ended.
fn end_of(code: Option<u16>) -> String {
    code.map_or("close".to_owned(), |code| format!("close {code}"))
}

/// Reads what a stalled reader left unread, for at most [`FINAL_READ`],
/// and says how its connection ended.
async fn final_read(ws: &mut RawWs) -> String {
    let read = async {
        loop {
            match ws.read(|_| ControlFlow::Continue(())).await {
                Ok(Step::Continue | Step::Stopped) => {}
                Ok(Step::Closed(code)) => return end_of(code),
                Ok(Step::Ended) => return "ended".to_owned(),
                Err(e) => return format!("error: {e}"),
            }
        }
    };
    tokio::time::timeout(FINAL_READ, read)
        .await
        .unwrap_or_else(|_| "open".to_owned())
}

/// One writer: connect, join, wait for the start, send on schedule while
/// draining what the server sends back; returns how many it sent.
async fn writer(
    shared: Arc<Shared>,
    publisher: u32,
    ready: mpsc::Sender<Ready>,
    published: mpsc::Sender<Published>,
) -> u64 {
    let spec = &shared.spec;
    let target = &shared.cx.target;
    let connected = {
        let _permit = shared.limiter.acquire().await;
        // Writers are numbered after the readers: over several URLs,
        // consecutive writers alternate instances as readers do, so each
        // instance has its share of both.
        target
            .member(u64::from(spec.subscribers + publisher), ROOM)
            .await
    };
    let ws = match connected {
        Ok(ws) => ws,
        Err(e) => {
            let _ = ready.send(Ready::Failed(e.to_string())).await;
            return 0;
        }
    };
    let _ = ready.send(Ready::Publisher).await;
    drop(ready);
    let Some(start) = wait_start(&shared).await else {
        client::close(ws).await;
        return 0;
    };
    let (mut sink, mut stream) = ws.split();
    // How the server ended the connection, if it did before the run.
    let ended = std::sync::Mutex::new(None::<String>);
    let drain = async {
        loop {
            let frame = tokio::select! {
                biased;
                () = shared.stop.cancelled() => break,
                frame = stream.next() => frame,
            };
            let how = match frame {
                Some(Ok(Message::Close(Some(f)))) => format!("close {}", u16::from(f.code)),
                Some(Ok(Message::Close(None))) => "close".to_owned(),
                Some(Ok(_)) => continue,
                Some(Err(e)) => format!("read error: {e}"),
                None => "ended".to_owned(),
            };
            *ended
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(how);
            break;
        }
    };
    let send = async {
        let rate_each = spec.rate / f64::from(spec.publishers);
        // Writers take turns within each interval, so that together they
        // send evenly spaced messages.
        let phase = Duration::from_secs_f64(f64::from(publisher) / spec.rate);
        let mut pacer = Pacer::new(rate_each, start + phase, spec.duration);
        let end = start + phase + spec.duration;
        let clock = shared.cx.clock;
        let mut lag = shared.send_lag.recorder();
        let mut text = String::with_capacity(shared.cx.payload);
        let mut sent = 0_u64;
        let mut error = None;
        'run: while Instant::now() < end {
            let batch = pacer.tick().await;
            if batch.is_empty() {
                break;
            }
            for sequence in batch {
                let now_ns = clock.now_ns();
                lag.record_ns(now_ns.saturating_sub(clock.ns_at(pacer.due_at(sequence))));
                Payload {
                    publisher,
                    sequence,
                    sent_ns: now_ns,
                }
                .encode_into(shared.cx.payload, &mut text);
                if let Err(e) = sink.feed(Message::text(target.outgoing(ROOM, &text))).await {
                    error = Some(format!("write error: {e}"));
                    break 'run;
                }
                sent += 1;
            }
            if let Err(e) = sink.flush().await {
                error = Some(format!("write error: {e}"));
                break;
            }
        }
        lag.flush();
        if let Some(e) = &mut error
            && let Some(how) = ended
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
        {
            e.push_str(&format!(" (after {how})"));
        }
        let _ = published.send(Published { sent, error }).await;
        sent
    };
    let (sent, ()) = tokio::join!(send, drain);
    if let Ok(ws) = sink.reunite(stream) {
        client::close(ws).await;
    }
    sent
}

/// Polls the socket table until the run stops; returns, for each stalled
/// reader, the seconds from `stalled_at` until the server's side of its
/// connection was closed (gone from the table, or held by no process).
async fn watch_stalled(
    connections: Vec<(u32, SocketAddr, SocketAddr)>,
    stalled_at: Instant,
    stop: CancellationToken,
) -> HashMap<u32, f64> {
    let mut closed = HashMap::new();
    tokio::select! {
        () = stop.cancelled() => return closed,
        () = tokio::time::sleep_until(stalled_at) => {}
    }
    let mut tick = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => return closed,
            _ = tick.tick() => {}
        }
        let Ok(rows) = tcp_sockets() else {
            return closed;
        };
        let after = stalled_at.elapsed().as_secs_f64();
        for (index, local, server) in &connections {
            if closed.contains_key(index) {
                continue;
            }
            // The server's side: its address is our peer, ours its peer.
            let server_side_held = rows
                .iter()
                .any(|r| r.local == *server && r.remote == *local && r.inode != 0);
            if !server_side_held {
                closed.insert(*index, super::round3(after));
            }
        }
        if closed.len() == connections.len() {
            return closed;
        }
    }
}
