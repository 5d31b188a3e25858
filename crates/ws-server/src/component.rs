//! The application side of a WebSocket server, as Ratchet shaped it.
//!
//! A [`Component`] is Ratchet's `MessageComponentInterface` in Rust: four
//! lifecycle callbacks (`on_open`, `on_message`, `on_close`, `on_error`)
//! plus `on_handshake`, the HTTP phase where Ratchet's decorators such as
//! `OriginCheck` refuse a request. The server guarantees, per connection:
//! `on_handshake` once; then, if accepted, `on_open` once, `on_message` for
//! each data frame in order, `on_error` at most once when the connection
//! fails, and `on_close` exactly once, last.
//!
//! Components talk to peers only through [`Connection`] handles, which queue
//! frames and never block.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use protocol::{CloseCode, ServerMessage};
use tokio_tungstenite::tungstenite::http::Extensions;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes, handshake::server::Request};
use tokio_util::sync::CancellationToken;

use crate::outbox::{Outbox, PushError};

/// The id of one connection, unique within the server process.
pub type ConnectionId = u64;

/// Why a handshake was refused: the HTTP status and a body saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status sent instead of `101 Switching Protocols`; one
    /// that is not a 4xx or 5xx status is sent as 403.
    pub status: u16,
    /// A short reason, sent as the response body and logged.
    pub reason: String,
}

impl Rejection {
    /// A refusal with `status` and `reason`.
    #[must_use]
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }
}

/// Why a connection failed, as passed to [`Component::on_error`].
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Reading failed: I/O, protocol violation, oversized frame.
    #[error(transparent)]
    WebSocket(#[from] tungstenite::Error),
    /// Writing to the client failed (the socket broke under a frame).
    #[error("writing to the client failed: {0}")]
    Write(tungstenite::Error),
    /// The client answered no ping within the client timeout.
    #[error("no frame or pong from the client within the timeout")]
    Timeout,
}

/// The lifecycle callbacks of a WebSocket application (Ratchet's
/// `MessageComponentInterface`, with Ratchet's names in snake case).
///
/// Callbacks for one connection never overlap; callbacks for different
/// connections run concurrently, so shared state needs its own locking.
/// They should return quickly: a connection reads its next frame only after
/// `on_message` returns.
pub trait Component: Send + Sync + 'static {
    /// The HTTP phase: inspect the upgrade request (path, headers) and refuse
    /// it with an HTTP status, or accept it. What the component learns here
    /// (say, that the client is a trusted service) goes into `extensions`,
    /// which the accepted [`Connection`] then carries. Accepts by default.
    ///
    /// # Errors
    /// A [`Rejection`] refuses the request with its status and reason.
    fn on_handshake(
        &self,
        request: &Request,
        extensions: &mut Extensions,
    ) -> Result<(), Rejection> {
        let _ = (request, extensions);
        Ok(())
    }

    /// A connection was accepted (Ratchet's `onOpen`).
    fn on_open(&self, conn: &Connection) -> impl Future<Output = ()> + Send;

    /// A text or binary frame arrived (Ratchet's `onMessage`). Control frames
    /// (ping, pong, close) are handled by the server.
    fn on_message(&self, conn: &Connection, message: Message) -> impl Future<Output = ()> + Send;

    /// The connection is gone, for whatever reason (Ratchet's `onClose`).
    /// Always the last callback for a connection.
    fn on_close(&self, conn: &Connection) -> impl Future<Output = ()> + Send;

    /// The connection failed (Ratchet's `onError`); `on_close` follows.
    fn on_error(
        &self,
        conn: &Connection,
        error: &ConnectionError,
    ) -> impl Future<Output = ()> + Send;

    /// A data frame the server sends to every connection with each
    /// heartbeat's WebSocket ping, for clients that cannot see WebSocket
    /// pings (browsers do not show them to pages) yet must notice a server
    /// gone silent. Called once per tick per connection: return a frame
    /// encoded once (a cheap clone). None by default.
    fn heartbeat_frame(&self) -> Option<Message> {
        None
    }
}

/// Why a connection is being closed by the server side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    /// The close code sent to the client.
    pub code: CloseCode,
    /// The close reason sent to the client (at most 123 bytes on the wire).
    pub reason: String,
}

/// Why [`Connection::send`] did not queue a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The outbox was full: the client is too slow and is being closed.
    #[error("the client's outbox is full")]
    Full,
    /// The connection is already closing.
    #[error("the connection is closed")]
    Closed,
}

