//! Slow clients: a request head or body that stalls is cut within its
//! timeout, while other clients are served. A real server on port 0, raw
//! TCP clients, and short timeouts (actix's timers run on real time).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The timeouts the test server runs with.
const HEAD_TIMEOUT: Duration = Duration::from_millis(300);
const BODY_TIMEOUT: Duration = Duration::from_millis(300);
/// How much later than its timeout a stalled client may be cut: timers
/// are checked on a tick, and the machine may be busy.
const SLACK: Duration = Duration::from_secs(2);

struct Running {
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
}

async fn start() -> Running {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = app_server::Settings {
        ws_service_url: "ws://127.0.0.1:9/ws".into(),
        client_request_timeout: HEAD_TIMEOUT,
        body_timeout: BODY_TIMEOUT,
        keep_alive: Duration::from_secs(5),
        ..settings()
    };
    let server = app_server::server(listener, settings).unwrap();
    let handle = server.handle();
    actix_rt::spawn(server);
    Running { addr, handle }
}

/// Sends `request` on a new connection and reads the whole answer (the
/// server closes after it); returns it and how long it took.
async fn exchange(addr: SocketAddr, request: &[u8]) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        HEAD_TIMEOUT + BODY_TIMEOUT + SLACK,
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the server did not cut the stalled client");
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

/// A complete, quick request from another client.
async fn served_meanwhile(addr: SocketAddr) {
    let (answer, _) = exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: localhost:5001\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[actix_rt::test]
async fn a_stalled_request_head_is_cut_while_others_are_served() {
    let server = start().await;
    let stalled = exchange(server.addr, b"GET / HTTP/1.1\r\nHost: local");
    let ((answer, took), ()) = tokio::join!(stalled, served_meanwhile(server.addr));
    assert!(took >= HEAD_TIMEOUT / 2, "cut too early: {took:?}");
    assert!(took < HEAD_TIMEOUT + SLACK, "cut too late: {took:?}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    server.handle.stop(false).await;
}

#[actix_rt::test]
async fn a_stalled_form_body_is_cut_with_408_while_others_are_served() {
    let server = start().await;
    let stalled = exchange(
        server.addr,
        b"POST /operator HTTP/1.1\r\nHost: localhost:5001\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nkey=abc",
    );
    let ((answer, took), ()) = tokio::join!(stalled, served_meanwhile(server.addr));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took >= BODY_TIMEOUT / 2, "cut too early: {took:?}");
    assert!(took < BODY_TIMEOUT + SLACK, "cut too late: {took:?}");
    server.handle.stop(false).await;
}

#[actix_rt::test]
async fn a_stalled_api_body_is_cut_with_408_once_the_key_is_checked() {
    let server = start().await;
    let request = format!(
        "POST /api/rooms/lobby/messages HTTP/1.1\r\nHost: localhost:5001\r\n\
         Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"text\":"
    );
    let (answer, took) = exchange(server.addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < BODY_TIMEOUT + SLACK, "cut too late: {took:?}");

    server.handle.stop(false).await;
}
