//! The messages themselves: what a client may send and what the server sends.

use serde::{Deserialize, Serialize};

use crate::{ClientRef, DisplayName, Epoch, ErrorCode, MessageText, RoomName, UserId};

/// One client frame: a message plus the client's optional `ref`, which the
/// server echoes in its answer.
///
/// On the wire the two are one JSON object:
/// `{"type": "post", "room": "lobby", "text": "hi", "ref": "c1"}`. Servers
/// decode with [`ClientFrame::decode`], which says precisely what is wrong
/// with a refused frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientFrame {
    /// The client's label for this request.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<ClientRef>,
    /// The request itself.
    #[serde(flatten)]
    pub message: ClientMessage,
}

impl ClientFrame {
    /// A frame without a `ref`.
    #[must_use]
    pub fn new(message: ClientMessage) -> Self {
        Self {
            reference: None,
            message,
        }
    }

    /// A frame with a `ref`, to be echoed in the answer.
    #[must_use]
    pub fn with_ref(reference: ClientRef, message: ClientMessage) -> Self {
        Self {
            reference: Some(reference),
            message,
        }
    }

    /// The frame as JSON text.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Cannot fail: strings, integers and enums of unit variants only.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// What a client asks of the server.
///
/// On the wire: a JSON object whose `type` is the variant name in
/// `snake_case`. Unknown extra fields are ignored, so that newer clients can
/// talk to older servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[serde(try_from = "crate::decode::WireClientMessage")]
pub enum ClientMessage {
    /// Enter `room`, shown under the name the connection's token gives.
    /// Joining a room already joined sends a fresh `joined`.
    Join {
        /// The room to enter.
        room: RoomName,
        /// The last position the client saw in this room, to receive exactly
        /// the messages it missed. Absent on a first join.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Position>,
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
    /// Service connections only: post `text` to `room` as `name` without
    /// joining it (server-side publishing).
    Publish {
        /// Any room, joined or not.
        room: RoomName,
        /// The name shown as the author.
        name: DisplayName,
        /// The message.
        text: MessageText,
    },
    /// Service and operator connections only: list the rooms that have
    /// members, one page at a time, by name.
    ListRooms {
        /// Start after this room name (the `next` of the previous page);
        /// absent for the first page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<RoomName>,
    },
    /// Members only: the messages of `room` before offset `before` that the
    /// room still keeps, latest `limit` of them ("load earlier messages").
    History {
        /// A room the client has joined.
        room: RoomName,
        /// Only messages with an offset below this one; a client sends the
        /// offset of the oldest message it shows.
        before: u64,
        /// How many messages at most, 1 to [`ClientMessage::HISTORY_MAX_LIMIT`];
        /// absent means [`ClientMessage::HISTORY_DEFAULT_LIMIT`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
}

impl ClientMessage {
    /// Every `type` a client may send, in declaration order.
    pub const TYPES: [&'static str; 6] =
        ["join", "leave", "post", "publish", "list_rooms", "history"];

    /// The messages a `history` request without `limit` asks for.
    pub const HISTORY_DEFAULT_LIMIT: u32 = 50;

    /// The most messages one `history` request may ask for: a bound on the
    /// frame one request makes the server read and send.
    pub const HISTORY_MAX_LIMIT: u32 = 100;
}

/// A place in a room's history: the history's epoch and a message's offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The epoch the offset belongs to.
    pub epoch: Epoch,
    /// A message offset; 0 means "before the first message".
    pub offset: u64,
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
        /// The user the connection's token names: messages and presence
        /// entries with this `user` are the client's own.
        user: UserId,
        /// The name the connection is shown under.
        name: DisplayName,
        /// How often the server sends `ping`, in milliseconds. A client that
        /// has received no frame at all for twice this should take the
        /// connection for dead, close it and reconnect.
        #[serde(default)]
        ping_interval_ms: u64,
    },
    /// Sent on every heartbeat: a sign of life the page can see, since
    /// browsers do not show WebSocket pings to pages. Needs no answer.
    Ping,
    /// The client is now a member of `room`: who is there, and the history
    /// it should show.
    Joined {
        /// The room joined.
        room: RoomName,
        /// The name the client shows in it.
        name: DisplayName,
        /// The room history's epoch.
        epoch: Epoch,
        /// The offset of the room's latest message (0 when it has none).
        offset: u64,
        /// True when the client gave `since` and `history` holds exactly the
        /// messages after it. False on a fresh join, or when recovery was
        /// impossible (epoch changed, or too far behind): `history` then
        /// holds the recent messages and the client may have missed some.
        recovered: bool,
        /// The users present, each once however many connections they
        /// have, sorted by name; the joiner included.
        members: Vec<Member>,
        /// Messages to show, oldest first.
        history: Vec<ChatMessage>,
        /// Whether the room keeps messages older than the first of
        /// `history` (with `history` empty: any message up to `offset`),
        /// which a `history` request can fetch.
        #[serde(default)]
        has_earlier: bool,
        /// The `ref` of the `join`, if it had one.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<ClientRef>,
    },
    /// The client is no longer a member of `room`.
    Left {
        /// The room left.
        room: RoomName,
        /// The `ref` of the `leave`, if it had one.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<ClientRef>,
    },
    /// A chat message in a room the client is in.
    Message(ChatMessage),
    /// A `post` or `publish` with a `ref` was stored.
    Ack {
        /// The request's `ref`.
        #[serde(rename = "ref")]
        reference: ClientRef,
        /// The room it went to.
        room: RoomName,
        /// The stored message's id.
        id: MessageId,
        /// The stored message's offset in the room.
        offset: u64,
    },
    /// A user appeared in a room the client is in.
    MemberJoined {
        /// The room.
        room: RoomName,
        /// The user now present.
        user: UserId,
        /// The name they are shown under.
        name: DisplayName,
    },
    /// A user's last connection left a room the client is in.
    MemberLeft {
        /// The room.
        room: RoomName,
        /// The user no longer present.
        user: UserId,
        /// The name they were shown under.
        name: DisplayName,
    },
    /// The answer to `list_rooms`: one page.
    Rooms {
        /// Rooms with at least one member, by name.
        rooms: Vec<RoomInfo>,
        /// The `after` that asks for the next page; absent on the last.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<RoomName>,
        /// The `ref` of the request, if it had one.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<ClientRef>,
    },
    /// The answer to `history`: messages of a room before an offset.
    History {
        /// The room.
        room: RoomName,
        /// The epoch the messages belong to: a client drops an answer
        /// whose epoch is not the one it shows.
        epoch: Epoch,
        /// The latest messages before the request's `before`, at most its
        /// `limit`, oldest first.
        messages: Vec<ChatMessage>,
        /// Whether the room keeps messages older than the first of
        /// `messages` (with `messages` empty: any before `before`).
        has_earlier: bool,
        /// The `ref` of the request, if it had one.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<ClientRef>,
    },
    /// A client frame was refused. The connection stays open.
    Error {
        /// What went wrong, for programs.
        code: ErrorCode,
        /// What went wrong, for people.
        message: String,
        /// The `ref` of the refused frame, if it had a valid one.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<ClientRef>,
    },
}

impl ServerMessage {
    /// An `error` frame with `code`, a human explanation and the refused
    /// frame's `ref`.
    #[must_use]
    pub fn error(
        code: ErrorCode,
        message: impl Into<String>,
        reference: Option<ClientRef>,
    ) -> Self {
        Self::Error {
            code,
            message: message.into(),
            reference,
        }
    }

