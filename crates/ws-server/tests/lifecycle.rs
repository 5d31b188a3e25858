//! Heartbeats, timeouts and shutdown, as a client sees them.

mod common;

use std::time::Duration;

use common::{Client, start_server, start_server_with};
use protocol::CloseCode;
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

#[tokio::test]
async fn silent_clients_are_closed_with_heartbeat_timeout() {
    let server = start_server_with(|s| {
        s.heartbeat_interval = Duration::from_millis(20);
        s.client_timeout = Duration::from_millis(100);
    })
    .await;
    let mut tcp = common::raw_connection(&server).await;
    let code = common::raw_close_code(&mut tcp).await;
    assert_eq!(code, CloseCode::HEARTBEAT_TIMEOUT.0);
}
