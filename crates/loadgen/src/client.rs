//! One benchmark connection: how it connects, joins and sends, in either
//! mode, and the checks that keep every run on this machine.
//!
//! In `duplex` mode a connection is a Duplex member: it presents a token
//! minted with the shared secret, waits for `welcome`, joins a room and
//! posts. In `relay` mode the server is a plain relay (every text frame to
//! every client): a connection just sends its payload as the frame.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use protocol::{Claims, DisplayName, Role, Secret, UserId};
use serde::Serialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::raw::{RawError, RawWs};

/// An open benchmark connection.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a handshake (and, in duplex mode, the `welcome`) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a `join` may wait for `joined`: the answer carries the room's
/// members and history, which takes a while in a crowded room.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a close may wait to be sent: a server that stopped reading
/// must not hold the run.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Loopback addresses (127.0.0.1 and up) that connections to an IPv4
/// loopback server come from, in turn (see `Endpoint::connect`).
const SOURCE_ADDRESSES: u64 = 16;

/// What the frames a connection waits for start with.
const WELCOME: &str = r#"{"type":"welcome""#;
const JOINED: &str = r#"{"type":"joined""#;
const ERROR: &str = r#"{"type":"error""#;

/// Tokens outlive any run (runs are bounded well below this).
const TOKEN_TTL_SECS: u64 = 3600;

/// Bytes of socket data read at once: about 17 frames of a 64-byte
/// payload. tungstenite zeroes this much before every read, the last one
/// that finds the socket empty included (9 % of the generator's CPU at
/// 16 KiB under fanout), and allocates it eagerly per connection.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Bytes buffered before a write reaches the socket; `flush` writes sooner.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

/// The most of a refusal quoted in an error.
const QUOTE_CHARS: usize = 160;

/// Which kind of server is under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Duplex's ws-server: tokens, rooms, JSON frames.
    Duplex,
    /// A plain relay: every text frame to every client, no token, no room.
    Relay,
}

/// Why a connection could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is malformed or the WebSocket failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// A step did not finish in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The server closed before the step finished.
    #[error("closed by the server while waiting for {0}")]
    Closed(&'static str),
    /// The server answered with an error frame.
    #[error("refused: {0}")]
    Refused(String),
    /// A user id or display name the protocol refuses (never for ours).
    #[error("identity: {0}")]
    Identity(#[from] protocol::ValidationError),
    /// A raw connection failed.
    #[error(transparent)]
    Raw(#[from] RawError),
    /// No TCP connection could be opened.
    #[error("connect: {0}")]
    Connect(String),
    /// The target has no URL for the connection (never: a target has one).
    #[error("no URL to connect to")]
    NoUrl,
}

/// Why a run cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The URL cannot be parsed.
    #[error("--url {url}: {error}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        error: String,
    },
    /// The URL names a host that is not this machine.
    #[error("--url {0}: load goes to loopback addresses only (127.0.0.0/8, ::1, localhost)")]
    NotLoopback(String),
    /// Duplex mode without a usable secret.
    #[error("duplex mode needs --secret (or DUPLEX_BENCH_SECRET): {0}")]
    Secret(String),
}

/// Where and how every connection of a run connects.
#[derive(Debug, Clone)]
pub struct Target {
    /// One server, or several instances that connections are split over.
    endpoints: Vec<Endpoint>,
    mode: Mode,
    secret: Option<Secret>,
    /// Part of every user id, so that two runs against one server never
    /// share a user (a user shows one name per room).
    run_tag: String,
}

impl Target {
    /// A target at `urls`, each of which must resolve to loopback
    /// addresses only: connection number `i` goes to `urls[i mod n]`.
    ///
    /// # Errors
    /// No URL, a malformed or non-loopback one, or duplex mode without a
    /// valid secret.
    pub async fn new<S: AsRef<str>>(
        urls: &[S],
        mode: Mode,
        secret: Option<&str>,
    ) -> Result<Self, SetupError> {
        if urls.is_empty() {
            return Err(SetupError::Url {
                url: String::new(),
                error: "no URL given".to_owned(),
            });
        }
        let mut endpoints = Vec::with_capacity(urls.len());
        for url in urls {
            endpoints.push(Endpoint::resolve(url.as_ref()).await?);
        }
        let secret = match (mode, secret) {
            (Mode::Relay, _) => None,
            (Mode::Duplex, None) => return Err(SetupError::Secret("none given".to_owned())),
            (Mode::Duplex, Some(s)) => {
                Some(Secret::new(s).map_err(|e| SetupError::Secret(e.to_string()))?)
            }
        };
        Ok(Self {
            endpoints,
            mode,
            secret,
            run_tag: format!("{:x}", std::process::id()),
        })
    }

