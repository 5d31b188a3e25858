//! One task per peer: the handshake, then a reader loop in this task and a
//! writer task that owns the socket's sink and drains the connection's
//! bounded outbox.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::stream::SplitStream;
use futures_util::{Sink, SinkExt, StreamExt};
use log::{Level, debug, info, log};
use protocol::CloseCode;
use std::collections::VecDeque;
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::Request;
use tokio_tungstenite::tungstenite::http::{Extensions, HeaderValue, header};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{self, Bytes, Message, error::CapacityError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::buffers;
use crate::component::{Component, Connection, ConnectionError, ConnectionId};
use crate::handshake::{self, Failure, Refusal};
use crate::log_limit::{LogLimit, Verdict};
use crate::metrics::{CloseReason, Metrics};
use crate::outbox::{OutboxReader, outbox};
use crate::server::IpSlot;
use crate::settings::Settings;
use crate::untrusted::{Untrusted, untrusted_bytes};

/// The close code after a failed write (1011, internal error), should the
/// close frame still get through: the server could not deliver, and the
/// client did nothing wrong.
const WRITE_FAILED: CloseCode = CloseCode::INTERNAL_ERROR;

/// How long the server waits, after deciding to close, for its close frame
/// to be written and for the client to answer it. Reading until the client
/// closes matters: dropping a socket with unread input sends a TCP reset,
/// which can destroy the close frame before the client reads it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The frames' room a connection's writer keeps between batches (see
/// [`write_loop`]); the outbox's queue and the batch swap buffers, so both
/// settle at about this.
const KEPT_BATCH_FRAMES: usize = 16;

type Stream = SplitStream<WebSocketStream<TcpStream>>;

/// Why a connection's read loop ended.
#[derive(Debug)]
enum Exit {
    /// The client sent a close frame. tungstenite has queued its answer
    /// already (see [`write_loop`]); the frame is as tungstenite read it,
    /// with a code RFC 6455 does not allow replaced by 1002.
    ClientClosed(Option<CloseFrame>),
    /// The socket ended without a close frame.
    Eof,
    /// Reading failed, or the client went silent.
    Failed(ConnectionError),
    /// Something on the server called [`Connection::close`].
    Closed,
    /// The server is shutting down.
    Shutdown,
}

/// Everything one connection task needs from the server.
pub(crate) struct Context<C> {
    pub component: Arc<C>,
    pub settings: Arc<Settings>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    /// Handshake failures are the client's doing, so their log lines share
    /// one budget (see [`LogLimit`]).
    pub handshake_log: Arc<LogLimit>,
    /// What the connection counts: handshakes, frames, bytes, closes.
    pub metrics: Arc<Metrics>,
}

/// Serves one TCP connection from handshake to close.
pub(crate) async fn serve<C: Component>(
    mut stream: TcpStream,
    peer: SocketAddr,
    id: ConnectionId,
    slot: IpSlot,
    cx: Context<C>,
) {
    let mut extensions = Extensions::new();
    // Every future that runs once, or for one frame, is boxed: a future
    // awaited in place takes room in this task for the connection's whole
    // life, and an idle connection should hold only what it waits with
    // (see `buffers` for the rest of its memory).
    let handshake = Box::pin(http_phase(&mut stream, peer, &mut extensions, &cx));
    let Some(upgraded) = handshake.await else {
        return;
    };
    let ws = WebSocketStream::from_partially_read(
        stream,
        upgraded.rest,
        Role::Server,
        Some(buffers::websocket_config(&cx.settings)),
    )
    .await;
    info!(
        "connection {id} opened from {peer} (origin {})",
        upgraded.origin.as_deref().unwrap_or("none")
    );
    cx.metrics.handshakes_accepted.inc();
    let _open = Open::count(Arc::clone(&cx.metrics));

    let (sink, mut stream) = ws.split();
    let (outbox, outbox_rx) = outbox(cx.settings.outbox_capacity, cx.settings.outbox_max_bytes);
    let conn = Connection::new(id, peer, outbox, extensions);
    let ending = Arc::new(Ending::default());
    let writer = cx.tracker.spawn(write_loop(
        sink,
        outbox_rx,
        conn.clone(),
        Arc::clone(&ending),
        cx.settings.write_timeout,
        Arc::clone(&cx.metrics),
    ));

    Box::pin(cx.component.on_open(&conn)).await;
    let exit = match read_loop(&mut stream, &conn, &cx).await {
        // The writer closes the connection when a write fails, after
        // recording why.
        Exit::Closed => ending
            .take_write_failure()
            .map_or(Exit::Closed, |e| Exit::Failed(ConnectionError::Write(e))),
        exit => exit,
    };
    // The writer learns how the close handshake ends and sends the close
    // frame now, before the callbacks: neither the client's answer to ours
    // nor ours to the client's waits for them.
    if matches!(exit, Exit::ClientClosed(_)) {
        ending.client_closed.store(true, Ordering::Release);
    }
    let (code, reason) = close_for(&exit, &conn, &cx.settings);
    conn.close(code, reason.clone());
    cx.metrics.closed(close_reason(&exit, code));
    if let Exit::Failed(error) = &exit {
        Box::pin(cx.component.on_error(&conn, error)).await;
    }
    Box::pin(cx.component.on_close(&conn)).await;
    let _ = writer.await;
    // Wait for the client's answer to our close frame (see CLOSE_TIMEOUT),
    // unless the frame never got out: a client that stopped reading (the
    // usual slow consumer) cannot answer, and waiting would only hold its
    // socket longer.
    if matches!(exit, Exit::Closed | Exit::Shutdown | Exit::Failed(_))
        && ending.close_sent.load(Ordering::Acquire)
    {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            while let Some(Ok(_)) = stream.next().await {}
        })
        .await;
    }
    // The address's share goes back before the socket closes, so that a
    // client that saw its connection end can open the next one at once.
    drop(slot);
    drop(stream);
    // The reason may quote the client (its close reason).
    info!("connection {id} from {peer} closed: {}", Untrusted(&reason));
}

