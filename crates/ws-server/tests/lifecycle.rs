//! Heartbeats, timeouts and shutdown, as a client sees them.

mod common;

use std::time::Duration;

use tokio::time::Instant;

use common::{Client, start_server, start_server_with};
use protocol::{CloseCode, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn shutdown_closes_every_client_with_going_away_and_completes() {
    let server = start_server().await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let mut bob = Client::connect(&server).await;
    server.shutdown.cancel();
    for client in [&mut ada, &mut bob] {
        let code = client.recv_close().await.map(|f| u16::from(f.code));
        assert_eq!(code, Some(CloseCode::GOING_AWAY.0));
    }
    server.stop().await;
}

// The heartbeat tests run on paused time: the clock stands still while any
// task can run and, once every task waits, jumps to the next timer. Timers
// then fire in order and nothing sleeps on the wall clock. Paused time
// jumps even while bytes are in flight between the client and the server
// (each hop between them can move the clock to the next timer), so a pong
// may be read a tick or two of virtual time after the ping it answers:
// the timeout is five intervals, and the assertions allow that lag and no
// more.

#[tokio::test(start_paused = true)]
async fn the_server_pings_and_clients_that_answer_stay_connected() {
    let interval = Duration::from_millis(20);
    let timeout = interval * 5;
    let server = start_server_with(|s| {
        s.heartbeat_interval = interval;
        s.client_timeout = timeout;
    })
    .await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let started = Instant::now();
    // Reading answers each ping; ten pings span twice the timeout. Each
    // comes with its `ping` message.
    let mut pings = 0;
    while pings < 10 {
        match tokio::time::timeout(
            Duration::from_secs(5),
            futures_util::StreamExt::next(&mut ada.ws),
        )
        .await
        {
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(Message::Text(text)))) if text.as_str() == PING => {}
            other => panic!("expected pings, got {other:?}"),
        }
    }
    // The pings came one per interval of virtual time, not faster.
    assert!(started.elapsed() >= interval * 9, "{:?}", started.elapsed());
    assert!(started.elapsed() >= timeout * 2 - interval);
    ada.post_acked("lobby", "still connected").await;
}

/// The `ping` message, as on the wire.
const PING: &str = r#"{"type":"ping"}"#;

#[tokio::test(start_paused = true)]
async fn welcome_announces_the_ping_interval_in_milliseconds() {
    let server = start_server_with(|s| s.heartbeat_interval = Duration::from_millis(1500)).await;
    assert_eq!(Client::connect(&server).await.ping_interval_ms, 1500);
    assert_eq!(
        Client::connect_service(&server).await.ping_interval_ms,
        1500
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_that_sends_nothing_gets_a_ping_message_every_interval() {
    // A browser page: the WebSocket pings are answered under it, unseen;
    // what it can see is the `ping` message, once per interval.
    let interval = Duration::from_millis(20);
    let server = start_server_with(|s| {
        s.heartbeat_interval = interval;
        s.client_timeout = interval * 100;
    })
    .await;
    let mut page = Client::connect(&server).await;
    let started = Instant::now();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        match tokio::time::timeout(
            Duration::from_secs(5),
            futures_util::StreamExt::next(&mut page.ws),
        )
        .await
        {
            Ok(Some(Ok(Message::Text(text)))) => {
                assert_eq!(text.as_str(), PING);
                seen.push(started.elapsed());
            }
            // Bounded in virtual time, which WebSocket pings keep moving.
            Ok(Some(Ok(Message::Ping(_)))) => assert!(
                started.elapsed() <= interval * 10,
                "{} ping messages in ten intervals",
                seen.len()
            ),
            other => panic!("expected ping messages, got {other:?}"),
        }
    }
    // One per interval of virtual time: the n-th at n intervals (give or
    // take the lag of paused time described above), never faster.
    for (n, at) in (1_u32..).zip(&seen) {
        assert!(*at >= interval * n - interval / 2, "ping {n} at {at:?}");
        assert!(*at <= interval * (n + 2), "ping {n} at {at:?}");
    }
    // The sign of life costs the page nothing: it is still connected.
    page.send_json(serde_json::json!({"type": "join", "room": "lobby"}))
        .await;
    assert!(matches!(page.recv().await, ServerMessage::Joined { .. }));
}

#[tokio::test(start_paused = true)]
async fn silent_clients_are_closed_with_heartbeat_timeout() {
    let interval = Duration::from_millis(20);
    let timeout = interval * 5;
    let server = start_server_with(|s| {
        s.heartbeat_interval = interval;
        s.client_timeout = timeout;
    })
    .await;
    let mut tcp = common::raw_connection(&server).await;
    let started = Instant::now();
    let code = common::raw_close_code(&mut tcp).await;
    assert_eq!(code, CloseCode::HEARTBEAT_TIMEOUT.0);
    // Closed on the first tick at or after the timeout: not before it, and
    // not much later.
    let waited = started.elapsed();
    assert!(waited >= timeout, "closed after {waited:?}");
    assert!(waited <= timeout + interval * 2, "closed after {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_as_slow_without_holding_back_others() {
    let server = start_server_with(|s| {
        s.outbox_capacity = 256;
        s.outbox_max_bytes = 256 * 1024;
    })
    .await;
    // A member whose socket has a tiny receive buffer, so that what it does
    // not read backs up into its outbox on the server instead of into
    // kernel buffers.
    let socket = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| panic!("{e}"));
    socket
        .set_recv_buffer_size(4096)
        .unwrap_or_else(|e| panic!("{e}"));
    let tcp = socket
        .connect(server.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (ws, _) = tokio_tungstenite::client_async(
        common::authorized_request(&server.url(), Some(common::ORIGIN), None),
        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let tokio_tungstenite::MaybeTlsStream::Plain(mut slow) = ws.into_inner() else {
        panic!("plain TCP expected");
    };
    let join = serde_json::json!({"type": "join", "room": "flood", "name": "Slow"}).to_string();
    common::write_raw_frame(&mut slow, 0x1, join.as_bytes()).await;
    // Read up to `joined` (the welcome may already have been buffered, and
    // dropped, by the handshake's reader).
    loop {
        let (_, payload) = common::read_raw_frame(&mut slow).await;
        if String::from_utf8_lossy(&payload).contains("\"type\":\"joined\"") {
            break;
        }
    }

    let mut fast = Client::joined(&server, "flood", "Fast").await;
    let mut service = Client::connect_service(&server).await;
    let total = 3000;
    // One publish at a time, each acknowledged, so that the reading member
    // can keep up and only the member that does not read falls behind.
    let flood = tokio::spawn(async move {
        let text = "x".repeat(2000);
        for i in 0..total {
            service
                .send_json(serde_json::json!({"type": "publish", "room": "flood",
                                              "name": "Flood", "text": text,
                                              "ref": format!("f{i}")}))
                .await;
            assert!(matches!(service.recv().await, ServerMessage::Ack { .. }));
        }
    });
    // The reader gets every message while the other is dropped.
    let mut received = 0;
    while received < total {
        let message = fast.recv_chat().await;
        if message.name.as_str() == "Flood" {
            received += 1;
        }
    }
    flood.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        common::raw_close_code(&mut slow).await,
        CloseCode::SLOW_CONSUMER.0
    );
}
