//! The app-server's one service connection to the ws-server.
//!
//! Handlers do not open WebSockets: they hand a request to the
//! [`Publisher`], whose single background task keeps one authenticated
//! connection (`Authorization: Bearer TOKEN`, a service token it mints
//! afresh for every connection attempt), reconnects it with capped
//! exponential backoff and jitter, and matches every answer to its request
//! through the protocol's `ref`. While the connection is down or being
//! opened, requests fail at once with [`PublishError::Unavailable`] rather
//! than queueing up. The task pings the ws-server and reconnects when it
//! stops answering, so a half-open connection does not linger. Its
//! [`Status`] (open or not, how many attempts failed and why) is
//! observable, for the health check and for tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use log::{info, warn};
use protocol::{
    ClientFrame, ClientMessage, ClientRef, DisplayName, ErrorCode, MessageId, MessageText,
    RoomInfo, RoomName, SUBPROTOCOL, Secret, ServerMessage,
};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long one request may wait for the ws-server's answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnect delays start here and double up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long shutting down waits for the ws-server to answer the close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Requests waiting to be sent; more fail as unavailable.
const QUEUE_CAPACITY: usize = 256;
/// How often the task pings the ws-server, and how long a silence (no frame
/// at all, pongs included) it tolerates before reconnecting.
const PING_INTERVAL: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(40);

/// The most rooms this connection must accept in one `rooms` answer: ten
/// times the ws-server's page (100 rooms), so that a ws-server configured
/// with larger pages still cannot knock it offline.
pub const LARGEST_ROOMS_PAGE: usize = 1000;
/// The largest frame (and message) accepted from the ws-server, in bytes.
/// A `rooms` entry is at most about 110 bytes of JSON (a 64-character name
/// and a 20-digit count), so [`LARGEST_ROOMS_PAGE`] entries take about
/// 110 KiB; the rest is headroom. Anything larger is a broken or hostile
/// server, and tungstenite's default (64 MiB) would let it make this
/// process buffer that much.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Why a request through the service connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The ws-server cannot be reached right now.
    #[error("the WebSocket server is unavailable")]
    Unavailable,
    /// The ws-server did not answer in time.
    #[error("the WebSocket server did not answer in time")]
    Timeout,
    /// The connection dropped after the request was sent and before the
    /// answer came: a publish may or may not have been stored.
    #[error(
        "the connection to the WebSocket server dropped before it answered; the request may or may not have been carried out"
    )]
    Interrupted,
    /// The ws-server refused the request.
    #[error("the WebSocket server refused the request: {message} ({code})")]
    Refused {
        /// The protocol error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
}

/// Where a published message was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The stored message's id.
    pub id: MessageId,
    /// Its offset in the room.
    pub offset: u64,
}

/// One page of the room directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoomsPage {
    /// Rooms with members, by name.
    pub rooms: Vec<RoomInfo>,
    /// Where the next page starts (its `after`); `None` on the last page.
    pub next: Option<RoomName>,
}

#[derive(Debug)]
enum Reply {
    Published(Published),
    Rooms(RoomsPage),
}

/// The service connection's state, as the background task last reported
/// it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Whether the connection is open now.
    pub connected: bool,
    /// How many connection attempts have failed since the start.
    pub failed_attempts: u64,
    /// Why the last attempt failed, or the last connection ended; the
    /// token never appears in it.
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct Command {
    message: ClientMessage,
    reply: oneshot::Sender<Result<Reply, PublishError>>,
}

