//! Bad input gets an error frame with a documented code; the connection stays
//! usable and other clients notice nothing.

mod common;

use common::{Client, start_server, start_server_with};
use futures_util::SinkExt;
use protocol::CloseCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Every class of bad frame, with the code the server must answer.
fn bad_frames() -> Vec<(Message, &'static str)> {
    let text = |v: serde_json::Value| Message::text(v.to_string());
    vec![
        (Message::text("not json"), "invalid_json"),
        (Message::text("{\"type\":"), "invalid_json"),
        (Message::text(""), "invalid_json"),
        (Message::text("[\"post\"]"), "invalid_message"),
        (text(json!({"room": "lobby"})), "invalid_message"),
        (
            text(json!({"type": "shout", "room": "lobby"})),
            "unknown_type",
        ),
        (
            text(json!({"type": "post", "room": "lobby"})),
            "invalid_message",
        ),
        (text(json!({"type": "join"})), "invalid_message"),
        (
            text(json!({"type": "post", "room": "lobby", "text": 42})),
            "invalid_message",
        ),
        (
            text(json!({"type": "post", "room": "lobby", "text": "x".repeat(2001)})),
            "text_too_long",
        ),
        (
            text(json!({"type": "post", "room": "lobby", "text": " "})),
            "invalid_text",
        ),
        (
            text(json!({"type": "join", "room": "no spaces"})),
            "invalid_room",
        ),
        (
            text(json!({"type": "post", "room": "lobby", "text": "a\u{202E}b"})),
            "invalid_text",
        ),
        (
            text(json!({"type": "publish", "room": "lobby", "name": "<script>", "text": "t"})),
            "invalid_name",
        ),
        (
            text(json!({"type": "publish", "room": "lobby", "name": "", "text": "t"})),
            "invalid_name",
        ),
        (
            text(json!({"type": "publish", "room": "lobby", "name": "Ada\u{3164}", "text": "t"})),
            "invalid_name",
        ),
        (
            text(json!({"type": "post", "room": "elsewhere", "text": "hi"})),
            "not_joined",
        ),
        (
            text(json!({"type": "leave", "room": "elsewhere"})),
            "not_joined",
        ),
        (
            Message::binary(vec![0_u8, 159, 146, 150]),
            "binary_not_supported",
        ),
    ]
}

#[tokio::test]
async fn each_bad_frame_gets_its_error_code_and_the_connection_stays_usable() {
    let server = start_server().await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    for (frame, code) in bad_frames() {
        ada.ws
            .send(frame.clone())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ada.recv_error().await, code, "for frame {frame:?}");
    }
    let ack = ada.post_acked("lobby", "still here").await;
    assert_eq!(ack.name.as_str(), "Ada");
}

#[tokio::test]
async fn bad_frames_do_not_disturb_other_clients() {
    let server = start_server().await;
    let mut bad = Client::joined(&server, "lobby", "Bad").await;
    let mut good = Client::joined(&server, "lobby", "Good").await;
    assert!(matches!(
        bad.recv().await,
        protocol::ServerMessage::MemberJoined { .. }
    ));
    for (frame, _) in bad_frames() {
        bad.ws.send(frame).await.unwrap_or_else(|e| panic!("{e}"));
        bad.recv_error().await;
    }
    bad.post_acked("lobby", "sorry").await;
    // The first frame Good sees is the one real message.
    assert_eq!(good.recv_chat().await.text.as_str(), "sorry");
}

#[tokio::test]
async fn markup_in_text_is_delivered_verbatim() {
    let server = start_server().await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let text = "<img src=x onerror=alert(1)> & \"quotes\"\nline two";
    assert_eq!(ada.post_acked("lobby", text).await.text.as_str(), text);
}

#[tokio::test]
async fn an_oversized_frame_closes_only_that_connection_with_1009() {
    let server = start_server_with(|s| s.max_frame_bytes = 4096).await;
    let mut big = Client::joined(&server, "lobby", "Big").await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    big.send_text("x".repeat(10_000)).await;
    let close = big.recv_close().await.map(|f| u16::from(f.code));
    assert_eq!(close, Some(CloseCode::MESSAGE_TOO_BIG.0));

    ada.post_acked("lobby", "unaffected").await;
}

#[tokio::test]
async fn many_garbage_frames_in_a_row_are_all_answered() {
    let server = start_server().await;
    let mut ada = Client::connect(&server).await;
    for i in 0..200 {
        ada.send_text(format!("garbage {i}")).await;
    }
    for _ in 0..200 {
        assert_eq!(ada.recv_error().await, "invalid_json");
    }
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_only_that_connection_with_1007() {
    let server = start_server().await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let mut raw = common::raw_connection(&server).await;
    common::write_raw_frame(&mut raw, 0x1, &[b'{', 0xff, 0xfe, b'}']).await;
    assert_eq!(
        common::raw_close_code(&mut raw).await,
        CloseCode::INVALID_PAYLOAD.0
    );
    ada.post_acked("lobby", "unaffected").await;
}
