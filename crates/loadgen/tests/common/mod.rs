//! What the integration tests share: a real ws-server in this process, on a
//! free loopback port, with limits raised as for a benchmark.

// A harness may panic: a failed setup is a failed test with its message.
#![allow(clippy::unwrap_used)]

pub mod relay;

use std::net::SocketAddr;
use std::time::Duration;

use loadgen::client::{Mode, Target};
use loadgen::scenario::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use ws_server::Settings;

/// The token secret the server and the generator share.
pub const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Bytes of every test message.
pub const PAYLOAD: usize = 64;

/// A ws-server serving the chat until dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
}

impl TestServer {
    /// The server's WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// A generator context aimed at this server in duplex mode.
    pub async fn context(&self) -> Context {
        let target = Target::new(&[self.url()], Mode::Duplex, Some(SECRET))
            .await
            .unwrap();
        Context::new(target, None, PAYLOAD)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A generator context aimed at a relay at `addr`.
pub async fn relay_context(addr: SocketAddr) -> Context {
    let target = Target::new(&[format!("ws://{addr}/ws")], Mode::Relay, None)
        .await
        .unwrap();
    Context::new(target, None, PAYLOAD)
}

/// Starts a ws-server on port 0 with the rate limits out of the way.
pub async fn start_server() -> TestServer {
    start_server_with(|_| {}).await
}

/// Starts a ws-server on the Redis engine at `redis_url`: several of them
/// on one Redis act as one server.
pub async fn start_instance(redis_url: &str) -> TestServer {
    start_server_with(|s| {
        s.engine = ws_server::settings::EngineKind::Redis;
        s.redis_url = redis_url.to_owned();
    })
    .await
}

/// A generator context whose connections alternate between `servers`.
pub async fn split_context(servers: &[&TestServer]) -> Context {
    let urls: Vec<String> = servers.iter().map(|s| s.url()).collect();
    let target = Target::new(&urls, Mode::Duplex, Some(SECRET))
        .await
        .unwrap();
    Context::new(target, None, PAYLOAD)
}

/// [`start_server`] with its settings adjusted by `adjust`.
pub async fn start_server_with(adjust: impl FnOnce(&mut Settings)) -> TestServer {
    let mut settings = Settings {
        port: 0,
        secret: SECRET.to_owned(),
        max_connections: 100_000,
        max_connections_per_ip: 100_000,
        max_frames_per_second: 1_000_000,
        frame_burst: 1_000_000,
        ..Settings::default()
    };
    adjust(&mut settings);
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(ws_server::serve_chat(listener, settings, shutdown.clone()));
    TestServer { addr, shutdown }
}

/// A test's own run time, bounded.
pub const TEST_DEADLINE: Duration = Duration::from_secs(30);
