//! One room as this instance sees it: its local members, and the users they
//! belong to. Both engines keep one per room they serve; the engine decides
//! order, history and who is present across instances, this decides which
//! sockets get a frame.

use std::collections::{BTreeMap, HashMap};

use protocol::{DisplayName, Member, NameKey, RoomName, ServerMessage, UserId};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::component::{Connection, ConnectionId};

#[derive(Debug)]
struct Local {
    user: UserId,
    conn: Connection,
    /// The presence version its member list was taken at: later events
    /// only. (The Redis engine's events travel apart from its snapshots;
    /// the memory engine makes both under one lock and leaves this 0.)
    presence_seen: u64,
}

/// A user present here: the name they show and how many of their
/// connections are in the room (a user with two tabs counts once).
#[derive(Debug)]
struct Present {
    name: DisplayName,
    key: NameKey,
    connections: usize,
}

/// Why a join was refused: the name is held by someone else, or the user
/// is here under another name already.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameConflict {
    /// Another user shows this name, or one that looks the same.
    #[error("another user in this room is called {0:?}; pick another name")]
    Taken(String),
    /// The same user is here under another name on another connection.
    #[error("you are in this room as {0:?} on another connection")]
    OtherName(String),
}

/// The local members of one room.
#[derive(Debug, Default)]
pub(crate) struct LocalRoom {
    members: HashMap<ConnectionId, Local>,
    users: BTreeMap<UserId, Present>,
    /// Who holds each name key here, so that a look-alike name is refused
    /// without visiting every user.
    keys: HashMap<NameKey, UserId>,
}

impl LocalRoom {
    /// Whether no connection of this instance is in the room.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The users present here, sorted by name.
    pub fn users(&self) -> Vec<Member> {
        let mut users: Vec<Member> = self
            .users
            .iter()
            .map(|(user, present)| Member {
                user: user.clone(),
                name: present.name.clone(),
            })
            .collect();
        sort_members(&mut users);
        users
    }

    /// How many distinct users are present here.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Whether `conn` is a member.
    pub fn contains(&self, conn: ConnectionId) -> bool {
        self.members.contains_key(&conn)
    }

    /// Whether `user` may show `name` here: no other user holds a name with
    /// the same key, and the user is not here under another name.
    ///
    /// # Errors
    /// [`NameConflict`] saying which rule refused it.
    pub fn check(&self, user: &UserId, name: &DisplayName) -> Result<(), NameConflict> {
        if let Some(present) = self.users.get(user) {
            return if present.name == *name {
                Ok(())
            } else {
                Err(NameConflict::OtherName(present.name.to_string()))
            };
        }
        match self.keys.get(&name.key()) {
            Some(holder) if holder != user => Err(NameConflict::Taken(name.to_string())),
            _ => Ok(()),
        }
    }

    /// Adds `conn` for `user` shown as `name`; returns the user if they were
    /// not present here before. A connection that is a member already stays
    /// as it is.
    ///
    /// # Errors
    /// [`NameConflict`] as [`LocalRoom::check`]; nothing changes then.
    pub fn insert(
        &mut self,
        conn: &Connection,
        user: &UserId,
        name: &DisplayName,
    ) -> Result<Option<Member>, NameConflict> {
        if self.members.contains_key(&conn.id()) {
            return Ok(None);
        }
        self.check(user, name)?;
        self.members.insert(
            conn.id(),
            Local {
                user: user.clone(),
                conn: conn.clone(),
                presence_seen: 0,
            },
        );
        let present = self.users.entry(user.clone()).or_insert_with(|| Present {
            name: name.clone(),
            key: name.key(),
            connections: 0,
        });
        present.connections += 1;
        if present.connections > 1 {
            return Ok(None);
        }
        self.keys.insert(present.key.clone(), user.clone());
        Ok(Some(Member {
            user: user.clone(),
            name: name.clone(),
        }))
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

    /// Removes `conn`; returns its user if that was the user's last
    /// connection here.
    pub fn remove(&mut self, conn: ConnectionId) -> Option<Member> {
        let local = self.members.remove(&conn)?;
        let present = self.users.get_mut(&local.user)?;
        present.connections -= 1;
        if present.connections > 0 {
            return None;
        }
        let present = self.users.remove(&local.user)?;
        if self.keys.get(&present.key) == Some(&local.user) {
            self.keys.remove(&present.key);
        }
        Some(Member {
            user: local.user,
            name: present.name,
        })
    }

    /// Removes every connection of `user`, and the user; returns them.
    pub fn remove_user(&mut self, user: &UserId) -> Vec<Connection> {
        let ids: Vec<ConnectionId> = self
            .members
            .iter()
            .filter(|(_, m)| m.user == *user)
            .map(|(id, _)| *id)
            .collect();
        let mut gone = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(local) = self.members.get(&id) {
                gone.push(local.conn.clone());
            }
            self.remove(id);
        }
        gone
    }

