//! Harness for the transport tests: the server's own accept loop
//! (`server::run`) serving a small component of the tests' own, and a
//! client that writes and reads raw bytes, so that a test can send what no
//! WebSocket library would and see exactly what the server answers.
//!
//! The chat is not involved: what is tested here is the transport, and it
//! stays the same whatever the chat asks of its clients.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::Request;
use tokio_tungstenite::tungstenite::http::Extensions;
use tokio_util::sync::CancellationToken;
use ws_server::{Component, Connection, ConnectionError, Rejection, Settings};

/// How long a test waits for bytes it expects before failing. They arrive
/// in microseconds; this only turns a hang into a readable failure.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The key of RFC 6455's example handshake, and its accept value.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A request header field that makes [`Echo`] refuse the handshake.
pub const REFUSE_HEADER: &str = "X-Test-Refuse";

/// What a component saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Open(u64),
    Message(u64, String),
    Error(u64, String),
    Close(u64),
}

/// The events of one server, shared with its component.
#[derive(Debug, Clone, Default)]
pub struct Events {
    list: Arc<Mutex<Vec<Event>>>,
    changed: Arc<Notify>,
}

impl Events {
    pub fn push(&self, event: Event) {
        self.list.lock().unwrap().push(event);
        self.changed.notify_waiters();
    }

    pub fn all(&self) -> Vec<Event> {
        self.list.lock().unwrap().clone()
    }

    /// Waits until `done` holds for the events so far, and returns them.
    pub async fn wait_for(&self, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                let events = self.all();
                if done(&events) {
                    return events;
                }
                changed.await;
            }
        };
        tokio::time::timeout(DEADLINE, wait)
            .await
            .unwrap_or_else(|_| panic!("events so far: {:?}", self.all()))
    }
}

/// A component that echoes text frames, records every callback, and
/// refuses handshakes that carry [`REFUSE_HEADER`] with 403.
#[derive(Debug, Clone, Default)]
pub struct Echo {
    pub events: Events,
}

impl Component for Echo {
    fn on_handshake(&self, request: &Request, _: &mut Extensions) -> Result<(), Rejection> {
        if request.headers().contains_key(REFUSE_HEADER) {
            return Err(Rejection::new(403, "the test component refuses"));
        }
        Ok(())
    }

    async fn on_open(&self, conn: &Connection) {
        self.events.push(Event::Open(conn.id()));
    }

    async fn on_message(&self, conn: &Connection, message: Message) {
        if let Message::Text(text) = &message {
            self.events
                .push(Event::Message(conn.id(), text.as_str().to_owned()));
        }
        let _ = conn.send(message);
    }

    async fn on_close(&self, conn: &Connection) {
        self.events.push(Event::Close(conn.id()));
    }

    async fn on_error(&self, conn: &Connection, error: &ConnectionError) {
        self.events.push(Event::Error(conn.id(), error.to_string()));
    }
}

/// A server running `server::run` in this process.
pub struct Server {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts [`Echo`] on 127.0.0.1:0 with settings adjusted by `adjust`, and
/// returns the server and the component's events.
pub async fn start(adjust: impl FnOnce(&mut Settings)) -> (Server, Events) {
    let echo = Echo::default();
    let events = echo.events.clone();
    (start_component(echo, adjust).await, events)
}

/// Starts `component` on 127.0.0.1:0 with settings adjusted by `adjust`.
pub async fn start_component<C: Component>(
    component: C,
    adjust: impl FnOnce(&mut Settings),
) -> Server {
    let mut settings = Settings {
        port: 0,
        ..Settings::default()
    };
    adjust(&mut settings);
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ws_server::server::run(
        listener,
        settings,
        component,
        shutdown.clone(),
        ws_server::metrics::Metrics::new(),
    ));
    Server {
        addr,
        shutdown,
        task,
    }
}

/// A valid upgrade request for `/ws`, with `extra` header lines (each
/// ending in `\r\n`) before the blank line.
pub fn upgrade_request(extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// An HTTP response as read off the socket.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Everything, as received.
    pub raw: String,
}

impl Response {
    /// The value of header `name`, if present once or more (the first).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether header `name` lists `token` (comma-separated, any case).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }
}

/// Parses a response head and what follows it.
pub fn parse_response(bytes: &[u8]) -> Response {
    let raw = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response head in {raw:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
        raw: raw.clone(),
    }
}

/// Connects, writes `request`, and reads until the server closes: for
/// refusals, which must end with the connection.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> Response {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut bytes))
        .await
        .expect("the server closes the connection after its answer")
        .expect("the answer is readable (no reset)");
    parse_response(&bytes)
}

/// Reads a response head and nothing after it, a byte at a time, so that
/// frames behind it stay unread.
pub async fn read_head(tcp: &mut TcpStream) -> Response {
    let read = async {
        let mut bytes = Vec::new();
        while !bytes.ends_with(b"\r\n\r\n") {
            bytes.push(tcp.read_u8().await.unwrap());
        }
        bytes
    };
    let bytes = tokio::time::timeout(DEADLINE, read)
        .await
        .expect("a response head arrives");
    parse_response(&bytes)
}

/// Opens a WebSocket connection by hand and returns the socket right
/// after the `101`.
pub async fn open(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(upgrade_request("").as_bytes()).await.unwrap();
    let response = read_head(&mut tcp).await;
    assert_eq!(response.status, 101, "{}", response.raw);
    tcp
}

/// The opcodes of RFC 6455.
pub const TEXT: u8 = 0x1;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xa;

/// One masked client frame with `opcode` and `payload`, as bytes.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37_u8, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => frame.push(0x80 | u8::try_from(n).unwrap()),
        n @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&u64::try_from(n).unwrap().to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Writes one masked client frame.
pub async fn write_frame(tcp: &mut TcpStream, opcode: u8, payload: &[u8]) {
    tcp.write_all(&client_frame(opcode, payload)).await.unwrap();
}

/// One server frame, as read off the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Reads one server frame, which must be unmasked.
pub async fn read_frame(tcp: &mut TcpStream) -> Frame {
    let read = async {
        let mut header = [0_u8; 2];
        tcp.read_exact(&mut header).await.unwrap();
        assert_eq!(header[1] & 0x80, 0, "servers do not mask");
        let mut len = u64::from(header[1] & 0x7f);
        if len == 126 {
            len = u64::from(tcp.read_u16().await.unwrap());
        } else if len == 127 {
            len = tcp.read_u64().await.unwrap();
        }
        let mut payload = vec![0_u8; usize::try_from(len).unwrap()];
        tcp.read_exact(&mut payload).await.unwrap();
        Frame {
            fin: header[0] & 0x80 != 0,
            opcode: header[0] & 0x0f,
            payload,
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("a frame arrives")
}

/// Reads until the server closes the connection; fails if it sends
/// anything more first.
pub async fn expect_eof(tcp: &mut TcpStream) {
    let mut rest = Vec::new();
    tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut rest))
        .await
        .expect("the server closes the connection")
        .expect("without a reset");
    assert!(rest.is_empty(), "unexpected bytes before the end: {rest:?}");
}
