//! One room as this instance sees it: its local members, and how many of
//! them show each display name. Both engines keep one per room they serve;
//! the engine decides order, history and who is present across instances,
//! this decides which sockets get a frame.

use std::collections::{BTreeMap, HashMap};

use protocol::{DisplayName, RoomName, ServerMessage};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::component::{Connection, ConnectionId};

#[derive(Debug)]
struct Member {
    name: DisplayName,
    conn: Connection,
    /// The presence version its member list was taken at: later events
    /// only. (The Redis engine's events travel apart from its snapshots;
    /// the memory engine makes both under one lock and leaves this 0.)
    presence_seen: u64,
}

/// The local members of one room.
#[derive(Debug, Default)]
pub(crate) struct LocalRoom {
    members: HashMap<ConnectionId, Member>,
    /// Connections per display name: a name is present here while it has
    /// one (a user with two tabs counts once).
    names: BTreeMap<DisplayName, usize>,
}

/// How a membership change moved the names present on this instance.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct NameChange {
    /// A name that had no connection here and now has one.
    pub appeared: Option<DisplayName>,
    /// A name whose last connection here went away.
    pub vanished: Option<DisplayName>,
}

impl LocalRoom {
    /// Whether no connection of this instance is in the room.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The names present here, sorted.
    pub fn names(&self) -> impl Iterator<Item = &DisplayName> {
        self.names.keys()
    }

    /// How many distinct names are present here.
    pub fn name_count(&self) -> usize {
        self.names.len()
    }

    /// The name `conn` shows here, if it is a member.
    pub fn name_of(&self, conn: ConnectionId) -> Option<&DisplayName> {
        self.members.get(&conn).map(|m| &m.name)
    }

    /// Adds `conn` as `name`, or renames it if it is a member already.
    pub fn insert(&mut self, conn: &Connection, name: &DisplayName) -> NameChange {
        let previous = self.members.insert(
            conn.id(),
            Member {
                name: name.clone(),
                conn: conn.clone(),
                presence_seen: 0,
            },
        );
        match previous {
            Some(old) if old.name == *name => NameChange::default(),
            Some(old) => NameChange {
                vanished: self.release(&old.name),
                appeared: self.hold(name),
            },
            None => NameChange {
                appeared: self.hold(name),
                vanished: None,
            },
        }
    }

    /// Records that `conn`'s member list (in `joined`) is as of presence
    /// `version`; see [`LocalRoom::broadcast_presence`].
    pub fn saw_presence(&mut self, conn: ConnectionId, version: u64) {
        if let Some(member) = self.members.get_mut(&conn) {
            member.presence_seen = version;
        }
    }

    /// [`LocalRoom::saw_presence`] for every member.
    pub fn all_saw_presence(&mut self, version: u64) {
        for member in self.members.values_mut() {
            member.presence_seen = version;
        }
    }

    /// Removes `conn`; says which name, if any, it was the last to show.
    pub fn remove(&mut self, conn: ConnectionId) -> Option<DisplayName> {
        let member = self.members.remove(&conn)?;
        self.release(&member.name)
    }

    fn hold(&mut self, name: &DisplayName) -> Option<DisplayName> {
        let count = self.names.entry(name.clone()).or_insert(0);
        *count += 1;
        (*count == 1).then(|| name.clone())
    }

    fn release(&mut self, name: &DisplayName) -> Option<DisplayName> {
        let count = self.names.get_mut(name)?;
        *count -= 1;
        if *count > 0 {
            return None;
        }
        self.names.remove(name);
        Some(name.clone())
    }

    /// Queues `frame` for every member. Queueing never waits: a member whose
    /// outbox is full is closed as too slow instead.
    pub fn broadcast(&self, frame: &Utf8Bytes) {
        for member in self.members.values() {
            let _ = member.conn.send_text(frame.clone());
        }
    }

    /// Queues a presence event about `name` for every member except those
    /// that show `name` themselves (a member is not told that it arrived or
    /// left), `except`, and, for an event of presence `version`, those
    /// whose member list already includes it.
    pub fn broadcast_presence(
        &self,
        frame: &Utf8Bytes,
        name: &DisplayName,
        except: Option<ConnectionId>,
        version: Option<u64>,
    ) {
        for (id, member) in &self.members {
            let stale = version.is_some_and(|v| v <= member.presence_seen);
            if member.name != *name && Some(*id) != except && !stale {
                let _ = member.conn.send_text(frame.clone());
            }
        }
    }

    /// Every member's connection, for frames built per member.
    pub fn connections(&self) -> impl Iterator<Item = (&Connection, &DisplayName)> {
        self.members.values().map(|m| (&m.conn, &m.name))
    }
}

/// A `member_joined` (`present`) or `member_left` frame.
pub(crate) fn presence_frame(room: &RoomName, name: &DisplayName, present: bool) -> Utf8Bytes {
    let (room, name) = (room.clone(), name.clone());
    let message = if present {
        ServerMessage::MemberJoined { room, name }
    } else {
        ServerMessage::MemberLeft { room, name }
    };
    message.to_json().into()
}