/// A handle to the service connection; cheap to clone. The background task
/// ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Publisher {
    commands: mpsc::Sender<Command>,
    /// The connection's state, as the task last reported it.
    status: watch::Receiver<Status>,
    /// Asks the task to close the connection and end (see
    /// [`Publisher::shutdown`]).
    stop: Arc<Notify>,
    /// The task, taken by the first `shutdown`.
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Publisher {
    /// Starts the background task that connects to `url`, presenting a
    /// service token signed with `secret`. Must be called within a Tokio
    /// runtime.
    #[must_use]
    pub fn start(url: String, secret: Secret) -> Self {
        let (commands, rx) = mpsc::channel(QUEUE_CAPACITY);
        let (state, status) = watch::channel(Status::default());
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(run(url, secret, rx, state, Arc::clone(&stop)));
        Self {
            commands,
            status,
            stop,
            task: Arc::new(Mutex::new(Some(task))),
        }
    }

    /// Closes the service connection with a closing handshake (1001, going
    /// away) and waits for the task to end: what the app-server does when
    /// it stops, so that the ws-server sees a close, not a reset. Requests
    /// after it fail as unavailable.
    pub async fn shutdown(&self) {
        // A stored permit: the task sees it at its next wait.
        self.stop.notify_one();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Whether the service connection is open now.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        self.status.borrow().connected
    }

    /// The connection's state now.
    #[must_use]
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Resolves once the service connection is open.
    pub async fn wait_until_connected(&self) {
        self.wait_for(|status| status.connected).await;
    }

    /// Resolves once at least `count` connection attempts have failed since
    /// the start, with the state then.
    pub async fn wait_for_failed_attempts(&self, count: u64) -> Status {
        self.wait_for(|status| status.failed_attempts >= count)
            .await
    }

    async fn wait_for(&self, condition: impl FnMut(&Status) -> bool) -> Status {
        let mut status = self.status.clone();
        // Fails only when the task has ended, which this handle prevents.
        let result = status.wait_for(condition).await.map(|s| s.clone());
        result.unwrap_or_default()
    }

    /// Publishes `text` into `room` as `name`, stored in the room's history.
    ///
    /// # Errors
    /// [`PublishError`] when the ws-server is unreachable, slow, or refuses.
    pub async fn publish(
        &self,
        room: RoomName,
        name: DisplayName,
        text: MessageText,
    ) -> Result<Published, PublishError> {
        match self
            .request(ClientMessage::Publish { room, name, text })
            .await?
        {
            Reply::Published(published) => Ok(published),
            Reply::Rooms(_) => Err(PublishError::Unavailable),
        }
    }

    /// One page of the rooms that have members, with their member counts:
    /// the first, or the one after the room `after`.
    ///
    /// # Errors
    /// [`PublishError`] when the ws-server is unreachable, slow, or refuses.
    pub async fn rooms(&self, after: Option<RoomName>) -> Result<RoomsPage, PublishError> {
        match self.request(ClientMessage::ListRooms { after }).await? {
            Reply::Rooms(rooms) => Ok(rooms),
            Reply::Published(_) => Err(PublishError::Unavailable),
        }
    }

    async fn request(&self, message: ClientMessage) -> Result<Reply, PublishError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .try_send(Command { message, reply })
            .map_err(|_| PublishError::Unavailable)?;
        match tokio::time::timeout(REQUEST_TIMEOUT, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(PublishError::Unavailable),
            Err(_) => Err(PublishError::Timeout),
        }
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects, serves, and reconnects until every [`Publisher`] is dropped.
async fn run(
    url: String,
    secret: Secret,
    mut commands: mpsc::Receiver<Command>,
    state: watch::Sender<Status>,
    stop: Arc<Notify>,
) {
    let mut attempt: u32 = 0;
    loop {
        let connected = {
            let connecting = connect(&url, &secret);
            tokio::pin!(connecting);
            loop {
                tokio::select! {
                    () = stop.notified() => return,
                    result = &mut connecting => break result,
                    command = commands.recv() => match command {
                        Some(command) => {
                            let _ = command.reply.send(Err(PublishError::Unavailable));
                        }
                        None => return,
                    },
                }
            }
        };
        match connected {
            Ok(ws) => {
                info!("service connection to {url} open");
                attempt = 0;
                state.send_modify(|status| status.connected = true);
                let ended = serve(ws, &mut commands, &stop).await;
                match ended {
                    Ended::Dropped => return,
                    Ended::Lost(why) => {
                        warn!("service connection to {url} lost: {why}");
                        state.send_modify(|status| {
                            status.connected = false;
                            status.last_error = Some(why);
                        });
                    }
                }
            }
            Err(e) => {
                if attempt == 0 {
                    warn!("cannot open the service connection to {url}: {e}; retrying");
                }
                state.send_modify(|status| {
                    status.failed_attempts += 1;
                    status.last_error = Some(e.to_string());
                });
            }
        }
        // Until the next attempt, fail requests at once instead of letting
        // them wait for a connection that may not come.
        let pause = tokio::time::sleep(backoff(attempt));
        attempt = attempt.saturating_add(1);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                () = stop.notified() => return,
                () = &mut pause => break,
                command = commands.recv() => match command {
                    Some(command) => {
                        let _ = command.reply.send(Err(PublishError::Unavailable));
                    }
                    None => return,
                },
            }
        }
    }
}