/// A cheap, clonable handle to one connection (Ratchet's
/// `ConnectionInterface`): its identity, a way to queue frames for its
/// writer, and a way to close it.
#[derive(Debug, Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    id: ConnectionId,
    peer: SocketAddr,
    /// Frames for the connection's writer task, which owns the socket's sink.
    /// Bounded in frames and bytes, so a client that stops reading cannot
    /// grow server memory.
    outbox: Outbox,
    /// Cancelled when anyone asks the connection to close; the connection's
    /// loop watches it and `close_request` says why.
    closing: CancellationToken,
    /// The first close request wins; later ones are ignored.
    close_request: OnceLock<CloseRequest>,
    /// What the component attached during the handshake.
    extensions: Extensions,
}

impl Connection {
    /// A handle for connection `id` from `peer`, whose frames go to `outbox`,
    /// carrying what the handshake put in `extensions`.
    #[must_use]
    pub fn new(id: ConnectionId, peer: SocketAddr, outbox: Outbox, extensions: Extensions) -> Self {
        Self {
            inner: Arc::new(Inner {
                id,
                peer,
                outbox,
                closing: CancellationToken::new(),
                close_request: OnceLock::new(),
                extensions,
            }),
        }
    }

    /// What the component attached to this connection during the handshake.
    #[must_use]
    pub fn extensions(&self) -> &Extensions {
        &self.inner.extensions
    }

    /// The connection's id.
    #[must_use]
    pub fn id(&self) -> ConnectionId {
        self.inner.id
    }

    /// The client's address.
    #[must_use]
    pub fn peer(&self) -> SocketAddr {
        self.inner.peer
    }

    /// Queues `message` for the client without waiting.
    ///
    /// # Errors
    /// [`SendError::Full`] when the client's outbox is full (in frames or in
    /// bytes); the connection is then closed with
    /// [`CloseCode::SLOW_CONSUMER`], since a client that cannot keep up
    /// would otherwise hold every sender back or lose frames silently.
    /// [`SendError::Closed`] when the connection is gone.
    pub fn send(&self, message: Message) -> Result<(), SendError> {
        match self.inner.outbox.push(message) {
            Ok(()) => Ok(()),
            Err(PushError::Full) => {
                self.close(CloseCode::SLOW_CONSUMER, "outbox full: client too slow");
                Err(SendError::Full)
            }
            Err(PushError::Closed) => Err(SendError::Closed),
        }
    }

    /// Queues an already encoded text frame; broadcasts encode once and
    /// share the bytes.
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub fn send_text(&self, text: Utf8Bytes) -> Result<(), SendError> {
        self.send(Message::Text(text))
    }

    /// Encodes and queues one protocol message.
    ///
    /// # Errors
    /// As [`Connection::send`].
    pub fn send_message(&self, message: &ServerMessage) -> Result<(), SendError> {
        self.send_text(message.to_json().into())
    }

    /// Asks the connection to close with `code` and `reason`. Returns at
    /// once; the close frame is sent by the connection's own task.
    pub fn close(&self, code: CloseCode, reason: impl Into<String>) {
        let _ = self.inner.close_request.set(CloseRequest {
            code,
            reason: reason.into(),
        });
        self.inner.closing.cancel();
    }

    /// Resolves once [`Connection::close`] has been called.
    pub async fn closing(&self) {
        self.inner.closing.cancelled().await;
    }

    /// The close requested through [`Connection::close`], if any.
    #[must_use]
    pub fn close_request(&self) -> Option<&CloseRequest> {
        self.inner.close_request.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::outbox::{OutboxReader, outbox};

    fn connection(capacity: usize, max_bytes: usize) -> (Connection, OutboxReader) {
        let (outbox, reader) = outbox(capacity, max_bytes);
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        (Connection::new(1, peer, outbox, Extensions::new()), reader)
    }

    #[test]
    fn the_byte_budget_closes_a_client_that_falls_behind() {
        let (conn, _rx) = connection(16, 100);
        assert_eq!(conn.send(Message::text("x".repeat(100))), Ok(()));
        assert_eq!(conn.send(Message::text("y")), Err(SendError::Full));
        assert_eq!(
            conn.close_request().map(|r| r.code),
            Some(CloseCode::SLOW_CONSUMER)
        );
    }

    #[test]
    fn one_large_frame_fits_an_outbox_below_its_budget() {
        let (conn, _rx) = connection(16, 100);
        assert_eq!(conn.send(Message::text("a")), Ok(()));
        assert_eq!(conn.send(Message::text("z".repeat(1000))), Ok(()));
        assert!(conn.close_request().is_none());
    }

    #[test]
    fn the_frame_limit_applies_too() {
        let (conn, _rx) = connection(1, usize::MAX);
        assert_eq!(conn.send(Message::text("a")), Ok(()));
        assert_eq!(conn.send(Message::text("b")), Err(SendError::Full));
    }
}
