//! The app-server's one service connection to the ws-server.
//!
//! Handlers do not open WebSockets: they hand a request to the
//! [`Publisher`], whose single background task keeps one authenticated
//! connection (`Authorization: Bearer SECRET`), reconnects it with capped
//! exponential backoff and jitter, and matches every answer to its request
//! through the protocol's `ref`. While the connection is down or being
//! opened, requests fail at once with [`PublishError::Unavailable`] rather
//! than queueing up. The task pings the ws-server and reconnects when it
//! stops answering, so a half-open connection does not linger.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use log::{info, warn};
use protocol::{
    ClientFrame, ClientMessage, ClientRef, DisplayName, ErrorCode, MessageId, MessageText,
    RoomInfo, RoomName, SUBPROTOCOL, ServerMessage,
};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long one request may wait for the ws-server's answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnect delays start here and double up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Requests waiting to be sent; more fail as unavailable.
const QUEUE_CAPACITY: usize = 256;
/// How often the task pings the ws-server, and how long a silence (no frame
/// at all, pongs included) it tolerates before reconnecting.
const PING_INTERVAL: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(40);

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

#[derive(Debug)]
enum Reply {
    Published(Published),
    Rooms(Vec<RoomInfo>),
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
    /// Whether the connection is open now, as the task last reported it.
    connected: watch::Receiver<bool>,
}

impl Publisher {
    /// Starts the background task that connects to `url` with `secret`.
    /// Must be called within a Tokio runtime.
    #[must_use]
    pub fn start(url: String, secret: String) -> Self {
        let (commands, rx) = mpsc::channel(QUEUE_CAPACITY);
        let (state, connected) = watch::channel(false);
        tokio::spawn(run(url, secret, rx, state));
        Self {
            commands,
            connected,
        }
    }

    /// Whether the service connection is open now.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Resolves once the service connection is open.
    pub async fn wait_until_connected(&self) {
        let mut connected = self.connected.clone();
        // Fails only when the task has ended, which this handle prevents.
        let _ = connected.wait_for(|open| *open).await;
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

    /// The rooms that have members, with their member counts.
    ///
    /// # Errors
    /// [`PublishError`] when the ws-server is unreachable, slow, or refuses.
    pub async fn rooms(&self) -> Result<Vec<RoomInfo>, PublishError> {
        match self.request(ClientMessage::ListRooms).await? {
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
    secret: String,
    mut commands: mpsc::Receiver<Command>,
    state: watch::Sender<bool>,
) {
    let mut attempt: u32 = 0;
    loop {
        let connected = {
            let connecting = connect(&url, &secret);
            tokio::pin!(connecting);
            loop {
                tokio::select! {
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
                state.send_replace(true);
                let ended = serve(ws, &mut commands).await;
                state.send_replace(false);
                match ended {
                    Ended::Dropped => return,
                    Ended::Lost(why) => warn!("service connection to {url} lost: {why}"),
                }
            }
            Err(e) => {
                if attempt == 0 {
                    warn!("cannot open the service connection to {url}: {e}; retrying");
                }
            }
        }
        // Until the next attempt, fail requests at once instead of letting
        // them wait for a connection that may not come.
        let pause = tokio::time::sleep(backoff(attempt));
        attempt = attempt.saturating_add(1);
        tokio::pin!(pause);
        loop {
            tokio::select! {
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
    #[error("invalid secret: {0}")]
    Secret(#[from] tungstenite::http::header::InvalidHeaderValue),
}

async fn connect(url: &str, secret: &str) -> Result<Ws, ConnectError> {
    let mut request = url.into_client_request()?;
    let headers = request.headers_mut();
    headers.insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {secret}"))?,
    );
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (ws, _) = tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request))
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
async fn serve(ws: Ws, commands: &mut mpsc::Receiver<Command>) -> Ended {
    let (mut sink, mut stream) = ws.split();
    let mut pending: HashMap<ClientRef, oneshot::Sender<Result<Reply, PublishError>>> =
        HashMap::new();
    let mut next_ref: u64 = 0;
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let mut last_heard = Instant::now();
    let ended = loop {
        tokio::select! {
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
        } => (reference, Ok(Reply::Rooms(rooms))),
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

    #[tokio::test]
    async fn requests_fail_fast_while_the_connection_is_being_opened() {
        // A peer that accepts TCP but never answers the upgrade.
        let (listener, url) = scripted_peer().await;
        let publisher = Publisher::start(url, "s".into());
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
            let (tcp, _) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
            // tungstenite fixes the callback's error type to a whole response.
            #[allow(clippy::result_large_err)]
            let select_subprotocol =
                |_: &tungstenite::handshake::server::Request,
                 mut response: tungstenite::handshake::server::Response| {
                    response.headers_mut().insert(
                        "Sec-WebSocket-Protocol",
                        HeaderValue::from_static(SUBPROTOCOL),
                    );
                    Ok(response)
                };
            let mut ws = tokio_tungstenite::accept_hdr_async(tcp, select_subprotocol)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            while let Some(Ok(frame)) = ws.next().await {
                if frame.is_text() {
                    break;
                }
            }
        });
        let publisher = Publisher::start(url, "s".into());
        // Until the upgrade completes, requests fail fast; then one is sent.
        let result = tokio::time::timeout(REQUEST_TIMEOUT, async {
            loop {
                match publish_once(&publisher).await {
                    Err(PublishError::Unavailable) => tokio::task::yield_now().await,
                    other => break other,
                }
            }
        })
        .await;
        assert_eq!(result, Ok(Err(PublishError::Interrupted)));
        peer.await.unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn requests_fail_fast_while_the_server_is_unreachable() {
        // Port 9 (discard) on loopback: nothing listens there in tests.
        let publisher = Publisher::start("ws://127.0.0.1:9/ws".into(), "s".into());
        assert_eq!(publisher.rooms().await, Err(PublishError::Unavailable));
    }
}