/// Counts a connection in `duplex_connections_open` from its upgrade until
/// dropped, however the task ends (a panic in a callback included).
struct Open(Arc<Metrics>);

impl Open {
    fn count(metrics: Arc<Metrics>) -> Self {
        metrics.connections_open.inc();
        Self(metrics)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections_open.dec();
    }
}

/// What the two halves of a connection tell each other about its end.
#[derive(Debug, Default)]
struct Ending {
    /// Set by the reader: the client's close frame was read, so tungstenite
    /// holds the answer and the writer must flush it (see [`write_loop`]).
    client_closed: AtomicBool,
    /// Set by the writer: why a write failed. The writer then closes the
    /// connection, and the connection task hands the error to `on_error`.
    write_failure: Mutex<Option<tungstenite::Error>>,
    /// Set by the writer once the server's close frame was flushed.
    close_sent: AtomicBool,
}

impl Ending {
    fn record_write_failure(&self, error: tungstenite::Error) {
        let mut failure = self
            .write_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        failure.get_or_insert(error);
    }

    fn take_write_failure(&self) -> Option<tungstenite::Error> {
        self.write_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// What the HTTP phase hands to the WebSocket phase.
struct Upgraded {
    /// What the client sent after its request head.
    rest: Vec<u8>,
    /// The request's `Origin`, escaped for the log.
    origin: Option<String>,
}

/// Answers a connection over its address's limit with 429 at once, without
/// reading its request: it holds none of `max_connections`, and is gone
/// within [`handshake::OVER_LIMIT_LINGER`], so that one address cannot keep
/// others out by opening sockets that never speak.
pub(crate) async fn refuse_over_limit<C>(mut stream: TcpStream, peer: SocketAddr, cx: Context<C>) {
    let refusal = Refusal::new(
        429,
        format!(
            "too many connections from your address (at most {})",
            cx.settings.max_connections_per_ip
        ),
    );
    log_refusal(&cx, peer, None, &refusal);
    handshake::refuse_now(&mut stream, &refusal).await;
}

/// Reads the upgrade request and answers it: a `101` (then `Some`), or a
/// refusal, written before the socket is closed (then `None`). The head
/// must arrive within `handshake_timeout`; the checks, in order: the
/// request's syntax ([`handshake::read_head`]), the protocol
/// ([`handshake::check_upgrade`]), the path (404), the component's
/// `on_handshake`, the subprotocol.
async fn http_phase<C: Component>(
    stream: &mut TcpStream,
    peer: SocketAddr,
    extensions: &mut Extensions,
    cx: &Context<C>,
) -> Option<Upgraded> {
    let head =
        match tokio::time::timeout(cx.settings.handshake_timeout, handshake::read_head(stream))
            .await
        {
            Ok(Ok(head)) => head,
            Ok(Err(Failure::Refused(refusal))) => {
                log_refusal(cx, peer, None, &refusal);
                handshake::refuse(stream, &refusal).await;
                return None;
            }
            Ok(Err(Failure::Gone(e))) => {
                log_handshake(
                    cx,
                    Level::Info,
                    format_args!("handshake from {peer} failed: {e}"),
                );
                return None;
            }
            Err(_) => {
                let refusal = Refusal::new(
                    408,
                    format!(
                        "the request did not arrive within {:?}",
                        cx.settings.handshake_timeout
                    ),
                );
                log_refusal(cx, peer, None, &refusal);
                handshake::refuse(stream, &refusal).await;
                return None;
            }
        };
    let request = &head.request;
    let (key, subprotocol) = match check_request(request, &cx.settings, &*cx.component, extensions)
    {
        Ok(accepted) => accepted,
        Err(refusal) => {
            log_refusal(cx, peer, Some(request.uri().path()), &refusal);
            handshake::refuse(stream, &refusal).await;
            return None;
        }
    };
    let accepted = tokio::time::timeout(
        handshake::ANSWER_TIMEOUT,
        handshake::accept(stream, key, subprotocol),
    )
    .await;
    if let Err(e) = accepted.unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())) {
        log_handshake(
            cx,
            Level::Info,
            format_args!("handshake from {peer} failed: {e}"),
        );
        return None;
    }
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .map(|v| untrusted_bytes(v.as_bytes()));
    Some(Upgraded {
        rest: head.rest,
        origin,
    })
}

