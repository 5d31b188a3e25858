//! Heartbeats, timeouts and shutdown, as a client sees them.

mod common;

use std::time::Duration;

use common::{Client, start_server, start_server_with};
use protocol::CloseCode;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::MaybeTlsStream;
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

#[tokio::test]
async fn the_server_pings_and_clients_that_answer_stay_connected() {
    let server = start_server_with(|s| {
        s.heartbeat_interval = Duration::from_millis(20);
        s.client_timeout = Duration::from_millis(100);
    })
    .await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    // Reading answers each ping; ten pings span twice the timeout.
    let mut pings = 0;
    while pings < 10 {
        match tokio::time::timeout(
            Duration::from_secs(5),
            futures_util::StreamExt::next(&mut ada.ws),
        )
        .await
        {
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            other => panic!("expected pings, got {other:?}"),
        }
    }
    ada.post_acked("lobby", "still connected").await;
}

/// Reads raw server frames (unmasked, as servers send them) until a close
/// frame, and returns its code. The client never answers pings.
async fn raw_close_code(stream: &mut tokio::net::TcpStream) -> u16 {
    loop {
        let mut header = [0_u8; 2];
        stream
            .read_exact(&mut header)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let opcode = header[0] & 0x0f;
        let mut len = u64::from(header[1] & 0x7f);
        if len == 126 {
            len = u64::from(stream.read_u16().await.unwrap_or_else(|e| panic!("{e}")));
        } else if len == 127 {
            len = stream.read_u64().await.unwrap_or_else(|e| panic!("{e}"));
        }
        let mut payload = vec![0_u8; usize::try_from(len).unwrap_or(0)];
        stream
            .read_exact(&mut payload)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if opcode == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

#[tokio::test]
async fn silent_clients_are_closed_with_heartbeat_timeout() {
    let server = start_server_with(|s| {
        s.heartbeat_interval = Duration::from_millis(20);
        s.client_timeout = Duration::from_millis(100);
    })
    .await;
    let (ws, _) = tokio_tungstenite::connect_async(common::request(
        &server.url(),
        Some(common::ORIGIN),
        None,
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let MaybeTlsStream::Plain(mut tcp) = ws.into_inner() else {
        panic!("plain TCP expected");
    };
    let code = tokio::time::timeout(Duration::from_secs(5), raw_close_code(&mut tcp))
        .await
        .unwrap_or_else(|_| panic!("no close frame"));
    assert_eq!(code, CloseCode::HEARTBEAT_TIMEOUT.0);
}
