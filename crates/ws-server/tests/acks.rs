//! Acknowledgements: a request's `ref` comes back with its result.

mod common;

use common::{Client, Engine, start};
use protocol::ServerMessage;
use serde_json::json;

async fn a_post_with_a_ref_is_acknowledged_with_the_stored_id_and_offset(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    ada.send_json(json!({"type": "post", "room": "lobby", "text": "hi", "ref": "c-1"}))
        .await;
    let message = ada.recv_chat().await;
    assert_eq!(message.reference.as_ref().map(|r| r.as_str()), Some("c-1"));
    match ada.recv().await {
        ServerMessage::Ack {
            reference,
            room,
            id,
            offset,
        } => {
            assert_eq!(reference.as_str(), "c-1");
            assert_eq!(room.as_str(), "lobby");
            assert_eq!((id, offset), (message.id, message.offset));
        }
        other => panic!("expected ack, got {other:?}"),
    }
}

async fn a_refused_request_gets_an_error_carrying_its_ref(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let cases = [
        (
            json!({"type": "post", "room": "elsewhere", "text": "hi", "ref": "r1"}),
            "not_joined",
        ),
        (
            json!({"type": "post", "room": "lobby", "text": " ", "ref": "r2"}),
            "invalid_text",
        ),
        (
            json!({"type": "post", "room": "lobby", "text": "x".repeat(2001), "ref": "r3"}),
            "text_too_long",
        ),
        (json!({"type": "shout", "ref": "r4"}), "unknown_type"),
        (
            json!({"type": "publish", "room": "lobby", "name": "X", "text": "t", "ref": "r5"}),
            "forbidden",
        ),
    ];
    for (frame, code) in cases {
        let expected_ref = frame["ref"].as_str().map(str::to_owned);
        ada.send_json(frame).await;
        match ada.recv().await {
            ServerMessage::Error {
                code: c, reference, ..
            } => {
                assert_eq!(c.as_str(), code);
                assert_eq!(reference.map(|r| r.as_str().to_owned()), expected_ref);
            }
            other => panic!("expected error, got {other:?}"),
        }
    }
}

async fn join_and_leave_echo_their_ref(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::connect(&server).await;
    ada.send_json(json!({"type": "join", "room": "lobby", "name": "Ada", "ref": "j"}))
        .await;
    assert!(matches!(
        ada.recv().await,
        ServerMessage::Joined { reference: Some(r), .. } if r.as_str() == "j"
    ));
    ada.send_json(json!({"type": "leave", "room": "lobby", "ref": "l"}))
        .await;
    assert!(matches!(
        ada.recv().await,
        ServerMessage::Left { reference: Some(r), .. } if r.as_str() == "l"
    ));
}

async fn an_invalid_ref_is_refused(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    for bad in [
        json!(5),
        json!(""),
        json!("has space"),
        json!("x".repeat(65)),
    ] {
        ada.send_json(json!({"type": "post", "room": "lobby", "text": "hi", "ref": bad}))
            .await;
        assert_eq!(ada.recv_error().await, "invalid_ref");
    }
}

async fn a_post_without_a_ref_gets_no_separate_ack(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    ada.post_acked("lobby", "first").await;
    // The next frame after the echo is the next echo, not an ack.
    ada.post_acked("lobby", "second").await;
}

both_engines!(
    a_post_with_a_ref_is_acknowledged_with_the_stored_id_and_offset,
    a_refused_request_gets_an_error_carrying_its_ref,
    join_and_leave_echo_their_ref,
    an_invalid_ref_is_refused,
    a_post_without_a_ref_gets_no_separate_ack,
);
