//! Test harness: a real ws-server on 127.0.0.1:0 and real WebSocket clients.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use protocol::token::TOKEN_SUBPROTOCOL_PREFIX;
use protocol::{Claims, DisplayName, Role, SUBPROTOCOL, Secret, ServerMessage, UserId};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use ws_server::Settings;

/// An origin the test server allows.
pub const ORIGIN: &str = "http://localhost:5001";

/// The token secret of every test server.
pub const SECRET: &str = "test-secret-test-secret-test-secret";

/// A token signed with [`SECRET`] for `user` shown as `name`, valid for an
/// hour.
pub fn token(user: &str, name: &str, role: Role) -> String {
    token_for(user, name, role, 3600)
}

/// [`token`] valid for `ttl_secs`.
pub fn token_for(user: &str, name: &str, role: Role, ttl_secs: u64) -> String {
    let claims = Claims::new(
        UserId::new(user).unwrap(),
        DisplayName::new(name).unwrap(),
        role,
        ttl_secs,
    );
    protocol::token::sign(&claims, &Secret::new(SECRET).unwrap())
}

/// The user id tests give a display name: one per name, so that two
/// clients with one name are one user with two tabs.
pub fn user_of(name: &str) -> String {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("u{hash:016x}")
}

/// How long a test waits for a frame it expects before failing. Frames
/// arrive in microseconds; this only turns a hang into a readable failure.
const FRAME_DEADLINE: Duration = Duration::from_secs(10);

/// A ws-server running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The admin port: health, readiness, metrics, stats.
    pub admin: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<()>,
    /// The Redis this server's engine uses, kept alive as long as it.
    pub redis: Option<Arc<RedisServer>>,
}

/// Which engine a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Memory,
    Redis,
}

/// Runs each named `async fn(Engine)` as two tests, `memory::NAME` and
/// `redis::NAME`: one behavioural suite, both engines.
#[macro_export]
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::common::Engine::Memory).await;
            })*
        }
        mod redis {
            $(#[tokio::test]
            async fn $name() {
                super::$name($crate::common::Engine::Redis).await;
            })*
        }
    };
}

/// Starts a server of `engine` with default settings; for `Redis`, with a
/// Redis of its own.
pub async fn start(engine: Engine) -> TestServer {
    start_with(engine, |_| {}).await
}

/// [`start`] with settings adjusted by `adjust`.
pub async fn start_with(engine: Engine, adjust: impl FnOnce(&mut Settings)) -> TestServer {
    match engine {
        Engine::Memory => start_server_with(adjust).await,
        Engine::Redis => start_instance(&Arc::new(RedisServer::start().await), adjust).await,
    }
}

/// Starts a Redis-engine instance on `redis`: several of them on one Redis
/// act as one server.
pub async fn start_instance(
    redis: &Arc<RedisServer>,
    adjust: impl FnOnce(&mut Settings),
) -> TestServer {
    let url = redis.url();
    let mut server = start_server_with(|s| {
        s.engine = ws_server::settings::EngineKind::Redis;
        s.redis_url = url;
        adjust(s);
    })
    .await;
    server.redis = Some(Arc::clone(redis));
    server
}

pub use testkit::RedisServer;

