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
    /// A `join` would put the connection in more rooms than the server's
    /// `max_rooms_per_connection` allows; leave one first.
    TooManyRooms,
    /// The server holds as many rooms as its `max_rooms` allows and none of
    /// them can be let go; a new room cannot be opened now.
    ServerBusy,
    /// Another user is present in the room under this name, or a name that
    /// looks the same (compared after NFKC normalization, case folding and
    /// confusable reduction); or the joiner is in the room under another
    /// name on another connection.
    NameTaken,
    /// The connection sends frames faster than its budget allows
    /// (`max_frames_per_second` and `frame_burst`); the request was not
    /// carried out. Sustained excess closes the connection with 1008.
    RateLimited,
    /// The room engine (Redis, when several servers act as one) cannot be
    /// reached. Nothing was stored; the request may be retried later.
    EngineUnavailable,
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
            Self::TooManyRooms => "too_many_rooms",
            Self::ServerBusy => "server_busy",
            Self::NameTaken => "name_taken",
            Self::RateLimited => "rate_limited",
            Self::EngineUnavailable => "engine_unavailable",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