    /// The URLs connections are split over, in order.
    #[must_use]
    pub fn urls(&self) -> Vec<&str> {
        self.endpoints.iter().map(|e| e.url.as_str()).collect()
    }

    /// The URL connection number `index` goes to: the `(index mod n)`-th,
    /// so consecutive indices alternate between instances.
    #[must_use]
    pub fn url_of(&self, index: u64) -> &str {
        self.endpoint_of(index).map_or("", |e| e.url.as_str())
    }

    /// The source address slot of connection number `index`: consecutive
    /// connections to one instance take the slots in turn, so every
    /// instance sees all of them.
    fn source_of(&self, index: u64) -> u8 {
        let n = self.endpoints.len().max(1) as u64;
        // Below SOURCE_ADDRESSES (16), so it fits.
        ((index / n) % SOURCE_ADDRESSES) as u8
    }

    fn endpoint_of(&self, index: u64) -> Option<&Endpoint> {
        // `new` refuses an empty list; `max` only keeps the division safe.
        let n = self.endpoints.len().max(1) as u64;
        self.endpoints.get((index % n) as usize)
    }

    /// The mode every connection speaks.
    #[must_use]
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Opens connection number `index` of the run; in duplex mode as its
    /// own member, once `welcome` arrived.
    ///
    /// # Errors
    /// A failed handshake (refusals included), a timeout, or a close before
    /// `welcome`.
    pub async fn connect(&self, index: u64) -> Result<Ws, ClientError> {
        let mut request = self.url_of(index).into_client_request()?;
        if let Some(bearer) = self.authorization(index)? {
            // A token's alphabet (base64url and '.') is valid in a header.
            let value = HeaderValue::from_str(&bearer)
                .map_err(|e| ClientError::Refused(format!("token header: {e}")))?;
            request.headers_mut().insert("Authorization", value);
        }
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(WRITE_BUFFER_BYTES);
        let endpoint = self.endpoint_of(index).ok_or(ClientError::NoUrl)?;
        let handshake = async {
            let tcp = endpoint.connect(self.source_of(index)).await?;
            tokio_tungstenite::client_async_with_config(
                request,
                MaybeTlsStream::Plain(tcp),
                Some(config),
            )
            .await
            .map_err(ClientError::from)
        };
        let (mut ws, _response) = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
            .await
            .map_err(|_| ClientError::Timeout("the handshake"))??;
        if self.mode == Mode::Duplex {
            let welcome = wait_for(&mut ws, WELCOME, "welcome");
            tokio::time::timeout(CONNECT_TIMEOUT, welcome)
                .await
                .map_err(|_| ClientError::Timeout("welcome"))??;
        }
        Ok(ws)
    }

    /// The `Authorization` value of connection number `index`: a member
    /// token in duplex mode, nothing for a relay.
    fn authorization(&self, index: u64) -> Result<Option<String>, ClientError> {
        let Some(secret) = &self.secret else {
            return Ok(None);
        };
        let claims = Claims::new(
            UserId::new(format!("bench-{}-{index}", self.run_tag))?,
            DisplayName::new(format!("bench {index}"))?,
            Role::Member,
            TOKEN_TTL_SECS,
        );
        Ok(Some(format!(
            "Bearer {}",
            protocol::token::sign(&claims, secret)
        )))
    }

