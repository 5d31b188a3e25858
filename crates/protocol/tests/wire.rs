//! Pins the exact JSON of every message: browsers and other clients depend on
//! these shapes, so a change here is a protocol change.

use protocol::{
    ChatMessage, ClientMessage, DisplayName, ErrorCode, MessageText, RoomName, ServerMessage,
};
use serde_json::{Value, json};

fn room(s: &str) -> RoomName {
    RoomName::new(s).unwrap_or_else(|e| panic!("test room {s:?}: {e}"))
}

fn name(s: &str) -> DisplayName {
    DisplayName::new(s).unwrap_or_else(|e| panic!("test name {s:?}: {e}"))
}

fn text(s: &str) -> MessageText {
    MessageText::new(s).unwrap_or_else(|e| panic!("test text {s:?}: {e}"))
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| panic!("serialize: {e}"))
}

#[test]
fn client_messages_have_pinned_json_and_round_trip() {
    let cases = [
        (
            ClientMessage::Join {
                room: room("lobby"),
                name: name("Ada"),
            },
            json!({"type": "join", "room": "lobby", "name": "Ada"}),
        ),
        (
            ClientMessage::Leave {
                room: room("lobby"),
            },
            json!({"type": "leave", "room": "lobby"}),
        ),
        (
            ClientMessage::Post {
                room: room("lobby"),
                text: text("hello"),
            },
            json!({"type": "post", "room": "lobby", "text": "hello"}),
        ),
    ];
    assert_eq!(cases.len(), ClientMessage::TYPES.len());
    for (message, expected) in cases {
        assert_eq!(to_value(&message), expected);
        assert_eq!(
            ClientMessage::decode(&expected.to_string()),
            Ok(message.clone())
        );
        let via_serde: ClientMessage = serde_json::from_value(expected)
            .unwrap_or_else(|e| panic!("deserialize {message:?}: {e}"));
        assert_eq!(via_serde, message);
    }
}

#[test]
fn every_client_type_is_listed() {
    for kind in ClientMessage::TYPES {
        // Each listed type decodes far enough to complain about its fields,
        // never about the type itself.
        let err = ClientMessage::decode(&json!({"type": kind}).to_string());
        assert_eq!(
            err.map_err(|e| e.code),
            Err(ErrorCode::InvalidMessage),
            "{kind}"
        );
    }
}

#[test]
fn server_messages_have_pinned_json_and_round_trip() {
    let id_json = "0192f5e0-8c1a-7cc0-b1c3-5a7f6c2d9e10";
    let id = serde_json::from_value(json!(id_json)).unwrap_or_else(|e| panic!("id: {e}"));
    let cases = [
        (
            ServerMessage::Welcome {
                protocol: 1,
                connection_id: 7,
            },
            json!({"type": "welcome", "protocol": 1, "connection_id": 7}),
        ),
        (
            ServerMessage::Joined {
                room: room("lobby"),
                name: name("Ada"),
            },
            json!({"type": "joined", "room": "lobby", "name": "Ada"}),
        ),
        (
            ServerMessage::Left {
                room: room("lobby"),
            },
            json!({"type": "left", "room": "lobby"}),
        ),
        (
            ServerMessage::Message(ChatMessage {
                id,
                room: room("lobby"),
                name: name("Ada"),
                text: text("hello"),
                ts: 1_764_236_400_000,
            }),
            json!({"type": "message", "id": id_json, "room": "lobby", "name": "Ada",
                   "text": "hello", "ts": 1_764_236_400_000_u64}),
        ),
        (
            ServerMessage::error(ErrorCode::TextTooLong, "too long"),
            json!({"type": "error", "code": "text_too_long", "message": "too long"}),
        ),
    ];
    for (message, expected) in cases {
        assert_eq!(to_value(&message), expected);
        assert_eq!(
            serde_json::from_str::<Value>(&message.to_json()).ok(),
            Some(expected.clone())
        );
        let back: ServerMessage = serde_json::from_value(expected)
            .unwrap_or_else(|e| panic!("deserialize {message:?}: {e}"));
        assert_eq!(back, message);
    }
}

#[test]
fn error_codes_serialize_as_their_documented_names() {
    let codes = [
        ErrorCode::InvalidJson,
        ErrorCode::InvalidMessage,
        ErrorCode::UnknownType,
        ErrorCode::InvalidRoom,
        ErrorCode::InvalidName,
        ErrorCode::InvalidText,
        ErrorCode::TextTooLong,
        ErrorCode::BinaryNotSupported,
        ErrorCode::NotJoined,
    ];
    for code in codes {
        assert_eq!(to_value(&code), json!(code.as_str()));
    }
}

