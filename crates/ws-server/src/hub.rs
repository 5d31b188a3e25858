//! Rooms and their members: who receives what.
//!
//! Two maps, kept consistent under one lock: room to members, and connection
//! to the rooms it is in (so a disconnect leaves every room in one step).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use protocol::{ChatMessage, DisplayName, MessageId, MessageText, RoomName, ServerMessage};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::component::{Connection, ConnectionId};

/// The client is not a member of the room it named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("you have not joined room {0:?}")]
pub struct NotJoined(pub RoomName);

/// Shared room state; a cheap clonable handle.
#[derive(Debug, Clone, Default)]
pub struct Hub {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    rooms: HashMap<RoomName, Room>,
    memberships: HashMap<ConnectionId, HashSet<RoomName>>,
}

#[derive(Debug, Default)]
struct Room {
    members: HashMap<ConnectionId, Member>,
}

#[derive(Debug)]
struct Member {
    name: DisplayName,
    conn: Connection,
}

impl Hub {
    /// An empty hub.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every edit
        // is a single insert or remove.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `conn` a member of `room` as `name` (renaming it if it already
    /// was one).
    pub fn join(&self, conn: &Connection, room: RoomName, name: DisplayName) {
        let mut state = self.lock();
        state
            .memberships
            .entry(conn.id())
            .or_default()
            .insert(room.clone());
        state.rooms.entry(room).or_default().members.insert(
            conn.id(),
            Member {
                name,
                conn: conn.clone(),
            },
        );
    }

    /// Removes `conn` from `room`; an empty room is dropped.
    ///
    /// # Errors
    /// [`NotJoined`] when `conn` is not in `room`.
    pub fn leave(&self, conn: ConnectionId, room: &RoomName) -> Result<(), NotJoined> {
        let mut state = self.lock();
        let was_member = state
            .memberships
            .get_mut(&conn)
            .is_some_and(|rooms| rooms.remove(room));
        if !was_member {
            return Err(NotJoined(room.clone()));
        }
        remove_member(&mut state, conn, room);
        Ok(())
    }

    /// Removes `conn` from every room it is in.
    pub fn disconnect(&self, conn: ConnectionId) {
        let mut state = self.lock();
        for room in state.memberships.remove(&conn).unwrap_or_default() {
            remove_member(&mut state, conn, &room);
        }
    }

    /// Posts `text` from `conn` to `room` and delivers it to every member,
    /// the poster included.
    ///
    /// # Errors
    /// [`NotJoined`] when `conn` is not in `room`.
    pub fn post(
        &self,
        conn: ConnectionId,
        room: RoomName,
        text: MessageText,
    ) -> Result<ChatMessage, NotJoined> {
        let state = self.lock();
        let Some(members) = state.rooms.get(&room).map(|r| &r.members) else {
            return Err(NotJoined(room));
        };
        let Some(poster) = members.get(&conn) else {
            return Err(NotJoined(room));
        };
        let message = ChatMessage {
            id: MessageId::generate(),
            name: poster.name.clone(),
            room,
            text,
            ts: protocol::now_millis(),
        };
        let frame: Utf8Bytes = ServerMessage::Message(message.clone()).to_json().into();
        // Frames are queued while the lock is held, on purpose: queueing never
        // waits (a full outbox closes that client instead), and it is what
        // makes every member see a room's messages in the same order.
        for member in members.values() {
            let _ = member.conn.send_text(frame.clone());
        }
        Ok(message)
    }

    /// The number of members of `room` (0 for a room that does not exist).
    #[must_use]
    pub fn member_count(&self, room: &RoomName) -> usize {
        self.lock().rooms.get(room).map_or(0, |r| r.members.len())
    }

    /// The number of rooms with at least one member.
    #[must_use]
    pub fn room_count(&self) -> usize {
        self.lock().rooms.len()
    }
}

fn remove_member(state: &mut State, conn: ConnectionId, room: &RoomName) {
    if let Some(r) = state.rooms.get_mut(room) {
        r.members.remove(&conn);
        if r.members.is_empty() {
            state.rooms.remove(room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;
    use tokio_tungstenite::tungstenite::Message;

    fn conn(id: ConnectionId) -> (Connection, mpsc::Receiver<Message>) {
        let (tx, rx) = mpsc::channel(8);
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 1000));
        (Connection::new(id, peer, tx), rx)
    }

    fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn name(s: &str) -> DisplayName {
        DisplayName::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn text(s: &str) -> MessageText {
        MessageText::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn posts_reach_members_of_that_room_only() {
        let hub = Hub::new();
        let (a, mut a_rx) = conn(1);
        let (b, mut b_rx) = conn(2);
        let (c, mut c_rx) = conn(3);
        hub.join(&a, room("one"), name("A"));
        hub.join(&b, room("one"), name("B"));
        hub.join(&c, room("two"), name("C"));
        let posted = hub.post(1, room("one"), text("hi"));
        assert_eq!(posted.map(|m| m.name), Ok(name("A")));
        assert!(matches!(a_rx.try_recv(), Ok(Message::Text(_))));
        assert!(matches!(b_rx.try_recv(), Ok(Message::Text(_))));
        assert!(c_rx.try_recv().is_err());
    }

    #[test]
    fn posting_or_leaving_without_joining_is_refused() {
        let hub = Hub::new();
        let (a, _a_rx) = conn(1);
        hub.join(&a, room("one"), name("A"));
        assert_eq!(
            hub.post(2, room("one"), text("x")).map(|_| ()),
            Err(NotJoined(room("one")))
        );
        assert_eq!(hub.leave(1, &room("two")), Err(NotJoined(room("two"))));
    }

    #[test]
    fn leaving_and_disconnecting_drop_empty_rooms() {
        let hub = Hub::new();
        let (a, _a_rx) = conn(1);
        hub.join(&a, room("one"), name("A"));
        hub.join(&a, room("two"), name("A"));
        assert_eq!(hub.room_count(), 2);
        assert_eq!(hub.leave(1, &room("one")), Ok(()));
        assert_eq!(hub.member_count(&room("one")), 0);
        hub.disconnect(1);
        assert_eq!(hub.room_count(), 0);
    }

    #[test]
    fn a_full_outbox_closes_only_that_client() {
        let hub = Hub::new();
        let (tx, _rx) = mpsc::channel(1);
        let slow = Connection::new(9, std::net::SocketAddr::from(([127, 0, 0, 1], 1)), tx);
        let (fast, mut fast_rx) = conn(1);
        hub.join(&slow, room("r"), name("Slow"));
        hub.join(&fast, room("r"), name("Fast"));
        for _ in 0..3 {
            assert!(hub.post(1, room("r"), text("x")).is_ok());
        }
        assert_eq!(
            slow.close_request().map(|r| r.code),
            Some(protocol::CloseCode::SLOW_CONSUMER)
        );
        assert!(fast.close_request().is_none());
        for _ in 0..3 {
            assert!(fast_rx.try_recv().is_ok());
        }
    }
}