/// The checks of an upgrade request after it was read: the protocol's
/// own, the path, the component's, then the subprotocol. Returns the key
/// to answer and the subprotocol to select.
fn check_request<'r, C: Component>(
    request: &'r Request,
    settings: &Settings,
    component: &C,
    extensions: &mut Extensions,
) -> Result<(&'r HeaderValue, Option<&'static str>), Refusal> {
    let key = handshake::check_upgrade(request)?;
    if request.uri().path() != settings.path {
        return Err(Refusal::new(404, "no WebSocket endpoint at this path"));
    }
    component.on_handshake(request, extensions)?;
    Ok((key, handshake::select_subprotocol(request)?))
}

/// Counts and logs a refused handshake; the reason, which may quote the
/// client, and the path go through [`Untrusted`].
fn log_refusal<C>(cx: &Context<C>, peer: SocketAddr, path: Option<&str>, refusal: &Refusal) {
    cx.metrics.refused(refusal.status);
    let path = path
        .map(|p| format!(" (path {})", Untrusted(p)))
        .unwrap_or_default();
    log_handshake(
        cx,
        Level::Warn,
        format_args!(
            "handshake from {peer} refused with {}: {}{path}",
            refusal.status,
            Untrusted(&refusal.reason)
        ),
    );
}

/// Writes one handshake line at `level` if the budget allows, preceded by
/// the count of lines left out before it.
fn log_handshake<C>(cx: &Context<C>, level: Level, line: fmt::Arguments<'_>) {
    if let Verdict::Write { suppressed_before } = cx.handshake_log.admit(Instant::now()) {
        if suppressed_before > 0 {
            info!("{suppressed_before} more handshake failures were not logged");
        }
        log!(level, "{line}");
    }
}

