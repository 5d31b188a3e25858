//! Machine-readable error codes carried by `error` frames.

use serde::{Deserialize, Serialize};

/// Why the server refused a client frame. Sent as the `code` field of an
/// `error` frame; the connection stays open after every one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON.
    InvalidJson,
    /// The JSON is not an object with a string `type`, or a field is missing
    /// or of the wrong JSON type.
    InvalidMessage,
    /// The `type` names no client message.
    UnknownType,
    /// The `ref` field is not a string of 1 to 64 visible ASCII characters.
    InvalidRef,
    /// The `room` field is not a valid room name.
    InvalidRoom,
    /// The `name` field is not a valid display name.
    InvalidName,
    /// The `text` field is empty, blank or holds control characters.
    InvalidText,
    /// The `text` field is longer than [`crate::MessageText::MAX_CHARS`].
    TextTooLong,
    /// A binary frame arrived; the protocol is JSON text only.
    BinaryNotSupported,
    /// The client posted to or left a room it has not joined.
    NotJoined,
    /// The message is reserved for service connections (`publish`,
    /// `list_rooms`).
    Forbidden,
}

impl ErrorCode {
    /// The code as it appears on the wire, e.g. `"invalid_json"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidMessage => "invalid_message",
            Self::UnknownType => "unknown_type",
            Self::InvalidRef => "invalid_ref",
            Self::InvalidRoom => "invalid_room",
            Self::InvalidName => "invalid_name",
            Self::InvalidText => "invalid_text",
            Self::TextTooLong => "text_too_long",
            Self::BinaryNotSupported => "binary_not_supported",
            Self::NotJoined => "not_joined",
            Self::Forbidden => "forbidden",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