    /// [`Target::member`] on a [`RawWs`]: for readers, whose frames are
    /// the bulk of a fan-out.
    ///
    /// # Errors
    /// As [`Target::member`].
    pub async fn raw_member(&self, index: u64, room: &str) -> Result<RawWs, ClientError> {
        let headers: Vec<String> = self
            .authorization(index)?
            .map(|bearer| format!("Authorization: {bearer}"))
            .into_iter()
            .collect();
        let endpoint = self.endpoint_of(index).ok_or(ClientError::NoUrl)?;
        let connect = async {
            let tcp = endpoint.connect(self.source_of(index)).await?;
            let mut ws = RawWs::connect(tcp, &endpoint.host, &endpoint.path, &headers).await?;
            if self.mode == Mode::Duplex {
                ws.wait_for(WELCOME.as_bytes(), ERROR.as_bytes()).await?;
            }
            Ok::<_, ClientError>(ws)
        };
        let mut ws = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| ClientError::Timeout("the handshake"))??;
        if self.mode == Mode::Duplex {
            let join = async {
                ws.send_text(&join_frame(room)).await?;
                ws.wait_for(JOINED.as_bytes(), ERROR.as_bytes()).await
            };
            tokio::time::timeout(JOIN_TIMEOUT, join)
                .await
                .map_err(|_| ClientError::Timeout("joined"))??;
        }
        Ok(ws)
    }

    /// Joins `room` (duplex mode; a relay has no rooms) and waits for
    /// `joined`.
    ///
    /// # Errors
    /// An error frame, a timeout or a close before `joined`.
    pub async fn join(&self, ws: &mut Ws, room: &str) -> Result<(), ClientError> {
        if self.mode == Mode::Relay {
            return Ok(());
        }
        ws.send(Message::text(join_frame(room))).await?;
        let joined = wait_for(ws, JOINED, "joined");
        tokio::time::timeout(JOIN_TIMEOUT, joined)
            .await
            .map_err(|_| ClientError::Timeout("joined"))?
    }

    /// [`Target::connect`] then [`Target::join`].
    ///
    /// # Errors
    /// As those two.
    pub async fn member(&self, index: u64, room: &str) -> Result<Ws, ClientError> {
        let mut ws = self.connect(index).await?;
        self.join(&mut ws, room).await?;
        Ok(ws)
    }

    /// The frame that sends `payload` to `room`: a `post` in duplex mode
    /// (room names and payloads need no JSON escaping), the payload itself
    /// to a relay.
    #[must_use]
    pub fn outgoing(&self, room: &str, payload: &str) -> String {
        match self.mode {
            Mode::Duplex => format!(r#"{{"type":"post","room":"{room}","text":"{payload}"}}"#),
            Mode::Relay => payload.to_owned(),
        }
    }
}

/// One server's URL, and what a connection needs of it: the loopback
/// addresses it resolved to, its `Host` header and its path.
#[derive(Debug, Clone)]
struct Endpoint {
    url: String,
    addrs: Vec<SocketAddr>,
    host: String,
    path: String,
}

impl Endpoint {
    /// Opens a TCP connection, trying each address in turn. To an IPv4
    /// loopback address it connects from 127.0.0.(1 + `source`), one of
    /// [`SOURCE_ADDRESSES`]: each has its own ephemeral ports, and with one
    /// the kernel's search for a free port took most of the generator's
    /// CPU past 10,000 connections.
    async fn connect(&self, source: u8) -> Result<TcpStream, ClientError> {
        let mut last = None;
        for addr in &self.addrs {
            let attempt = async {
                let socket = match addr {
                    SocketAddr::V4(_) => {
                        let socket = TcpSocket::new_v4()?;
                        let source = Ipv4Addr::new(127, 0, 0, 1 + source);
                        match socket.bind(SocketAddr::from((source, 0))) {
                            // Where 127/8 is not all local, from 127.0.0.1.
                            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                                TcpSocket::new_v4()?
                            }
                            bound => {
                                bound?;
                                socket
                            }
                        }
                    }
                    SocketAddr::V6(_) => TcpSocket::new_v6()?,
                };
                let tcp = socket.connect(*addr).await?;
                tcp.set_nodelay(true)?;
                Ok::<_, std::io::Error>(tcp)
            };
            match attempt.await {
                Ok(tcp) => return Ok(tcp),
                Err(e) => last = Some(e),
            }
        }
        Err(ClientError::Connect(
            last.map_or_else(|| "no address".to_owned(), |e| e.to_string()),
        ))
    }

    /// Parses and resolves `url`, which must name loopback addresses only.
    async fn resolve(url: &str) -> Result<Self, SetupError> {
        let url_error = |error: String| SetupError::Url {
            url: url.to_owned(),
            error,
        };
        let request = url
            .into_client_request()
            .map_err(|e| url_error(e.to_string()))?;
        let uri = request.uri();
        if uri.scheme_str() != Some("ws") {
            return Err(url_error(
                "only ws:// (the load stays on loopback, without TLS)".to_owned(),
            ));
        }
        let host = uri
            .host()
            .ok_or_else(|| url_error("no host".to_owned()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(80);
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| url_error(e.to_string()))?
            .collect();
        if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
            return Err(SetupError::NotLoopback(url.to_owned()));
        }
        Ok(Self {
            url: url.to_owned(),
            addrs,
            host: uri
                .authority()
                .map_or_else(|| host.clone(), ToString::to_string),
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), ToString::to_string),
        })
    }
}

