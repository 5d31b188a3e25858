//! Pins the exact JSON of every message: browsers and other clients depend on
//! these shapes, so a change here is a protocol change.

use protocol::{
    ChatMessage, ClientFrame, ClientMessage, ClientRef, DisplayName, Epoch, ErrorCode, Member,
    MessageText, Position, RoomInfo, RoomName, ServerMessage, UserId,
};
use serde_json::{Value, json};

fn room(s: &str) -> RoomName {
    RoomName::new(s).unwrap_or_else(|e| panic!("test room {s:?}: {e}"))
}

fn name(s: &str) -> DisplayName {
    DisplayName::new(s).unwrap_or_else(|e| panic!("test name {s:?}: {e}"))
}

fn user(s: &str) -> UserId {
    UserId::new(s).unwrap_or_else(|e| panic!("test user {s:?}: {e}"))
}

fn member(u: &str, n: &str) -> Member {
    Member {
        user: user(u),
        name: name(n),
    }
}

fn text(s: &str) -> MessageText {
    MessageText::new(s).unwrap_or_else(|e| panic!("test text {s:?}: {e}"))
}

fn reference(s: &str) -> ClientRef {
    ClientRef::new(s).unwrap_or_else(|e| panic!("test ref {s:?}: {e}"))
}

fn epoch(s: &str) -> Epoch {
    Epoch::new(s).unwrap_or_else(|e| panic!("test epoch {s:?}: {e}"))
}

fn decode(frame: &str) -> Result<ClientFrame, protocol::DecodeError> {
    ClientFrame::decode(frame)
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| panic!("serialize: {e}"))
}

#[test]
fn client_messages_have_pinned_json_and_round_trip() {
    let cases = [
        (
            ClientFrame::new(ClientMessage::Join {
                room: room("lobby"),
                since: None,
            }),
            json!({"type": "join", "room": "lobby"}),
        ),
        (
            ClientFrame::with_ref(
                reference("j1"),
                ClientMessage::Join {
                    room: room("lobby"),
                    since: Some(Position {
                        epoch: epoch("e1"),
                        offset: 41,
                    }),
                },
            ),
            json!({"type": "join", "room": "lobby",
                   "since": {"epoch": "e1", "offset": 41}, "ref": "j1"}),
        ),
        (
            ClientFrame::new(ClientMessage::Leave {
                room: room("lobby"),
            }),
            json!({"type": "leave", "room": "lobby"}),
        ),
        (
            ClientFrame::with_ref(
                reference("c-7"),
                ClientMessage::Post {
                    room: room("lobby"),
                    text: text("hello"),
                },
            ),
            json!({"type": "post", "room": "lobby", "text": "hello", "ref": "c-7"}),
        ),
        (
            ClientFrame::new(ClientMessage::Publish {
                room: room("lobby"),
                name: name("Announcer"),
                text: text("maintenance at noon"),
            }),
            json!({"type": "publish", "room": "lobby", "name": "Announcer",
                   "text": "maintenance at noon"}),
        ),
        (
            ClientFrame::with_ref(reference("r"), ClientMessage::ListRooms { after: None }),
            json!({"type": "list_rooms", "ref": "r"}),
        ),
        (
            ClientFrame::new(ClientMessage::ListRooms {
                after: Some(room("lobby")),
            }),
            json!({"type": "list_rooms", "after": "lobby"}),
        ),
        (
            ClientFrame::with_ref(
                reference("h1"),
                ClientMessage::History {
                    room: room("lobby"),
                    before: 51,
                    limit: Some(50),
                },
            ),
            json!({"type": "history", "room": "lobby", "before": 51, "limit": 50, "ref": "h1"}),
        ),
        (
            ClientFrame::new(ClientMessage::History {
                room: room("lobby"),
                before: 0,
                limit: None,
            }),
            json!({"type": "history", "room": "lobby", "before": 0}),
        ),
    ];
    for (frame, expected) in cases {
        assert_eq!(to_value(&frame), expected);
        assert_eq!(decode(&expected.to_string()), Ok(frame.clone()));
        assert_eq!(decode(&frame.to_json()), Ok(frame.clone()));
        let via_serde: ClientFrame = serde_json::from_value(expected)
            .unwrap_or_else(|e| panic!("deserialize {frame:?}: {e}"));
        assert_eq!(via_serde, frame);
    }
}

#[test]
fn every_client_type_is_listed() {
    for kind in ClientMessage::TYPES {
        // Each listed type decodes; those with fields complain about the
        // fields, never about the type itself.
        let result = decode(&json!({"type": kind}).to_string());
        match result {
            Ok(frame) => assert!(
                matches!(
                    frame.message,
                    ClientMessage::ListRooms { .. } | ClientMessage::Join { .. }
                ),
                "{kind}"
            ),
            Err(e) => assert_eq!(e.code, ErrorCode::InvalidMessage, "{kind}"),
        }
    }
}