/// Reads frames until the connection should end, and says why.
async fn read_loop<C: Component>(stream: &mut Stream, conn: &Connection, cx: &Context<C>) -> Exit {
    let settings = &cx.settings;
    let mut heartbeat = tokio::time::interval_at(
        Instant::now() + settings.heartbeat_interval,
        settings.heartbeat_interval,
    );
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_seen = Instant::now();
    loop {
        // Biased, closing first: once the connection is asked to close (a
        // failed write among the reasons), that is why it ended, whatever
        // the socket says next.
        tokio::select! {
            biased;
            () = conn.closing() => return Exit::Closed,
            () = cx.shutdown.cancelled() => return Exit::Shutdown,
            _ = heartbeat.tick() => {
                if last_seen.elapsed() >= settings.client_timeout {
                    return Exit::Failed(ConnectionError::Timeout);
                }
                let _ = conn.send(Message::Ping(Bytes::new()));
                if let Some(frame) = cx.component.heartbeat_frame() {
                    let _ = conn.send(frame);
                }
            }
            frame = stream.next() => {
                last_seen = Instant::now();
                match frame {
                    Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                        cx.metrics.messages_received.inc();
                        cx.metrics.bytes_received.inc_by(payload_len(&message));
                        Box::pin(cx.component.on_message(conn, message)).await;
                    }
                    Some(Ok(Message::Close(frame))) => return Exit::ClientClosed(frame),
                    // Pings are answered by tungstenite; pongs only count as
                    // a sign of life.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Exit::Failed(e.into()),
                    None => return Exit::Eof,
                }
            }
        }
    }
}

/// The close code and reason for a connection that ended with `exit`.
fn close_for(exit: &Exit, conn: &Connection, settings: &Settings) -> (CloseCode, String) {
    match exit {
        // What tungstenite answers, for the log: the client's frame echoed.
        Exit::ClientClosed(Some(frame)) => (
            CloseCode(frame.code.into()),
            format!("client closed ({} {})", u16::from(frame.code), frame.reason),
        ),
        Exit::ClientClosed(None) => (
            CloseCode::NORMAL,
            "client closed (no code; answered with an empty close frame)".to_owned(),
        ),
        Exit::Eof => (CloseCode::NORMAL, "connection dropped".to_owned()),
        Exit::Closed => conn.close_request().map_or_else(
            || (CloseCode::NORMAL, "closed by server".to_owned()),
            |r| (r.code, r.reason.clone()),
        ),
        Exit::Shutdown => (CloseCode::GOING_AWAY, "server shutting down".to_owned()),
        Exit::Failed(ConnectionError::Timeout) => {
            (CloseCode::HEARTBEAT_TIMEOUT, "heartbeat timeout".to_owned())
        }
        Exit::Failed(ConnectionError::WebSocket(e)) => match e {
            tungstenite::Error::Capacity(CapacityError::MessageTooLong { .. }) => (
                CloseCode::MESSAGE_TOO_BIG,
                format!("message larger than {} bytes", settings.max_frame_bytes),
            ),
            tungstenite::Error::Utf8(_) => (
                CloseCode::INVALID_PAYLOAD,
                "text frame is not UTF-8".to_owned(),
            ),
            tungstenite::Error::Protocol(p) => {
                (CloseCode::PROTOCOL_ERROR, format!("protocol error: {p}"))
            }
            other => (CloseCode::NORMAL, format!("connection error: {other}")),
        },
        Exit::Failed(ConnectionError::Write(e)) => (WRITE_FAILED, format!("write failed: {e}")),
    }
}

/// What `exit`, closed with `code`, counts as.
fn close_reason(exit: &Exit, code: CloseCode) -> CloseReason {
    match exit {
        Exit::ClientClosed(_) => CloseReason::ClientClosed,
        Exit::Eof => CloseReason::Dropped,
        Exit::Shutdown => CloseReason::Shutdown,
        Exit::Closed => CloseReason::of_server_close(code),
        Exit::Failed(ConnectionError::Timeout) => CloseReason::HeartbeatTimeout,
        Exit::Failed(ConnectionError::Write(_)) => CloseReason::WriteFailed,
        Exit::Failed(ConnectionError::WebSocket(_)) => match code {
            CloseCode::MESSAGE_TOO_BIG => CloseReason::MessageTooBig,
            CloseCode::PROTOCOL_ERROR | CloseCode::INVALID_PAYLOAD => CloseReason::ProtocolError,
            _ => CloseReason::Error,
        },
    }
}

