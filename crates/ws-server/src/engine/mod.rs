//! The engine seam: where rooms live, in one order each.
//!
//! The chat component asks an [`Engine`] to join, leave, store a message and
//! list rooms; the engine assigns each message its offset, keeps history and
//! presence, and hands every frame for a room to the one local fan-out that
//! knows this instance's members ([`local::LocalRoom`]). Nothing above this
//! module knows which engine runs.
//!
//! - [`memory::MemoryEngine`]: rooms in this process, a lock per room. The
//!   embedded default: nothing to install.
//! - [`redis::RedisEngine`]: offsets, history and presence in Redis, so any
//!   number of instances pointed at one Redis act as one server.
//!
//! An enum rather than a trait object: there are exactly two engines, both
//! known here, and an enum keeps `async fn` without boxing every call.

pub(crate) mod local;
pub mod memory;
pub mod redis;

use protocol::{
    ChatMessage, ClientRef, DisplayName, Epoch, ErrorCode, MessageId, MessageText, Position,
    RoomInfo, RoomName, UserId,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::component::{Connection, ConnectionId};
use crate::settings::{EngineKind, Settings};

pub use local::NameConflict;
pub use memory::MemoryEngine;
pub use redis::RedisEngine;

/// Why an engine refused a request. Each maps to an error code the client
/// sees ([`EngineError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The instance holds `max_rooms` rooms and none can be let go.
    #[error("this server holds as many rooms as it may; try again later")]
    ServerBusy,
    /// The engine's store cannot be reached; nothing was stored.
    #[error("the room engine is unavailable: {0}")]
    Unavailable(String),
    /// The joiner's name is held in the room by another user (or looks the
    /// same as one that is), or the joiner is there under another name.
    #[error(transparent)]
    NameTaken(#[from] NameConflict),
}

impl EngineError {
    /// The error code sent to the client.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::ServerBusy => ErrorCode::ServerBusy,
            Self::Unavailable(_) => ErrorCode::EngineUnavailable,
            Self::NameTaken(_) => ErrorCode::NameTaken,
        }
    }
}

/// A message to store: a member's post or a service's announcement.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The room it goes to.
    pub room: RoomName,
    /// The author: the user whose token sent it.
    pub user: UserId,
    /// The name shown.
    pub name: DisplayName,
    /// The text.
    pub text: MessageText,
    /// True for server-side publishing.
    pub announcement: bool,
    /// The poster's `ref`, kept with the message.
    pub reference: Option<ClientRef>,
}

impl Draft {
    /// The message with a fresh id and timestamp; the engine sets its
    /// offset.
    fn into_message(self) -> ChatMessage {
        ChatMessage {
            id: MessageId::generate(),
            room: self.room,
            offset: 0,
            user: self.user,
            name: self.name,
            text: self.text,
            ts: protocol::now_millis(),
            announcement: self.announcement,
            reference: self.reference,
        }
    }
}

/// Where a stored message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The message's id.
    pub id: MessageId,
    /// Its offset in the room.
    pub offset: u64,
}

/// A join request: who, where, and from which position.
#[derive(Debug)]
pub struct Join<'a> {
    /// The joining connection; its `joined` frame is queued on it.
    pub conn: &'a Connection,
    /// The room.
    pub room: &'a RoomName,
    /// The user it belongs to: presence is theirs.
    pub user: &'a UserId,
    /// The name it shows there, as its token says.
    pub name: &'a DisplayName,
    /// The last position it saw, to recover exactly what it missed.
    pub since: Option<&'a Position>,
    /// The `join`'s `ref`, echoed in `joined`.
    pub reference: Option<ClientRef>,
}

/// Whether a joiner at `since` can be given exactly what it missed from a
/// room at `epoch` whose last offset is `last` and whose oldest kept entry
/// is `oldest` (`None` when none is kept): the same epoch, not ahead of the
/// room, and nothing after `since` trimmed away.
pub(crate) fn can_recover(since: &Position, epoch: &Epoch, last: u64, oldest: Option<u64>) -> bool {
    let oldest = oldest.unwrap_or(last.saturating_add(1));
    since.epoch == *epoch && since.offset <= last && since.offset.saturating_add(1) >= oldest
}

/// The room engine this instance runs.
#[derive(Debug, Clone)]
pub enum Engine {
    /// Rooms in this process.
    Memory(MemoryEngine),
    /// Rooms in Redis, shared by every instance pointed at it.
    Redis(RedisEngine),
}