#[test]
fn unknown_fields_are_ignored_for_forward_compatibility() {
    let frame = json!({"type": "leave", "room": "lobby", "future": [1, 2]}).to_string();
    assert_eq!(
        ClientMessage::decode(&frame),
        Ok(ClientMessage::Leave {
            room: room("lobby")
        })
    );
}

#[test]
fn malformed_frames_are_refused_with_precise_codes() {
    let long = "x".repeat(MessageText::MAX_CHARS + 1);
    let cases: Vec<(String, ErrorCode)> = vec![
        ("".into(), ErrorCode::InvalidJson),
        ("hello".into(), ErrorCode::InvalidJson),
        ("{\"type\":\"post\"".into(), ErrorCode::InvalidJson),
        ("[1,2]".into(), ErrorCode::InvalidMessage),
        ("\"join\"".into(), ErrorCode::InvalidMessage),
        ("null".into(), ErrorCode::InvalidMessage),
        (json!({}).to_string(), ErrorCode::InvalidMessage),
        (
            json!({"room": "lobby"}).to_string(),
            ErrorCode::InvalidMessage,
        ),
        (json!({"type": 5}).to_string(), ErrorCode::InvalidMessage),
        (json!({"type": "shout"}).to_string(), ErrorCode::UnknownType),
        (json!({"type": "Join"}).to_string(), ErrorCode::UnknownType),
        (
            json!({"type": "join", "room": "lobby"}).to_string(),
            ErrorCode::InvalidMessage,
        ),
        (
            json!({"type": "join", "name": "Ada"}).to_string(),
            ErrorCode::InvalidMessage,
        ),
        (
            json!({"type": "join", "room": 1, "name": "Ada"}).to_string(),
            ErrorCode::InvalidMessage,
        ),
        (
            json!({"type": "post", "room": "lobby"}).to_string(),
            ErrorCode::InvalidMessage,
        ),
        (
            json!({"type": "post", "room": "lobby", "text": null}).to_string(),
            ErrorCode::InvalidMessage,
        ),
        (
            json!({"type": "join", "room": "", "name": "Ada"}).to_string(),
            ErrorCode::InvalidRoom,
        ),
        (
            json!({"type": "join", "room": "a b", "name": "Ada"}).to_string(),
            ErrorCode::InvalidRoom,
        ),
        (
            json!({"type": "join", "room": "lobby", "name": ""}).to_string(),
            ErrorCode::InvalidName,
        ),
        (
            json!({"type": "join", "room": "lobby", "name": "<img>"}).to_string(),
            ErrorCode::InvalidName,
        ),
        (
            json!({"type": "join", "room": "lobby", "name": "n".repeat(33)}).to_string(),
            ErrorCode::InvalidName,
        ),
        (
            json!({"type": "leave", "room": "x".repeat(65)}).to_string(),
            ErrorCode::InvalidRoom,
        ),
        (
            json!({"type": "post", "room": "lobby", "text": ""}).to_string(),
            ErrorCode::InvalidText,
        ),
        (
            json!({"type": "post", "room": "lobby", "text": "   "}).to_string(),
            ErrorCode::InvalidText,
        ),
        (
            json!({"type": "post", "room": "lobby", "text": "a\u{0}b"}).to_string(),
            ErrorCode::InvalidText,
        ),
        (
            json!({"type": "post", "room": "lobby", "text": long}).to_string(),
            ErrorCode::TextTooLong,
        ),
    ];
    for (frame, code) in cases {
        let result = ClientMessage::decode(&frame);
        assert_eq!(
            result.as_ref().map_err(|e| e.code),
            Err(code),
            "frame {frame:?}"
        );
        let message = result.err().map(|e| e.message).unwrap_or_default();
        assert!(!message.is_empty(), "frame {frame:?} has no explanation");
    }
}

#[test]
fn over_long_text_error_names_the_limit() {
    let frame = json!({"type": "post", "room": "lobby", "text": "x".repeat(2001)}).to_string();
    let message = ClientMessage::decode(&frame).err().map(|e| e.message);
    assert_eq!(
        message.as_deref(),
        Some("message text must be at most 2000 characters (got 2001)")
    );
}