/// The payload length of a data message (0 for control frames), as a
/// counter increment.
fn payload_len(message: &Message) -> u64 {
    match message {
        Message::Text(text) => text.len() as u64,
        Message::Binary(bytes) => bytes.len() as u64,
        _ => 0,
    }
}

/// Why writing a batch stopped.
enum WriteError {
    /// A feed or flush did not complete within `write_timeout`.
    Stalled,
    /// The socket failed.
    Failed(tungstenite::Error),
}

/// `step`'s result, or [`WriteError::Stalled`] when it does not complete
/// within `timeout`.
async fn within<T>(
    timeout: Duration,
    step: impl Future<Output = Result<T, tungstenite::Error>>,
) -> Result<T, WriteError> {
    match tokio::time::timeout(timeout, step).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(WriteError::Failed(e)),
        Err(_) => Err(WriteError::Stalled),
    }
}

/// Owns the sink: writes queued frames, batching whatever is already queued
/// into one flush, until the connection is asked to close; then ends the
/// close handshake: with the server's close frame, or, when
/// `client_closed`, with the answer to the client's. A client for which
/// one step of a write (a feed that has to drain tungstenite's buffer of
/// up to 9 KiB, or the flush) does not complete within `write_timeout` is
/// closed as slow (4000), however little it holds: a stalled client is let
/// go within a bound of time, not only once its outbox fills.
async fn write_loop<S>(
    mut sink: S,
    mut outbox: OutboxReader,
    conn: Connection,
    ending: Arc<Ending>,
    write_timeout: Duration,
    metrics: Arc<Metrics>,
) where
    S: Sink<Message, Error = tungstenite::Error> + Unpin,
{
    // Kept across batches: its buffer is swapped with the outbox's, so
    // neither allocates once both have grown to the usual batch.
    let mut batch = VecDeque::new();
    loop {
        let taken = tokio::select! {
            biased;
            () = conn.closing() => break,
            taken = outbox.take(&mut batch) => taken,
        };
        if !taken {
            break;
        }
        metrics.outbox_depth.observe(batch.len());
        let (messages, bytes) = batch
            .iter()
            .filter(|m| m.is_text() || m.is_binary())
            .fold((0, 0), |(n, b), m| (n + 1, b + payload_len(m)));
        // Each step must complete within `write_timeout`: a `feed` waits
        // only when tungstenite's write buffer (at most 9 KiB) must drain
        // first, and the flush until all of it is written, so a client
        // reading under about 4.5 KiB/s while frames wait is let go.
        let write = async {
            while let Some(message) = batch.pop_front() {
                for frame in buffers::fragments(message) {
                    within(write_timeout, sink.feed(frame)).await?;
                }
            }
            within(write_timeout, sink.flush()).await?;
            Ok::<_, WriteError>(())
        };
        // A client that stops reading blocks the write; closing must still
        // get through, so the write races the close request.
        let written = tokio::select! {
            () = conn.closing() => break,
            written = write => written,
        };
        // A burst grows the batch's buffer (40 bytes a frame, up to
        // `outbox_capacity` frames); a connection keeps only a small one.
        if batch.capacity() > KEPT_BATCH_FRAMES {
            batch.shrink_to(KEPT_BATCH_FRAMES);
        }
        match written {
            Ok(()) => {
                metrics.messages_sent.inc_by(messages);
                metrics.bytes_sent.inc_by(bytes);
            }
            Err(WriteError::Stalled) => {
                conn.close(
                    CloseCode::SLOW_CONSUMER,
                    format!("a write took longer than {write_timeout:?}: client too slow"),
                );
                break;
            }
            Err(WriteError::Failed(e)) => {
                debug!("connection {}: write failed: {e}", conn.id());
                ending.record_write_failure(e);
                conn.close(WRITE_FAILED, "write failed");
                break;
            }
        }
    }
    // What was queued will not be sent: let it go now, not when the close
    // handshake ends (up to CLOSE_TIMEOUT later, for a client that does not
    // read).
    drop(batch);
    drop(outbox);
    if ending.client_closed.load(Ordering::Acquire) {
        // tungstenite queued its answer when it read the client's close
        // frame (RFC 6455, 5.5.1): the client's code and reason echoed, 1002
        // for a code that section 7.4 does not allow on the wire, and an
        // empty close frame for one without a code. It sends that answer
        // on the next write or flush, refuses any other close frame after
        // it (`SendAfterClosing`), and a frame it never flushes is never
        // sent: so this flush, and nothing else, answers the client.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.flush()).await;
    } else if let Some(request) = conn.close_request() {
        // The reason must fit in a control frame (125 bytes with the code).
        let mut reason = request.reason.clone();
        while reason.len() > 123 {
            reason.pop();
        }
        let frame = CloseFrame {
            code: request.code.0.into(),
            reason: reason.into(),
        };
        let sent =
            tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
        if matches!(sent, Ok(Ok(()))) {
            ending.close_sent.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;
    use crate::component::SendError;

    /// A sink that takes frames and never completes a flush: the socket of
    /// a client that stopped reading.
    #[derive(Default)]
    struct Stalled {
        fed: Arc<Mutex<Vec<Message>>>,
    }

    impl Sink<Message> for Stalled {
        type Error = tungstenite::Error;

        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Self::Error> {
            self.fed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(message);
            Ok(())
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Pending
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_large_frame_being_written_does_not_hold_back_the_frames_behind_it() {
        let (outbox_sender, outbox) = outbox(16, 100);
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let conn = Connection::new(1, peer, outbox_sender, Extensions::new());
        let sink = Stalled::default();
        let fed = Arc::clone(&sink.fed);
        let writer = tokio::spawn(write_loop(
            sink,
            outbox,
            conn.clone(),
            Arc::new(Ending::default()),
            WRITE_TIMEOUT,
            Metrics::new(),
        ));

        // A `joined` ten times the budget: the writer takes it and waits
        // for its flush.
        assert_eq!(conn.send(Message::text("x".repeat(1000))), Ok(()));
        while fed.lock().map(|f| f.len()).unwrap_or_default() == 0 {
            tokio::task::yield_now().await;
        }
        // The frames behind it have the whole budget...
        assert_eq!(conn.send(Message::text("y".repeat(60))), Ok(()));
        assert_eq!(conn.send(Message::text("y".repeat(60))), Ok(()));
        assert!(conn.close_request().is_none());
        // ...and no more: a full queue behind a write that does not finish
        // is a slow consumer.
        assert_eq!(conn.send(Message::text("z")), Err(SendError::Full));
        assert_eq!(
            conn.close_request().map(|r| r.code),
            Some(CloseCode::SLOW_CONSUMER)
        );
        assert!(writer.await.is_ok(), "the writer ends after the close");
    }

    const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

    #[tokio::test(start_paused = true)]
    async fn a_socket_that_takes_nothing_for_the_write_timeout_is_closed_as_slow() {
        let (outbox_sender, outbox) = outbox(16, 1000);
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let conn = Connection::new(1, peer, outbox_sender, Extensions::new());
        let started = Instant::now();
        let writer = tokio::spawn(write_loop(
            Stalled::default(),
            outbox,
            conn.clone(),
            Arc::new(Ending::default()),
            WRITE_TIMEOUT,
            Metrics::new(),
        ));
        // One small frame, far inside the outbox's budget.
        assert_eq!(conn.send(Message::text("x")), Ok(()));
        assert!(writer.await.is_ok(), "the writer ends after the close");
        let request = conn.close_request();
        assert_eq!(request.map(|r| r.code), Some(CloseCode::SLOW_CONSUMER));
        // Then it gave its close frame CLOSE_TIMEOUT to go out.
        let waited = started.elapsed();
        assert!(
            waited >= WRITE_TIMEOUT && waited <= WRITE_TIMEOUT + CLOSE_TIMEOUT,
            "{waited:?}"
        );
    }
}