impl TestServer {
    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// `GET path` on the admin port: the status and the body.
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        testkit::http::get(self.admin, "localhost", path, &[]).await
    }

    /// The metrics text, polled until `line` is in it: figures are counted
    /// just after the events a client sees, so a scrape may come a moment
    /// early. Fails with the last scrape when the line does not appear.
    pub async fn metrics_with(&self, line: &str) -> String {
        let deadline = tokio::time::Instant::now() + FRAME_DEADLINE;
        loop {
            let (status, body) = self.admin_get("/metrics").await;
            assert_eq!(status, 200);
            if body.lines().any(|l| l == line) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{line:?} never appeared in\n{body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Cancels the server and waits until every connection has finished.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        tokio::time::timeout(FRAME_DEADLINE, task)
            .await
            .expect("server stops in time")
            .expect("server task does not panic");
    }
}

/// Starts the chat server on an ephemeral port with default settings.
pub async fn start_server() -> TestServer {
    start_server_with(|_| {}).await
}

/// Starts the chat server with settings adjusted by `adjust`.
pub async fn start_server_with(adjust: impl FnOnce(&mut Settings)) -> TestServer {
    let mut settings = Settings {
        port: 0,
        secret: SECRET.to_owned(),
        // Tests send in bursts; the rate limit has tests of its own.
        max_frames_per_second: 10_000,
        frame_burst: 10_000,
        ..Settings::default()
    };
    adjust(&mut settings);
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let admin_listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let admin = admin_listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(ws_server::serve_chat_with_admin(
        listener,
        admin_listener,
        settings,
        shutdown.clone(),
    ));
    TestServer {
        addr,
        admin,
        shutdown,
        task,
        redis: None,
    }
}

/// Polls `/readyz` until its verdict is `ready` (readiness follows a
/// probe every second); fails with the last answer after a deadline.
pub async fn ready_within(server: &TestServer, ready: bool) -> protocol::admin::Readiness {
    let deadline = tokio::time::Instant::now() + FRAME_DEADLINE;
    loop {
        let (status, body) = server.admin_get("/readyz").await;
        let readiness: protocol::admin::Readiness =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(status == 200, readiness.ready, "{status} {body}");
        if readiness.ready == ready {
            return readiness;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "readiness never became {ready}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A member of `room` whose socket has a tiny receive buffer and that
/// reads nothing after its `joined`: what it does not read backs up into
/// its outbox on the server rather than into kernel buffers.
pub async fn stalled_member(server: &TestServer, room: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(server.addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(
        authorized_request(&server.url(), Some(ORIGIN), None),
        MaybeTlsStream::Plain(tcp),
    )
    .await
    .unwrap();
    let MaybeTlsStream::Plain(mut stalled) = ws.into_inner() else {
        panic!("plain TCP expected");
    };
    let join = json!({"type": "join", "room": room}).to_string();
    write_raw_frame(&mut stalled, 0x1, join.as_bytes()).await;
    loop {
        let (_, payload) = read_raw_frame(&mut stalled).await;
        if String::from_utf8_lossy(&payload).contains("\"type\":\"joined\"") {
            return stalled;
        }
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a `joined` frame said.
#[derive(Debug)]
pub struct Joined {
    pub epoch: String,
    pub offset: u64,
    pub recovered: bool,
    pub members: Vec<String>,
    pub history: Vec<protocol::ChatMessage>,
    pub has_earlier: bool,
}

/// What a `history` answer said.
#[derive(Debug)]
pub struct History {
    pub epoch: String,
    pub messages: Vec<protocol::ChatMessage>,
    pub has_earlier: bool,
    pub reference: Option<String>,
}

impl History {
    /// The offsets of its messages, in order.
    pub fn offsets(&self) -> Vec<u64> {
        self.messages.iter().map(|m| m.offset).collect()
    }
}

/// A WebSocket client speaking the chat protocol.
pub struct Client {
    pub ws: Ws,
    pub connection_id: u64,
    /// The name its token gives it.
    pub name: String,
    /// The user its token names.
    pub user: String,
    /// The `ping` interval its `welcome` announced.
    pub ping_interval_ms: u64,
    /// The server's close frame's code, once seen.
    pub closed: Option<Option<u16>>,
}

/// Builds an upgrade request for `url` with optional Origin and subprotocol.
pub fn request(
    url: &str,
    origin: Option<&str>,
    subprotocol: Option<&str>,
) -> tungstenite::handshake::client::Request {
    let mut request = url.into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_str(origin).unwrap());
    }
    if let Some(p) = subprotocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p).unwrap());
    }
    request
}

/// [`request`] carrying a valid member token in `Authorization`: for
/// tests of the other handshake checks.
pub fn authorized_request(
    url: &str,
    origin: Option<&str>,
    subprotocol: Option<&str>,
) -> tungstenite::handshake::client::Request {
    let mut request = request(url, origin, subprotocol);
    let token = token("tester", "Tester", Role::Member);
    request.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    request
}

impl Client {
    /// Connects from an allowed origin as "Anon" and reads the `welcome`.
    pub async fn connect(server: &TestServer) -> Self {
        Self::connect_as(server, "Anon").await
    }

    /// Connects from an allowed origin, as a browser does (the token in a
    /// subprotocol), as the member `name` ([`user_of`] it), and reads the
    /// `welcome` frame.
    pub async fn connect_as(server: &TestServer, name: &str) -> Self {
        Self::connect_user(server, &user_of(name), name).await
    }

    /// [`Client::connect_as`] with the user given.
    pub async fn connect_user(server: &TestServer, user: &str, name: &str) -> Self {
        let token = token(user, name, Role::Member);
        let offered = format!("{SUBPROTOCOL}, {TOKEN_SUBPROTOCOL_PREFIX}{token}");
        let req = request(&server.url(), Some(ORIGIN), Some(&offered));
        let (ws, response) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(
            response
                .headers()
                .get("Sec-WebSocket-Protocol")
                .map(|v| v.to_str().unwrap()),
            Some(SUBPROTOCOL),
            "the token is never echoed"
        );
        Self::welcomed(ws, user, name).await
    }

    async fn welcomed(ws: Ws, user: &str, name: &str) -> Self {
        let mut client = Self {
            ws,
            connection_id: 0,
            name: name.to_owned(),
            user: user.to_owned(),
            ping_interval_ms: 0,
            closed: None,
        };
        match client.recv().await {
            ServerMessage::Welcome {
                protocol,
                connection_id,
                user: u,
                name: n,
                ping_interval_ms,
            } => {
                assert_eq!(protocol, protocol::PROTOCOL_VERSION);
                assert_eq!((u.as_str(), n.as_str()), (user, name));
                client.connection_id = connection_id;
                client.ping_interval_ms = ping_interval_ms;
            }
            other => panic!("expected welcome, got {other:?}"),
        }
        client
    }

    /// Connects as a service (the app-server), presenting a service token
    /// in `Authorization`, as non-browser clients do.
    pub async fn connect_service(server: &TestServer) -> Self {
        Self::connect_bearer(server, &token("app-server", "Announcements", Role::Service)).await
    }

    /// Connects with `Authorization: Bearer TOKEN` and no Origin.
    pub async fn connect_bearer(server: &TestServer, token: &str) -> Self {
        let mut req = request(&server.url(), None, Some(SUBPROTOCOL));
        req.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let mut client = Self {
            ws,
            connection_id: 0,
            name: String::new(),
            user: String::new(),
            ping_interval_ms: 0,
            closed: None,
        };
        match client.recv().await {
            ServerMessage::Welcome {
                user,
                name,
                ping_interval_ms,
                ..
            } => {
                client.user = user.to_string();
                client.name = name.to_string();
                client.ping_interval_ms = ping_interval_ms;
            }
            other => panic!("expected welcome, got {other:?}"),
        }
        client
    }

    /// Connects as `name` and joins `room`, waiting for the confirmation.
    pub async fn joined(server: &TestServer, room: &str, name: &str) -> Self {
        let mut client = Self::connect_as(server, name).await;
        client.join(room).await;
        client
    }

    /// Joins `room` and hands the client back.
    pub async fn joined_to(mut self, room: &str) -> Self {
        self.join(room).await;
        self
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws.send(Message::text(text.into())).await.unwrap();
    }

    /// Sends a JSON value.
    pub async fn send_json(&mut self, value: Value) {
        self.send_text(value.to_string()).await;
    }

    /// Joins and waits for `joined`.
    pub async fn join(&mut self, room: &str) -> Joined {
        self.send_json(json!({"type": "join", "room": room})).await;
        self.recv_joined(room).await
    }

    /// Joins from a position it saw before, and waits for `joined`.
    pub async fn join_since(&mut self, room: &str, epoch: &str, offset: u64) -> Joined {
        self.send_json(json!({"type": "join", "room": room,
                              "since": {"epoch": epoch, "offset": offset}}))
            .await;
        self.recv_joined(room).await
    }

    async fn recv_joined(&mut self, room: &str) -> Joined {
        let name = self.name.clone();
        match self.recv().await {
            ServerMessage::Joined {
                room: r,
                name: n,
                epoch,
                offset,
                recovered,
                members,
                history,
                has_earlier,
                ..
            } => {
                assert_eq!((r.as_str(), n.as_str()), (room, name.as_str()));
                Joined {
                    epoch: epoch.as_str().to_owned(),
                    offset,
                    recovered,
                    members: members.iter().map(|m| m.name.to_string()).collect(),
                    history,
                    has_earlier,
                }
            }
            other => panic!("expected joined, got {other:?}"),
        }
    }

    /// Asks for the messages of `room` before `before` (at most `limit`),
    /// with `ref` `reference`, and waits for the answer.
    pub async fn history(
        &mut self,
        room: &str,
        before: u64,
        limit: Option<u32>,
        reference: &str,
    ) -> History {
        let mut request = json!({"type": "history", "room": room, "before": before,
                                 "ref": reference});
        if let Some(limit) = limit {
            request["limit"] = json!(limit);
        }
        self.send_json(request).await;
        match self.recv().await {
            ServerMessage::History {
                room: r,
                epoch,
                messages,
                has_earlier,
                reference,
            } => {
                assert_eq!(r.as_str(), room);
                History {
                    epoch: epoch.as_str().to_owned(),
                    messages,
                    has_earlier,
                    reference: reference.map(|r| r.to_string()),
                }
            }
            other => panic!("expected history, got {other:?}"),
        }
    }

    /// Leaves `room` and waits for `left`, skipping the room's traffic.
    pub async fn leave(&mut self, room: &str) {
        self.send_json(json!({"type": "leave", "room": room})).await;
        loop {
            match self.recv().await {
                ServerMessage::Left { room: r, .. } if r.as_str() == room => return,
                ServerMessage::Message(_)
                | ServerMessage::MemberJoined { .. }
                | ServerMessage::MemberLeft { .. } => {}
                other => panic!("expected left, got {other:?}"),
            }
        }
    }

    /// Posts `text` to `room` (no wait).
    pub async fn post(&mut self, room: &str, text: &str) {
        self.send_json(json!({"type": "post", "room": room, "text": text}))
            .await;
    }

    /// Posts and waits for the poster's own copy, the acknowledgement.
    pub async fn post_acked(&mut self, room: &str, text: &str) -> protocol::ChatMessage {
        self.post(room, text).await;
        let message = self.recv_chat().await;
        assert_eq!((message.room.as_str(), message.text.as_str()), (room, text));
        message
    }

    /// The next frame, which must be a protocol message. Heartbeats (the
    /// WebSocket ping and the `ping` message) are skipped: tests of them
    /// read [`Client::ws`].
    pub async fn recv(&mut self) -> ServerMessage {
        loop {
            match self.next_frame().await {
                Message::Text(text) => {
                    match serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("bad server frame {text}: {e}"))
                    {
                        ServerMessage::Ping => {}
                        message => return message,
                    }
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next chat message. Presence events before it are skipped: tests
    /// of presence read frames with [`Client::recv`].
    pub async fn recv_chat(&mut self) -> protocol::ChatMessage {
        loop {
            match self.recv().await {
                ServerMessage::Message(message) => return message,
                ServerMessage::MemberJoined { .. } | ServerMessage::MemberLeft { .. } => {}
                other => panic!("expected a chat message, got {other:?}"),
            }
        }
    }

    /// The next frame, which must be an error; returns its code as on the
    /// wire.
    pub async fn recv_error(&mut self) -> String {
        match self.recv().await {
            ServerMessage::Error { code, message, .. } => {
                assert!(!message.is_empty(), "error {code} has no explanation");
                code.as_str().to_owned()
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// Waits for the server's close frame.
    pub async fn recv_close(&mut self) -> Option<CloseFrame> {
        loop {
            match self.next_frame().await {
                Message::Close(frame) => {
                    // Send tungstenite's queued reply, as a real client does,
                    // so the server need not wait for it.
                    let _ = self.ws.flush().await;
                    return frame;
                }
                Message::Ping(_) | Message::Pong(_) | Message::Text(_) => {}
                other => panic!("expected close, got {other:?}"),
            }
        }
    }

    /// The next protocol message but heartbeats, or `None` once the server
    /// closed the connection (its close frame is kept for
    /// [`Client::close_code`]).
    pub async fn ws_next(&mut self) -> Option<ServerMessage> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => match serde_json::from_str(&text).unwrap() {
                    ServerMessage::Ping => {}
                    message => return Some(message),
                },
                Some(Ok(Message::Close(frame))) => {
                    self.closed = Some(frame.map(|f| u16::from(f.code)));
                    let _ = self.ws.flush().await;
                    return None;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The code of the close frame [`Client::ws_next`] saw.
    pub fn close_code(&self) -> Option<u16> {
        self.closed.flatten()
    }

    async fn next_frame(&mut self) -> Message {
        tokio::time::timeout(FRAME_DEADLINE, self.ws.next())
            .await
            .expect("a frame arrives before the deadline")
            .expect("the connection is still open")
            .expect("the frame is readable")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Completes a handshake, then hands back the bare TCP stream, for tests
/// that must send or withhold bytes a WebSocket library would not.
pub async fn raw_connection(server: &TestServer) -> TcpStream {
    let token = token("raw", "Raw", Role::Member);
    let mut req = request(&server.url(), Some(ORIGIN), None);
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    match ws.into_inner() {
        MaybeTlsStream::Plain(tcp) => tcp,
        _ => panic!("plain TCP expected"),
    }
}

/// Writes one masked client frame with `opcode` and `payload` (under 126
/// bytes), as RFC 6455 requires of clients.
pub async fn write_raw_frame(tcp: &mut TcpStream, opcode: u8, payload: &[u8]) {
    use tokio::io::AsyncWriteExt;
    let mask = [0x12_u8, 0x34, 0x56, 0x78];
    let mut frame = vec![0x80 | opcode, 0x80 | u8::try_from(payload.len()).unwrap()];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    tcp.write_all(&frame).await.unwrap();
}

/// Reads one raw server frame (unmasked, as servers send them): its opcode
/// and payload.
pub async fn read_raw_frame(tcp: &mut TcpStream) -> (u8, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let read = async {
        let mut header = [0_u8; 2];
        tcp.read_exact(&mut header).await.unwrap();
        let opcode = header[0] & 0x0f;
        let mut len = u64::from(header[1] & 0x7f);
        if len == 126 {
            len = u64::from(tcp.read_u16().await.unwrap());
        } else if len == 127 {
            len = tcp.read_u64().await.unwrap();
        }
        let mut payload = vec![0_u8; usize::try_from(len).unwrap()];
        tcp.read_exact(&mut payload).await.unwrap();
        (opcode, payload)
    };
    tokio::time::timeout(FRAME_DEADLINE, read)
        .await
        .expect("a frame arrives")
}

/// Reads raw server frames until a close frame, and returns its code. Never
/// answers pings.
pub async fn raw_close_code(tcp: &mut TcpStream) -> u16 {
    loop {
        let (opcode, payload) = read_raw_frame(tcp).await;
        if opcode == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}