impl Engine {
    /// Starts the engine `settings` name. Its background tasks run on
    /// `tracker` until `shutdown` is cancelled.
    ///
    /// # Errors
    /// [`EngineError::Unavailable`] when the Redis URL is not one.
    pub fn start(
        settings: &Settings,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<Self, EngineError> {
        Ok(match settings.engine {
            EngineKind::Memory => Self::Memory(MemoryEngine::start(settings, shutdown, tracker)),
            EngineKind::Redis => Self::Redis(RedisEngine::start(settings, shutdown, tracker)?),
        })
    }

    /// Makes `join.conn` a member of the room (if it is not one already)
    /// and queues its `joined` frame: the members present and the
    /// history to show, from `since` when that can be done exactly. The
    /// history ends exactly where the member's live messages begin.
    ///
    /// # Errors
    /// [`EngineError`] when the room cannot be opened or its store reached,
    /// or the name is taken there; the connection is then not a member.
    pub async fn join(&self, join: Join<'_>) -> Result<(), EngineError> {
        match self {
            Self::Memory(engine) => engine.join(join),
            Self::Redis(engine) => engine.join(join).await,
        }
    }

    /// Removes `conn` from `room`; announces its name's departure if it was
    /// the name's last connection.
    pub async fn leave(&self, conn: ConnectionId, room: &RoomName) {
        match self {
            Self::Memory(engine) => engine.leave(conn, room),
            Self::Redis(engine) => engine.leave(conn, room).await,
        }
    }

    /// Stores `draft` with the room's next offset and delivers it to every
    /// member, on every instance.
    ///
    /// # Errors
    /// [`EngineError`] when nothing was stored.
    pub async fn publish(&self, draft: Draft) -> Result<Stored, EngineError> {
        match self {
            Self::Memory(engine) => engine.publish(draft),
            Self::Redis(engine) => engine.publish(draft).await,
        }
    }

    /// The latest `limit` messages of `room` with offsets below `before`
    /// that the room keeps, oldest first, under the room's current epoch,
    /// and whether it keeps older ones. Only messages this instance has
    /// delivered to the room's members already: none of them will come
    /// again as a live `message`.
    ///
    /// # Errors
    /// [`EngineError::Unavailable`] when the store cannot be reached.
    pub async fn history(
        &self,
        room: &RoomName,
        before: u64,
        limit: usize,
    ) -> Result<HistoryPage, EngineError> {
        match self {
            Self::Memory(engine) => Ok(engine.history(room, before, limit)),
            Self::Redis(engine) => engine.history(room, before, limit).await,
        }
    }

    /// One page of the rooms with at least one member, on any instance, by
    /// name: at most `limit` rooms named after `after`, and the `after` of
    /// the next page if there is one.
    ///
    /// # Errors
    /// [`EngineError::Unavailable`] when the store cannot be reached.
    pub async fn rooms(&self, after: Option<&RoomName>, limit: usize) -> Result<Page, EngineError> {
        match self {
            Self::Memory(engine) => Ok(engine.rooms_with_members(after, limit)),
            Self::Redis(engine) => engine.rooms(after, limit).await,
        }
    }
}

impl Engine {
    /// The engine's name, as the settings spell it.
    #[must_use]
    pub fn kind(&self) -> EngineKind {
        match self {
            Self::Memory(_) => EngineKind::Memory,
            Self::Redis(_) => EngineKind::Redis,
        }
    }

    /// Rooms this instance holds now (the `duplex_rooms` gauge).
    #[must_use]
    pub fn rooms_held(&self) -> usize {
        match self {
            Self::Memory(engine) => engine.room_count(),
            Self::Redis(engine) => engine.room_count(),
        }
    }

    /// Whether the engine can serve requests: always for memory; for
    /// Redis, a PING answered in time (its round trip returned) and the
    /// pub/sub connection up.
    ///
    /// # Errors
    /// [`EngineError::Unavailable`] saying what is down.
    pub async fn probe(&self) -> Result<Option<std::time::Duration>, EngineError> {
        match self {
            Self::Memory(_) => Ok(None),
            Self::Redis(engine) => engine.probe().await.map(Some),
        }
    }
}

/// Stored messages of one room, as a `history` request gets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// The room's epoch, which the offsets belong to.
    pub epoch: Epoch,
    /// Encoded entries (`protocol::encoded::encode_entry`), oldest first.
    pub entries: Vec<String>,
    /// Whether the room keeps entries older than the first of `entries`.
    pub has_earlier: bool,
}

impl HistoryPage {
    /// The page of a room that keeps nothing: a fresh epoch, since none
    /// the client knows applies.
    pub(crate) fn nothing() -> Self {
        Self {
            epoch: Epoch::generate(),
            entries: Vec::new(),
            has_earlier: false,
        }
    }
}

/// One page of the room directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// Rooms with members, by name.
    pub rooms: Vec<RoomInfo>,
    /// Where the next page starts (after this room); `None` on the last.
    pub next: Option<RoomName>,
}

impl Page {
    /// The page of `names` (sorted, unique) after `after`, at most `limit`
    /// long, with each room's member count from `count`, which may drop a
    /// room (it emptied meanwhile).
    pub(crate) fn of<'a>(
        names: impl Iterator<Item = &'a RoomName>,
        after: Option<&RoomName>,
        limit: usize,
        mut count: impl FnMut(&RoomName) -> Option<usize>,
    ) -> Self {
        let mut page = Self::default();
        let mut names = names.filter(|name| after.is_none_or(|after| *name > after));
        for name in names.by_ref() {
            if page.rooms.len() == limit {
                page.next = page.rooms.last().map(|r| r.room.clone());
                break;
            }
            if let Some(members) = count(name) {
                page.rooms.push(RoomInfo {
                    room: name.clone(),
                    members,
                });
            }
        }
        page
    }
}