/// A delay between half and all of `MIN_BACKOFF * 2^attempt`, capped: the
/// jitter keeps many app-servers from reconnecting in lockstep.
fn backoff(attempt: u32) -> Duration {
    let ceiling = MIN_BACKOFF
        .saturating_mul(2_u32.saturating_pow(attempt.min(16)))
        .min(MAX_BACKOFF);
    ceiling / 2 + ceiling.mul_f64(fastrand::f64() / 2.0)
}

#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error(transparent)]
    WebSocket(#[from] tungstenite::Error),
    #[error("timed out")]
    Timeout,
    /// Cannot happen: a token's alphabet is base64url and `.`.
    #[error("the service token is not a valid header value")]
    Token(#[from] tungstenite::http::header::InvalidHeaderValue),
}

/// What the connection accepts from the ws-server: see
/// [`MAX_ANSWER_BYTES`].
fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_ANSWER_BYTES))
        .max_frame_size(Some(MAX_ANSWER_BYTES))
}

async fn connect(url: &str, secret: &Secret) -> Result<Ws, ConnectError> {
    let mut request = url.into_client_request()?;
    let headers = request.headers_mut();
    let mut authorization =
        HeaderValue::from_str(&format!("Bearer {}", crate::tokens::service(secret)))?;
    // Kept out of any debug output of the request.
    authorization.set_sensitive(true);
    headers.insert("Authorization", authorization);
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let connecting =
        tokio_tungstenite::connect_async_with_config(request, Some(websocket_config()), false);
    let (ws, _) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| ConnectError::Timeout)??;
    Ok(ws)
}

enum Ended {
    /// Every `Publisher` is gone: stop for good.
    Dropped,
    /// The connection failed: reconnect.
    Lost(String),
}

/// Sends requests and routes answers until the connection ends.
async fn serve(ws: Ws, commands: &mut mpsc::Receiver<Command>, stop: &Notify) -> Ended {
    let (mut sink, mut stream) = ws.split();
    let mut pending: HashMap<ClientRef, oneshot::Sender<Result<Reply, PublishError>>> =
        HashMap::new();
    let mut next_ref: u64 = 0;
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let mut last_heard = Instant::now();
    let ended = loop {
        tokio::select! {
            () = stop.notified() => {
                let frame = CloseFrame {
                    code: CloseCode::Away,
                    reason: "app-server shutting down".into(),
                };
                // Our close frame, then the ws-server's answer, briefly.
                let closing = async {
                    sink.send(Message::Close(Some(frame))).await.ok()?;
                    while let Some(Ok(message)) = stream.next().await {
                        if matches!(message, Message::Close(_)) {
                            break;
                        }
                    }
                    Some(())
                };
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
                break Ended::Dropped;
            }
            command = commands.recv() => {
                let Some(command) = command else {
                    let _ = sink.close().await;
                    break Ended::Dropped;
                };
                if command.reply.is_closed() {
                    continue; // its caller gave up (timed out) while it waited
                }
                next_ref += 1;
                let Ok(reference) = ClientRef::new(format!("s{next_ref}")) else {
                    continue; // "s" and digits are always a valid ref
                };
                let frame = ClientFrame::with_ref(reference.clone(), command.message);
                if let Err(e) = sink.send(Message::text(frame.to_json())).await {
                    let _ = command.reply.send(Err(PublishError::Unavailable));
                    break Ended::Lost(e.to_string());
                }
                // Answers for requests whose caller gave up are dropped here.
                pending.retain(|_, reply| !reply.is_closed());
                pending.insert(reference, command.reply);
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    break Ended::Lost("the ws-server stopped answering pings".to_owned());
                }
                if let Err(e) = sink.send(Message::Ping(Default::default())).await {
                    break Ended::Lost(e.to_string());
                }
            }
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    last_heard = Instant::now();
                    route(&text, &mut pending);
                }
                Some(Ok(Message::Close(frame))) => {
                    break Ended::Lost(format!("closed by the server: {frame:?}"));
                }
                Some(Ok(_)) => last_heard = Instant::now(),
                Some(Err(e)) => break Ended::Lost(e.to_string()),
                None => break Ended::Lost("connection ended".to_owned()),
            },
        }
    };
    // These were sent: the ws-server may have carried them out.
    for (_, reply) in pending.drain() {
        let _ = reply.send(Err(PublishError::Interrupted));
    }
    ended
}