    /// Queues `frame` for every member. Queueing never waits: a member whose
    /// outbox is full is closed as too slow instead.
    pub fn broadcast(&self, frame: &Utf8Bytes) {
        for member in self.members.values() {
            let _ = member.conn.send_text(frame.clone());
        }
    }

    /// Queues a presence event about `user` for every member except the
    /// user's own connections (a member is not told that it arrived or
    /// left), `except`, and, for an event of presence `version`, those
    /// whose member list already includes it.
    pub fn broadcast_presence(
        &self,
        frame: &Utf8Bytes,
        user: &UserId,
        except: Option<ConnectionId>,
        version: Option<u64>,
    ) {
        for (id, member) in &self.members {
            let stale = version.is_some_and(|v| v <= member.presence_seen);
            if member.user != *user && Some(*id) != except && !stale {
                let _ = member.conn.send_text(frame.clone());
            }
        }
    }

    /// Every member's connection with the name it shows, for frames built
    /// per member.
    pub fn connections(&self) -> impl Iterator<Item = (&Connection, &DisplayName)> {
        self.members.values().filter_map(|m| {
            let present = self.users.get(&m.user)?;
            Some((&m.conn, &present.name))
        })
    }
}

/// Sorts a member list as `joined` shows it: by name, then by user.
pub(crate) fn sort_members(members: &mut [Member]) {
    members.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.user.cmp(&b.user)));
}

/// A `member_joined` (`present`) or `member_left` frame.
pub(crate) fn presence_frame(room: &RoomName, member: &Member, present: bool) -> Utf8Bytes {
    let (room, user, name) = (room.clone(), member.user.clone(), member.name.clone());
    let message = if present {
        ServerMessage::MemberJoined { room, user, name }
    } else {
        ServerMessage::MemberLeft { room, user, name }
    };
    message.to_json().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::outbox;
    use tokio_tungstenite::tungstenite::http::Extensions;

    fn conn(id: ConnectionId) -> Connection {
        let (outbox, _rx) = outbox(4, usize::MAX);
        Connection::new(id, ([127, 0, 0, 1], 1).into(), outbox, Extensions::new())
    }

    fn user(s: &str) -> UserId {
        UserId::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn name(s: &str) -> DisplayName {
        DisplayName::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_user_with_two_connections_is_present_once() {
        let mut room = LocalRoom::default();
        let first = room.insert(&conn(1), &user("u1"), &name("Ada"));
        assert_eq!(first.map(|m| m.map(|m| m.user)), Ok(Some(user("u1"))));
        assert_eq!(room.insert(&conn(2), &user("u1"), &name("Ada")), Ok(None));
        assert_eq!(room.user_count(), 1);
        assert_eq!(room.remove(1), None);
        assert_eq!(room.remove(2).map(|m| m.user), Some(user("u1")));
        assert!(room.is_empty());
    }

    #[test]
    fn a_look_alike_name_of_another_user_is_refused_until_they_leave() {
        let mut room = LocalRoom::default();
        assert!(room.insert(&conn(1), &user("u1"), &name("Alice")).is_ok());
        for look_alike in ["alice", "ALICE", "\u{0410}lice"] {
            assert_eq!(
                room.insert(&conn(2), &user("u2"), &name(look_alike)),
                Err(NameConflict::Taken(look_alike.to_owned()))
            );
        }
        assert_eq!(
            room.insert(&conn(3), &user("u1"), &name("Bob")),
            Err(NameConflict::OtherName("Alice".to_owned()))
        );
        room.remove(1);
        assert!(room.insert(&conn(2), &user("u2"), &name("alice")).is_ok());
    }
}