    /// The frame as JSON text.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every field is a string, an
        // integer, a bool or an enum of unit variants, and every map key is
        // a string.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// A user present in a room.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Member {
    /// Who.
    pub user: UserId,
    /// The name they are shown under in the room.
    pub name: DisplayName,
}

/// A room in the `rooms` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The room's name.
    pub room: RoomName,
    /// How many distinct users are present.
    pub members: usize,
}

/// A message as stored and delivered: what was posted plus the server's id,
/// offset and timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Unique and time-ordered, assigned by the server.
    pub id: MessageId,
    /// The room it was posted to.
    pub room: RoomName,
    /// Its place in the room's history: 1 for the first message of an
    /// epoch, then one more for each message.
    pub offset: u64,
    /// The author: the user whose token posted it (for an announcement,
    /// the publishing service or operator).
    pub user: UserId,
    /// The author's display name.
    pub name: DisplayName,
    /// The text, exactly as posted. Clients must render it as text.
    pub text: MessageText,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub ts: u64,
    /// True for messages published by the application server rather than
    /// posted by a member.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub announcement: bool,
    /// The poster's `ref`, if the post had one: a client that lost its
    /// connection before the `ack` recognizes its message by it when it
    /// reappears in recovered history, instead of sending it twice.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ClientRef>,
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