/// Hands one server frame to the request it answers, if any.
fn route(
    text: &str,
    pending: &mut HashMap<ClientRef, oneshot::Sender<Result<Reply, PublishError>>>,
) {
    let Ok(message) = serde_json::from_str::<ServerMessage>(text) else {
        warn!("unreadable frame on the service connection: {text}");
        return;
    };
    let (reference, result) = match message {
        ServerMessage::Ack {
            reference,
            id,
            offset,
            ..
        } => (reference, Ok(Reply::Published(Published { id, offset }))),
        ServerMessage::Rooms {
            reference: Some(reference),
            rooms,
            next,
        } => (reference, Ok(Reply::Rooms(RoomsPage { rooms, next }))),
        ServerMessage::Error {
            reference: Some(reference),
            code,
            message,
        } => (reference, Err(PublishError::Refused { code, message })),
        _ => return,
    };
    if let Some(reply) = pending.remove(&reference) {
        let _ = reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::token::{Role, now_secs, verify};
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

    #[test]
    fn backoff_grows_with_jitter_and_stays_capped() {
        for attempt in 0..40 {
            let delay = backoff(attempt);
            let ceiling = MIN_BACKOFF
                .saturating_mul(2_u32.saturating_pow(attempt.min(16)))
                .min(MAX_BACKOFF);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{attempt}: {delay:?}"
            );
        }
        assert!(backoff(100) <= MAX_BACKOFF);
    }

    fn secret() -> Secret {
        Secret::new(&"s".repeat(32)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn name(s: &str) -> DisplayName {
        DisplayName::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    async fn publish_once(publisher: &Publisher) -> Result<Published, PublishError> {
        let room = RoomName::new("lobby").unwrap_or_else(|e| panic!("{e}"));
        let text = MessageText::new("hi").unwrap_or_else(|e| panic!("{e}"));
        publisher.publish(room, name("Announcer"), text).await
    }

    /// A listener on an ephemeral port whose behaviour the test scripts, and
    /// the WebSocket URL that reaches it.
    async fn scripted_peer() -> (tokio::net::TcpListener, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        (listener, format!("ws://{addr}/ws"))
    }

    /// Accepts one WebSocket on `listener`, selecting the protocol's
    /// subprotocol as the ws-server does; returns it and the
    /// `Authorization` header it came with.
    async fn accept_one(
        listener: &tokio::net::TcpListener,
    ) -> (WebSocketStream<TcpStream>, Option<String>) {
        let (tcp, _) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
        let (seen, authorization) = std::sync::mpsc::channel();
        // tungstenite fixes the callback's error type to a whole response.
        #[allow(clippy::result_large_err)]
        let callback = move |request: &Request, mut response: Response| {
            let value = request
                .headers()
                .get("Authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let _ = seen.send(value);
            response.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static(SUBPROTOCOL),
            );
            Ok(response)
        };
        let ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (ws, authorization.recv().ok().flatten())
    }

    /// The next request a scripted peer receives, as JSON.
    async fn next_request(ws: &mut WebSocketStream<TcpStream>) -> serde_json::Value {
        while let Some(Ok(frame)) = ws.next().await {
            if let Message::Text(text) = frame {
                return serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        panic!("the publisher closed the connection");
    }

    #[tokio::test]
    async fn the_connection_presents_a_fresh_service_token() {
        let (listener, url) = scripted_peer().await;
        let publisher = Publisher::start(url, secret());
        let (_ws, authorization) = accept_one(&listener).await;
        let token = authorization
            .as_deref()
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_else(|| panic!("no bearer token: {authorization:?}"));
        let claims = verify(token, &secret(), now_secs()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claims.role, Role::Service);
        assert_eq!(claims.user.as_str(), crate::tokens::SERVICE_USER);
        drop(publisher);
    }

    #[tokio::test]
    async fn shutting_down_closes_the_connection_with_going_away() {
        let (listener, url) = scripted_peer().await;
        let publisher = Publisher::start(url, secret());
        let (mut ws, _) = accept_one(&listener).await;
        publisher.wait_until_connected().await;
        let shutdown = tokio::spawn({
            let publisher = publisher.clone();
            async move { publisher.shutdown().await }
        });
        // The peer reads the close frame (and tungstenite answers it).
        let mut close = None;
        while let Some(Ok(frame)) = ws.next().await {
            if let Message::Close(frame) = frame {
                close = frame;
                break;
            }
        }
        assert_eq!(close.map(|f| f.code), Some(CloseCode::Away));
        let _ = ws.flush().await;
        assert!(shutdown.await.is_ok(), "shutdown ends once answered");
        assert!(matches!(
            publish_once(&publisher).await,
            Err(PublishError::Unavailable)
        ));
    }

    #[tokio::test]
    async fn requests_fail_fast_while_the_connection_is_being_opened() {
        // A peer that accepts TCP but never answers the upgrade.
        let (listener, url) = scripted_peer().await;
        let publisher = Publisher::start(url, secret());
        let (_stalled, _) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            publish_once(&publisher).await,
            Err(PublishError::Unavailable)
        );
    }

    #[tokio::test]
    async fn a_request_lost_with_the_connection_is_reported_as_interrupted() {
        // A peer that completes the upgrade, reads one request, and drops.
        let (listener, url) = scripted_peer().await;
        let peer = tokio::spawn(async move {
            let (mut ws, _) = accept_one(&listener).await;
            next_request(&mut ws).await;
        });
        let publisher = Publisher::start(url, secret());
        publisher.wait_until_connected().await;
        let result = tokio::time::timeout(REQUEST_TIMEOUT, publish_once(&publisher)).await;
        assert_eq!(result, Ok(Err(PublishError::Interrupted)));
        peer.await.unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_fail_fast_while_the_server_is_unreachable() {
        // Port 9 (discard) on loopback: nothing listens there in tests.
        let publisher = Publisher::start("ws://127.0.0.1:9/ws".into(), secret());
        // Only once an attempt has failed does the request below meet the
        // backoff pause, rather than a connection still being opened.
        let status = tokio::time::timeout(REQUEST_TIMEOUT, publisher.wait_for_failed_attempts(1))
            .await
            .unwrap_or_else(|_| panic!("no connection attempt failed"));
        assert!(!status.connected);
        // Paused time: a request left waiting for the next attempt would
        // see the clock jump to that attempt, or to its own timeout.
        let asked = Instant::now();
        assert_eq!(publisher.rooms(None).await, Err(PublishError::Unavailable));
        assert!(asked.elapsed() < MIN_BACKOFF / 4, "{:?}", asked.elapsed());
    }

    /// A `rooms` answer of `count` rooms with the longest names and member
    /// counts, answering `reference`.
    fn rooms_page(count: usize, reference: &str) -> String {
        let rooms: Vec<RoomInfo> = (0..count)
            .map(|i| RoomInfo {
                room: RoomName::new(format!("{i:0>64}")).unwrap_or_else(|e| panic!("{e}")),
                members: usize::MAX,
            })
            .collect();
        ServerMessage::Rooms {
            rooms,
            next: Some(RoomName::new("z".repeat(64)).unwrap_or_else(|e| panic!("{e}"))),
            reference: Some(ClientRef::new(reference).unwrap_or_else(|e| panic!("{e}"))),
        }
        .to_json()
    }

    #[tokio::test]
    async fn the_largest_rooms_page_fits_and_a_larger_frame_drops_the_connection() {
        let largest = rooms_page(LARGEST_ROOMS_PAGE, "s1");
        assert!(largest.len() < MAX_ANSWER_BYTES, "{}", largest.len());

        let (listener, url) = scripted_peer().await;
        let peer = tokio::spawn(async move {
            let (mut ws, _) = accept_one(&listener).await;
            let request = next_request(&mut ws).await;
            assert_eq!(request["type"], "list_rooms");
            let reference = request["ref"].as_str().unwrap_or_default().to_owned();
            let _ = ws
                .send(Message::text(rooms_page(LARGEST_ROOMS_PAGE, &reference)))
                .await;
            // Then a frame past the limit: the publisher must drop the
            // connection rather than buffer it.
            let request = next_request(&mut ws).await;
            let reference = request["ref"].as_str().unwrap_or_default().to_owned();
            let oversized = rooms_page(MAX_ANSWER_BYTES / 100, &reference);
            assert!(oversized.len() > MAX_ANSWER_BYTES);
            let _ = ws.send(Message::text(oversized)).await;
            let _ = ws.next().await;
        });
        let publisher = Publisher::start(url, secret());
        publisher.wait_until_connected().await;
        let page = publisher
            .rooms(None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(page.rooms.len(), LARGEST_ROOMS_PAGE);
        assert_eq!(
            page.next.as_ref().map(RoomName::as_str),
            Some("z".repeat(64).as_str())
        );
        assert_eq!(publisher.rooms(None).await, Err(PublishError::Interrupted));
        let dropped = tokio::time::timeout(REQUEST_TIMEOUT, publisher.wait_for(|s| !s.connected));
        assert!(dropped.await.is_ok(), "still connected");
        peer.await.unwrap_or_else(|e| panic!("{e}"));
    }
}
