//! One task per peer: the handshake, then a reader loop in this task and a
//! writer task that owns the socket's sink and drains the connection's
//! bounded outbox.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use log::{debug, info, warn};
use protocol::{CloseCode, SUBPROTOCOL};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{Extensions, HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Bytes, Message, error::CapacityError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::component::{Component, Connection, ConnectionError, ConnectionId, Outbox, Rejection};
use crate::settings::Settings;

/// How long the server waits, after deciding to close, for its close frame
/// to be written and for the client to answer it. Reading until the client
/// closes matters: dropping a socket with unread input sends a TCP reset,
/// which can destroy the close frame before the client reads it.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

type Sink = SplitSink<WebSocketStream<TcpStream>, Message>;
type Stream = SplitStream<WebSocketStream<TcpStream>>;

/// Why a connection's read loop ended.
#[derive(Debug)]
enum Exit {
    /// The client sent a close frame; tungstenite answers it.
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
}

/// Serves one TCP connection from handshake to close.
pub(crate) async fn serve<C: Component>(
    stream: TcpStream,
    peer: SocketAddr,
    id: ConnectionId,
    cx: Context<C>,
) {
    let mut origin = None;
    let mut rejection = None;
    let mut extensions = Extensions::new();
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(cx.settings.max_frame_bytes))
        .max_frame_size(Some(cx.settings.max_frame_bytes));
    // tungstenite fixes the callback's error type to a whole HTTP response.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        check_handshake(
            &*cx.component,
            &cx.settings,
            request,
            response,
            &mut extensions,
        )
        .map_err(|r| {
            let response = error_response(&r);
            rejection = Some(r);
            response
        })
    };
    let handshake = tokio::time::timeout(
        cx.settings.handshake_timeout,
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(ws_config)),
    )
    .await;
    let ws = match handshake {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            match rejection {
                Some(r) => warn!(
                    "handshake from {peer} refused with {}: {}",
                    r.status, r.reason
                ),
                None => info!("handshake from {peer} failed: {e}"),
            }
            return;
        }
        Err(_) => {
            info!("handshake from {peer} timed out");
            return;
        }
    };
    let origin = origin.as_deref().unwrap_or("none");
    info!("connection {id} opened from {peer} (origin {origin})");

    let (sink, mut stream) = ws.split();
    let (sender, outbox_rx) = mpsc::channel(cx.settings.outbox_capacity);
    let outbox = Outbox {
        sender,
        max_bytes: cx.settings.outbox_max_bytes,
    };
    let conn = Connection::new(id, peer, outbox, extensions);
    let writer = cx.tracker.spawn(write_loop(sink, outbox_rx, conn.clone()));

    cx.component.on_open(&conn).await;
    let exit = read_loop(&mut stream, &conn, &cx).await;
    if let Exit::Failed(error) = &exit {
        cx.component.on_error(&conn, error).await;
    }
    cx.component.on_close(&conn).await;

    let (code, reason) = close_for(&exit, &conn, &cx.settings);
    conn.close(code, reason.clone());
    let _ = writer.await;
    if matches!(exit, Exit::Closed | Exit::Shutdown | Exit::Failed(_)) {
        // Wait for the client's answering close frame (see CLOSE_TIMEOUT).
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            while let Some(Ok(_)) = stream.next().await {}
        })
        .await;
    }
    info!("connection {id} from {peer} closed: {reason}");
}

/// The handshake-phase checks: path, the component's own checks (Origin),
/// then subprotocol selection.
fn check_handshake<C: Component>(
    component: &C,
    settings: &Settings,
    request: &Request,
    mut response: Response,
    extensions: &mut Extensions,
) -> Result<Response, Rejection> {
    if request.uri().path() != settings.path {
        return Err(Rejection::new(
            404,
            format!("no WebSocket endpoint at {}", request.uri().path()),
        ));
    }
    component.on_handshake(request, extensions)?;
    if let Some(offered) = request.headers().get(header::SEC_WEBSOCKET_PROTOCOL) {
        let offered = offered.to_str().unwrap_or_default();
        if !offered.split(',').any(|p| p.trim() == SUBPROTOCOL) {
            return Err(Rejection::new(
                400,
                format!("unsupported subprotocol {offered:?}; this server speaks {SUBPROTOCOL}"),
            ));
        }
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    Ok(response)
}

fn error_response(rejection: &Rejection) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(rejection.reason.clone()));
    *response.status_mut() =
        StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::FORBIDDEN);
    response
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
        tokio::select! {
            frame = stream.next() => {
                last_seen = Instant::now();
                match frame {
                    Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                        cx.component.on_message(conn, message).await;
                    }
                    Some(Ok(Message::Close(frame))) => return Exit::ClientClosed(frame),
                    // Pings are answered by tungstenite; pongs only count as
                    // a sign of life.
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Exit::Failed(e.into()),
                    None => return Exit::Eof,
                }
            }
            _ = heartbeat.tick() => {
                if last_seen.elapsed() >= settings.client_timeout {
                    return Exit::Failed(ConnectionError::Timeout);
                }
                let _ = conn.send(Message::Ping(Bytes::new()));
            }
            () = conn.closing() => return Exit::Closed,
            () = cx.shutdown.cancelled() => return Exit::Shutdown,
        }
    }
}

/// The close code and reason for a connection that ended with `exit`.
fn close_for(exit: &Exit, conn: &Connection, settings: &Settings) -> (CloseCode, String) {
    match exit {
        Exit::ClientClosed(Some(frame)) => (
            CloseCode(frame.code.into()),
            format!("client closed ({} {})", u16::from(frame.code), frame.reason),
        ),
        Exit::ClientClosed(None) => (CloseCode::NORMAL, "client closed".to_owned()),
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
    }
}

/// Owns the sink: writes queued frames, batching whatever is already queued
/// into one flush, until the connection is asked to close; then sends the
/// close frame.
async fn write_loop(mut sink: Sink, mut outbox: mpsc::Receiver<Message>, conn: Connection) {
    loop {
        let first = tokio::select! {
            biased;
            () = conn.closing() => break,
            next = outbox.recv() => match next {
                Some(message) => message,
                None => break,
            },
        };
        let write = async {
            let size = first.len();
            sink.feed(first).await?;
            conn.written(size);
            while let Ok(message) = outbox.try_recv() {
                let size = message.len();
                sink.feed(message).await?;
                conn.written(size);
            }
            sink.flush().await
        };
        // A client that stops reading blocks the write; closing must still
        // get through, so the write races the close request.
        let written = tokio::select! {
            () = conn.closing() => break,
            written = write => written,
        };
        if let Err(e) = written {
            debug!("connection {}: write failed: {e}", conn.id());
            conn.close(CloseCode::NORMAL, format!("write failed: {e}"));
            break;
        }
    }
    if let Some(request) = conn.close_request() {
        // The reason must fit in a control frame (125 bytes with the code).
        let mut reason = request.reason.clone();
        while reason.len() > 123 {
            reason.pop();
        }
        let frame = CloseFrame {
            code: request.code.0.into(),
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
    }
}