#[test]
fn server_messages_have_pinned_json_and_round_trip() {
    let id_json = "0192f5e0-8c1a-7cc0-b1c3-5a7f6c2d9e10";
    let id = serde_json::from_value(json!(id_json)).unwrap_or_else(|e| panic!("id: {e}"));
    let chat = ChatMessage {
        id,
        room: room("lobby"),
        offset: 42,
        user: user("u1"),
        name: name("Ada"),
        text: text("hello"),
        ts: 1_764_236_400_000,
        announcement: false,
        reference: None,
    };
    let chat_json = json!({"id": id_json, "room": "lobby", "offset": 42, "user": "u1",
                           "name": "Ada", "text": "hello", "ts": 1_764_236_400_000_u64});
    let mut message_json = chat_json.clone();
    message_json["type"] = json!("message");
    let cases = [
        (
            ServerMessage::Welcome {
                protocol: 2,
                connection_id: 7,
                user: user("u1"),
                name: name("Ada"),
                ping_interval_ms: 25_000,
            },
            json!({"type": "welcome", "protocol": 2, "connection_id": 7, "user": "u1",
                   "name": "Ada", "ping_interval_ms": 25_000}),
        ),
        (ServerMessage::Ping, json!({"type": "ping"})),
        (
            ServerMessage::Joined {
                room: room("lobby"),
                name: name("Ada"),
                epoch: epoch("e1"),
                offset: 42,
                recovered: true,
                members: vec![member("u1", "Ada"), member("u2", "Bob")],
                history: vec![chat.clone()],
                has_earlier: true,
                reference: Some(reference("j1")),
            },
            json!({"type": "joined", "room": "lobby", "name": "Ada", "epoch": "e1",
                   "offset": 42, "recovered": true,
                   "members": [{"user": "u1", "name": "Ada"}, {"user": "u2", "name": "Bob"}],
                   "history": [chat_json], "has_earlier": true, "ref": "j1"}),
        ),
        (
            ServerMessage::History {
                room: room("lobby"),
                epoch: epoch("e1"),
                messages: vec![chat.clone()],
                has_earlier: false,
                reference: Some(reference("h1")),
            },
            json!({"type": "history", "room": "lobby", "epoch": "e1",
                   "messages": [chat_json], "has_earlier": false, "ref": "h1"}),
        ),
        (
            ServerMessage::Left {
                room: room("lobby"),
                reference: None,
            },
            json!({"type": "left", "room": "lobby"}),
        ),
        (ServerMessage::Message(chat.clone()), message_json),
        (
            ServerMessage::Message(ChatMessage {
                announcement: true,
                reference: Some(reference("c-1")),
                ..chat.clone()
            }),
            json!({"type": "message", "id": id_json, "room": "lobby", "offset": 42,
                   "user": "u1", "name": "Ada", "text": "hello", "ts": 1_764_236_400_000_u64,
                   "announcement": true, "ref": "c-1"}),
        ),
        (
            ServerMessage::Ack {
                reference: reference("c-7"),
                room: room("lobby"),
                id,
                offset: 42,
            },
            json!({"type": "ack", "ref": "c-7", "room": "lobby", "id": id_json, "offset": 42}),
        ),
        (
            ServerMessage::MemberJoined {
                room: room("lobby"),
                user: user("u2"),
                name: name("Bob"),
            },
            json!({"type": "member_joined", "room": "lobby", "user": "u2", "name": "Bob"}),
        ),
        (
            ServerMessage::MemberLeft {
                room: room("lobby"),
                user: user("u2"),
                name: name("Bob"),
            },
            json!({"type": "member_left", "room": "lobby", "user": "u2", "name": "Bob"}),
        ),
        (
            ServerMessage::Rooms {
                rooms: vec![RoomInfo {
                    room: room("lobby"),
                    members: 2,
                }],
                next: Some(room("lobby")),
                reference: Some(reference("r")),
            },
            json!({"type": "rooms", "rooms": [{"room": "lobby", "members": 2}],
                   "next": "lobby", "ref": "r"}),
        ),
        (
            ServerMessage::error(ErrorCode::TextTooLong, "too long", Some(reference("c-8"))),
            json!({"type": "error", "code": "text_too_long", "message": "too long", "ref": "c-8"}),
        ),
        (
            ServerMessage::error(ErrorCode::InvalidJson, "not JSON", None),
            json!({"type": "error", "code": "invalid_json", "message": "not JSON"}),
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
        ErrorCode::InvalidRef,
        ErrorCode::InvalidRoom,
        ErrorCode::InvalidName,
        ErrorCode::InvalidText,
        ErrorCode::TextTooLong,
        ErrorCode::BinaryNotSupported,
        ErrorCode::NotJoined,
        ErrorCode::Forbidden,
        ErrorCode::TooManyRooms,
        ErrorCode::ServerBusy,
        ErrorCode::NameTaken,
        ErrorCode::RateLimited,
        ErrorCode::EngineUnavailable,
    ];
    for code in codes {
        assert_eq!(to_value(&code), json!(code.as_str()));
    }
}

#[test]
fn unknown_fields_are_ignored_for_forward_compatibility() {
    let frame = json!({"type": "leave", "room": "lobby", "future": [1, 2]}).to_string();
    assert_eq!(
        decode(&frame).map(|f| f.message),
        Ok(ClientMessage::Leave {
            room: room("lobby")
        })
    );
}

#[test]
fn errors_echo_the_ref_once_it_is_readable() {
    let frame = json!({"type": "post", "room": "lobby", "text": "", "ref": "c-9"}).to_string();
    let err = decode(&frame).err();
    assert_eq!(err.as_ref().map(|e| e.code), Some(ErrorCode::InvalidText));
    assert_eq!(err.and_then(|e| e.reference), Some(reference("c-9")));

    let frame = json!({"type": "shout", "ref": "c-10"}).to_string();
    assert_eq!(
        decode(&frame).err().and_then(|e| e.reference),
        Some(reference("c-10"))
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
            json!({"type": "join"}).to_string(),
            ErrorCode::InvalidMessage,
        ),
        (
            json!({"type": "join", "room": 1}).to_string(),
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
            json!({"type": "join", "room": ""}).to_string(),
            ErrorCode::InvalidRoom,
        ),
        (
            json!({"type": "join", "room": "a b"}).to_string(),
            ErrorCode::InvalidRoom,
        ),
        (
            json!({"type": "publish", "room": "lobby", "name": "", "text": "t"}).to_string(),
            ErrorCode::InvalidName,
        ),
        (
            json!({"type": "publish", "room": "lobby", "name": "<img>", "text": "t"}).to_string(),
            ErrorCode::InvalidName,
        ),
        (
            json!({"type": "publish", "room": "lobby", "name": "Ada\u{3164}", "text": "t"})
                .to_string(),
            ErrorCode::InvalidName,
        ),
        (
            json!({"type": "post", "room": "lobby", "text": "a\u{202E}b"}).to_string(),
            ErrorCode::InvalidText,
        ),
        (
            json!({"type": "list_rooms", "after": "a b"}).to_string(),
            ErrorCode::InvalidRoom,
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
        (
            json!({"type": "history", "before": 5}).to_string(),
            ErrorCode::InvalidMessage,
        ),
        (
            json!({"type": "history", "room": "lobby"}).to_string(),
            ErrorCode::InvalidMessage,
        ),
        (
            json!({"type": "history", "room": "lobby", "before": -1}).to_string(),
            ErrorCode::InvalidMessage,
        ),
        (
            json!({"type": "history", "room": "lobby", "before": "5"}).to_string(),
            ErrorCode::InvalidMessage,
        ),
        (
            json!({"type": "history", "room": "lobby", "before": 5, "limit": 0}).to_string(),
            ErrorCode::InvalidMessage,
        ),
        (
            json!({"type": "history", "room": "lobby", "before": 5, "limit": 101}).to_string(),
            ErrorCode::InvalidMessage,
        ),
        (
            json!({"type": "history", "room": "lobby", "before": 5, "limit": 5_000_000_000_u64})
                .to_string(),
            ErrorCode::InvalidMessage,
        ),
        (
            json!({"type": "history", "room": "lobby", "before": 5, "limit": 2.5}).to_string(),
            ErrorCode::InvalidMessage,
        ),
        (
            json!({"type": "history", "room": "a b", "before": 5}).to_string(),
            ErrorCode::InvalidRoom,
        ),
        (
            json!({"type": "history", "room": "lobby", "before": 5, "ref": ""}).to_string(),
            ErrorCode::InvalidRef,
        ),
    ];
    for (frame, code) in cases {
        let result = decode(&frame);
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
fn history_limits_are_taken_from_1_to_100_and_a_refusal_names_the_range() {
    let frame = |limit: u64| {
        json!({"type": "history", "room": "lobby", "before": 9, "limit": limit, "ref": "h"})
            .to_string()
    };
    for limit in [1_u32, 50, 100] {
        assert_eq!(
            decode(&frame(limit.into())).map(|f| f.message),
            Ok(ClientMessage::History {
                room: room("lobby"),
                before: 9,
                limit: Some(limit),
            })
        );
    }
    for limit in [0, 101] {
        let refused = decode(&frame(limit)).err();
        assert_eq!(
            refused.as_ref().map(|e| e.message.as_str()),
            Some(format!("limit must be 1 to 100 (got {limit})").as_str())
        );
        assert_eq!(refused.and_then(|e| e.reference), Some(reference("h")));
    }
}

#[test]
fn over_long_text_error_names_the_limit() {
    let frame = json!({"type": "post", "room": "lobby", "text": "x".repeat(2001)}).to_string();
    let message = decode(&frame).err().map(|e| e.message);
    assert_eq!(
        message.as_deref(),
        Some("message text must be at most 2000 characters (got 2001)")
    );
}
