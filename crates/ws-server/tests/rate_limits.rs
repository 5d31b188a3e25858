//! Per-connection budgets: a client that sends too fast is refused with
//! `rate_limited`, one that keeps going is closed with 1008, and others are
//! served throughout.

mod common;

use common::{Client, start_server_with};
use protocol::{CloseCode, ServerMessage};
use serde_json::json;

/// One token a second: nothing refills while a test sends its burst.
fn tight(s: &mut ws_server::Settings) {
    s.max_frames_per_second = 1;
    s.frame_burst = 8;
    s.rate_limit_strikes = 3;
}

#[tokio::test]
async fn a_flood_is_refused_then_closed_with_1008_while_others_are_served() {
    let server = start_server_with(tight).await;
    let mut good = Client::joined(&server, "lobby", "Good").await;
    let mut flood = Client::joined(&server, "lobby", "Flood").await;
    // The join took 4 of the 8 tokens: four posts go through, the next is
    // refused, and the connection stays usable.
    for text in ["1", "2", "3", "4"] {
        flood.post_acked("lobby", text).await;
    }
    flood
        .send_json(json!({"type": "post", "room": "lobby", "text": "two", "ref": "f2"}))
        .await;
    assert_eq!(flood.recv_error().await, "rate_limited");
    // Going on regardless: closed with 1008 (queued refusals may be cut
    // short by the close).
    for i in 0..20 {
        flood
            .send_json(
                json!({"type": "post", "room": "lobby", "text": "spam", "ref": format!("f{i}")}),
            )
            .await;
    }
    let close = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), flood.ws_next()).await {
            Ok(Some(ServerMessage::Error { code, .. })) => {
                assert_eq!(code.as_str(), "rate_limited")
            }
            Ok(Some(ServerMessage::Message(m))) => assert_ne!(m.text.as_str(), "spam"),
            Ok(Some(_)) => {}
            Ok(None) => break flood.close_code(),
            Err(_) => panic!("the flood was never closed"),
        }
    };
    assert_eq!(close, Some(CloseCode::POLICY_VIOLATION.0));
    // The well-behaved member saw the one post stored, not the spam, and
    // its round trips kept flowing.
    for text in ["1", "2", "3", "4"] {
        assert_eq!(good.recv_chat().await.text.as_str(), text);
    }
    for i in 0..3 {
        let mine = good.post_acked("lobby", &format!("still here {i}")).await;
        assert_eq!(mine.name.as_str(), "Good");
    }
}

#[tokio::test]
async fn a_join_costs_more_than_a_post() {
    let server = start_server_with(tight).await;
    let mut ada = Client::connect_as(&server, "Ada").await;
    ada.join("one").await;
    ada.post_acked("one", "1").await;
    ada.post_acked("one", "2").await;
    // Two tokens left: a second join (cost 4) is refused, a post is not.
    ada.send_json(json!({"type": "join", "room": "two", "ref": "j2"}))
        .await;
    match ada.recv().await {
        ServerMessage::Error {
            code, reference, ..
        } => {
            assert_eq!(code.as_str(), "rate_limited");
            assert_eq!(reference.map(|r| r.to_string()).as_deref(), Some("j2"));
        }
        other => panic!("expected rate_limited, got {other:?}"),
    }
    ada.post_acked("one", "a post still fits").await;
}

#[tokio::test]
async fn a_history_request_costs_as_much_as_a_join() {
    let server = start_server_with(tight).await;
    let mut ada = Client::connect_as(&server, "Ada").await;
    ada.join("one").await;
    ada.post_acked("one", "1").await;
    ada.post_acked("one", "2").await;
    // Two tokens left: a history request (cost 4, like a join) is refused.
    ada.send_json(json!({"type": "history", "room": "one", "before": 2, "ref": "h"}))
        .await;
    match ada.recv().await {
        ServerMessage::Error {
            code, reference, ..
        } => {
            assert_eq!(code.as_str(), "rate_limited");
            assert_eq!(reference.map(|r| r.to_string()).as_deref(), Some("h"));
        }
        other => panic!("expected rate_limited, got {other:?}"),
    }
    ada.post_acked("one", "a post still fits").await;
}

#[tokio::test]
async fn service_connections_are_not_rate_limited() {
    let server = start_server_with(tight).await;
    let mut service = Client::connect_service(&server).await;
    for i in 0..30 {
        service
            .send_json(json!({"type": "publish", "room": "news", "name": "News",
                              "text": format!("n{i}"), "ref": format!("p{i}")}))
            .await;
        assert!(
            matches!(service.recv().await, ServerMessage::Ack { .. }),
            "publish {i}"
        );
    }
}
