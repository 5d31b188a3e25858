//! The messages themselves: what a client may send and what the server sends.

use serde::{Deserialize, Serialize};

use crate::{DisplayName, ErrorCode, MessageText, RoomName};

/// A frame from a client to the server.
///
/// On the wire: a JSON object whose `type` is the variant name in
/// `snake_case`. Unknown extra fields are ignored, so that newer clients can
/// talk to older servers. Servers decode with [`ClientMessage::decode`],
/// which says precisely what is wrong with a refused frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[serde(try_from = "crate::decode::WireClientMessage")]
pub enum ClientMessage {
    /// Enter `room` as `name`. Joining a room already joined changes the name
    /// shown for later messages.
    Join {
        /// The room to enter.
        room: RoomName,
        /// The name shown to the room's members.
        name: DisplayName,
    },
    /// Leave `room`.
    Leave {
        /// The room to leave.
        room: RoomName,
    },
    /// Send `text` to every member of `room`, the sender included.
    Post {
        /// A room the client has joined.
        room: RoomName,
        /// The message.
        text: MessageText,
    },
}

impl ClientMessage {
    /// Every `type` a client may send, in declaration order.
    pub const TYPES: [&'static str; 3] = ["join", "leave", "post"];
}

/// A frame from the server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The first frame on every connection.
    Welcome {
        /// The server's [`crate::PROTOCOL_VERSION`].
        protocol: u32,
        /// This connection's id, unique within the server process; it shows
        /// in the server's logs, which helps when reporting a problem.
        connection_id: u64,
    },
    /// The client is now a member of `room` under `name`.
    Joined {
        /// The room joined.
        room: RoomName,
        /// The name the client shows in it.
        name: DisplayName,
    },
    /// The client is no longer a member of `room`.
    Left {
        /// The room left.
        room: RoomName,
    },
    /// A chat message posted to a room the client is in. The poster receives
    /// it too: that is its acknowledgement, carrying the server's id.
    Message(ChatMessage),
    /// A client frame was refused. The connection stays open.
    Error {
        /// What went wrong, for programs.
        code: ErrorCode,
        /// What went wrong, for people.
        message: String,
    },
}

impl ServerMessage {
    /// An `error` frame with `code` and a human explanation.
    #[must_use]
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
        }
    }

    /// The frame as JSON text.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every field is a string, an
        // integer or an enum of unit variants, and every map key is a string.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// A message as stored and delivered: what a user posted plus the server's
/// id and timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Unique and time-ordered, assigned by the server.
    pub id: MessageId,
    /// The room it was posted to.
    pub room: RoomName,
    /// The poster's display name.
    pub name: DisplayName,
    /// The text, exactly as posted. Clients must render it as text.
    pub text: MessageText,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub ts: u64,
}

/// A server-assigned message id: a UUID version 7, so ids sort by creation
/// time and stay unique across server restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(uuid::Uuid);

impl MessageId {
    /// A fresh id for a message accepted now.
    #[must_use]
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Milliseconds since the Unix epoch, as carried in `ts` fields.
#[must_use]
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