/// Reads frames until a text frame starting with `prefix`; an `error`
/// frame first is a refusal. Other frames (presence, others' messages) are
/// skipped.
async fn wait_for(ws: &mut Ws, prefix: &str, what: &'static str) -> Result<(), ClientError> {
    while let Some(frame) = ws.next().await {
        if let Message::Text(text) = frame? {
            if text.starts_with(prefix) {
                return Ok(());
            }
            if text.starts_with(ERROR) {
                return Err(ClientError::Refused(
                    text.chars().take(QUOTE_CHARS).collect(),
                ));
            }
        }
    }
    Err(ClientError::Closed(what))
}

/// Closes `ws` politely, giving up after [`CLOSE_TIMEOUT`]: the socket is
/// dropped either way.
pub async fn close(mut ws: Ws) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
}

/// The `join` frame for `room` (bench room names need no JSON escaping).
fn join_frame(room: &str) -> String {
    format!(r#"{{"type":"join","room":"{room}"}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ws://127.0.0.1:5000/ws";
    const B: &str = "ws://[::1]:5002/ws";

    #[tokio::test]
    async fn connections_alternate_between_the_urls() {
        let target = Target::new(&[A, B], Mode::Relay, None).await.unwrap();
        assert_eq!(target.urls(), [A, B]);
        let split: Vec<&str> = (0..5).map(|i| target.url_of(i)).collect();
        assert_eq!(split, [A, B, A, B, A]);
        // A fanout's writers come after its readers, whatever their count:
        // both groups alternate.
        assert_eq!(target.url_of(100), A);
        assert_eq!(target.url_of(101), B);
        assert_eq!(target.url_of(u64::MAX), B);
    }

    #[tokio::test]
    async fn every_instance_sees_every_source_address() {
        let target = Target::new(&[A, B], Mode::Relay, None).await.unwrap();
        for url in [A, B] {
            let mut sources: Vec<u8> = (0..64)
                .filter(|&i| target.url_of(i) == url)
                .map(|i| target.source_of(i))
                .collect();
            sources.sort_unstable();
            sources.dedup();
            assert_eq!(sources, (0..16).collect::<Vec<u8>>(), "{url}");
        }
    }

    #[tokio::test]
    async fn one_url_takes_every_connection() {
        let target = Target::new(&[A], Mode::Relay, None).await.unwrap();
        assert!((0..10).all(|i| target.url_of(i) == A));
    }

    #[tokio::test]
    async fn every_url_must_be_loopback() {
        let refused = Target::new(&[A, "ws://192.0.2.1:5000/ws"], Mode::Relay, None).await;
        assert!(
            matches!(refused, Err(SetupError::NotLoopback(ref url)) if url.contains("192.0.2.1")),
            "{refused:?}"
        );
        let none: [&str; 0] = [];
        assert!(Target::new(&none, Mode::Relay, None).await.is_err());
        assert!(
            Target::new(&[A, "not a url"], Mode::Relay, None)
                .await
                .is_err()
        );
    }
}
