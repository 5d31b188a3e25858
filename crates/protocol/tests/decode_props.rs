//! Properties of decoding: whatever a client sends, decoding returns a
//! verdict (never panics), and what it accepts re-encodes to itself.

use proptest::prelude::*;
use protocol::{ClientFrame, ClientMessage};
use serde_json::{Map, Value, json};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,80}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Objects shaped like client messages: a known or unknown type, and the
/// protocol's field names with arbitrary values.
fn message_like() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        prop::sample::select(ClientMessage::TYPES.to_vec()).prop_map(|t| json!(t)),
        any_json(),
    ];
    let field = prop_oneof!["[A-Za-z0-9_ -]{0,70}".prop_map(Value::String), any_json(),];
    let names = ["room", "name", "text", "ref", "since", "before", "limit"];
    (
        kind,
        prop::collection::vec((prop::sample::select(names.to_vec()), field), 0..5),
    )
        .prop_map(|(kind, fields)| {
            let mut object = Map::new();
            object.insert("type".into(), kind);
            for (name, value) in fields {
                object.insert(name.into(), value);
            }
            Value::Object(object)
        })
}

proptest! {
    #[test]
    fn decoding_arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = ClientFrame::decode(&text);
    }

    #[test]
    fn decoding_arbitrary_json_never_panics(value in any_json()) {
        let _ = ClientFrame::decode(&value.to_string());
    }

    #[test]
    fn accepted_frames_re_encode_to_an_equal_frame(value in message_like()) {
        match ClientFrame::decode(&value.to_string()) {
            Ok(frame) => {
                let again = ClientFrame::decode(&frame.to_json());
                prop_assert_eq!(again, Ok(frame));
            }
            Err(e) => prop_assert!(!e.message.is_empty()),
        }
    }
}
