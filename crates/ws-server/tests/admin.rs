//! The admin port, scraped over HTTP as Prometheus and a health checker
//! would: counters after a scripted session, readiness that follows the
//! engine's Redis, and the pages' answers to what they do not serve.

mod common;

use std::sync::Arc;

use common::{Client, RedisServer, start_instance, start_server, start_server_with};
use protocol::CloseCode;
use protocol::admin::InstanceStats;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_scripted_session() {
    let server =
        start_server_with(|s| s.write_timeout = std::time::Duration::from_millis(300)).await;

    // Two members; one posts three times, the other once.
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let mut bob = Client::joined(&server, "lobby", "Bob").await;
    let _ = ada.recv().await; // Bob joined
    for text in ["one", "two", "three"] {
        ada.post("lobby", text).await;
    }
    bob.post("lobby", "four").await;
    for _ in 0..4 {
        let _ = ada.recv_chat().await;
        let _ = bob.recv_chat().await;
    }
    // A handshake from a foreign origin is refused (403).
    let refused = tokio_tungstenite::connect_async(common::request(
        &server.url(),
        Some("http://evil.example"),
        None,
    ))
    .await;
    assert!(refused.is_err());

    // Received: two joins and four posts. Sent: to each a welcome and a
    // joined, to Ada Bob's arrival, and the four messages to both.
    let text = server.metrics_with("duplex_messages_sent_total 13").await;
    for line in [
        "duplex_connections_open 2",
        "duplex_handshakes_accepted_total 2",
        "duplex_handshakes_refused_total{reason=\"forbidden\"} 1",
        "duplex_messages_received_total 6",
        "duplex_rooms 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from\n{text}"
        );
    }

    // Ada leaves with a close frame.
    ada.ws.close(None).await.unwrap_or_else(|e| panic!("{e}"));
    let _ = ada.recv_close().await;
    server
        .metrics_with("duplex_connections_closed_total{reason=\"client_closed\"} 1")
        .await;
    server.metrics_with("duplex_connections_open 1").await;

    // A member that stops reading while a service floods its room is
    // closed as slow.
    let mut slow = common::stalled_member(&server, "flood").await;
    let mut service = Client::connect_service(&server).await;
    let text = "x".repeat(2000);
    let flood = tokio::spawn(async move {
        for _ in 0..3000 {
            service
                .send_json(
                    json!({"type": "publish", "room": "flood", "name": "Flood", "text": text}),
                )
                .await;
        }
        service
    });
    // Counted before the member reads anything: reading would unstall it.
    server
        .metrics_with("duplex_connections_closed_total{reason=\"slow_consumer\"} 1")
        .await;
    let _service = flood.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        common::raw_close_code(&mut slow).await,
        CloseCode::SLOW_CONSUMER.0
    );

    // The dashboard's figures say the same.
    let (status, body) = server.admin_get("/stats").await;
    assert_eq!(status, 200);
    let stats: InstanceStats =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(stats.slow_consumer_closes, 1);
    assert_eq!(stats.handshakes_refused, 1);
    assert!(stats.readiness.ready);
    let lobby = stats.rooms.iter().find(|r| r.room.as_str() == "lobby");
    assert_eq!(lobby.map(|r| r.members), Some(1), "{body}");
}

#[tokio::test]
async fn health_and_readiness_answer_in_json_and_other_paths_are_refused() {
    let server = start_server().await;
    let (status, body) = server.admin_get("/healthz").await;
    assert_eq!((status, body.as_str()), (200, "{\"status\":\"ok\"}"));
    let readiness = common::ready_within(&server, true).await;
    assert_eq!(readiness.engine, "memory");
    assert_eq!(server.admin_get("/nope").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_engines_redis() {
    let redis = Arc::new(RedisServer::start().await);
    let port = redis.port();
    let server = start_instance(&redis, |_| {}).await;
    let ready = common::ready_within(&server, true).await;
    assert_eq!(ready.engine, "redis");

    redis.kill().await;
    let down = common::ready_within(&server, false).await;
    assert!(!down.engine_ok, "{down:?}");
    assert!(
        down.reason.as_deref().is_some_and(|r| r.contains("redis")),
        "{down:?}"
    );
    let text = server.admin_get("/metrics").await.1;
    assert!(
        text.contains("duplex_engine_errors_total{operation=\"probe\"}"),
        "{text}"
    );

    let _again = RedisServer::start_on(port)
        .await
        .unwrap_or_else(|| panic!("Redis restarts on port {port}"));
    let back = common::ready_within(&server, true).await;
    assert!(back.engine_ok && back.reason.is_none(), "{back:?}");
    let text = server.admin_get("/metrics").await.1;
    assert!(
        text.contains("duplex_redis_round_trip_seconds_count"),
        "{text}"
    );
}

#[tokio::test]
async fn while_connections_drain_the_instance_says_it_is_not_ready() {
    let server = start_server().await;
    common::ready_within(&server, true).await;
    // A client that will not answer the server's close frame keeps the
    // drain going (up to two seconds).
    let silent = common::raw_connection(&server).await;
    server.shutdown.cancel();
    let draining = common::ready_within(&server, false).await;
    assert!(!draining.accepting, "{draining:?}");
    assert!(draining.engine_ok, "{draining:?}");
    drop(silent);
    server.stop().await;
}
