//! Rooms: their members, their presence and their history.
//!
//! All room state sits behind one mutex, in two maps kept consistent: room
//! to [`Room`], and connection to the rooms it is in (so a disconnect leaves
//! every room in one step). Frames for a room are queued while the lock is
//! held, on purpose: queueing never waits (a full outbox closes that client
//! instead), and it is what makes every member see a room's events in one
//! order, and a joiner's history end exactly where its live messages begin.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use protocol::{
    ChatMessage, ClientRef, DisplayName, Epoch, MessageId, MessageText, Position, RoomInfo,
    RoomName, ServerMessage,
};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::component::{Connection, ConnectionId};

/// The client is not a member of the room it named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("you have not joined room {0:?}")]
pub struct NotJoined(pub RoomName);

/// Where a stored message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The message's id.
    pub id: MessageId,
    /// Its offset in the room.
    pub offset: u64,
}

/// Shared room state; a cheap clonable handle.
#[derive(Debug, Clone)]
pub struct Hub {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    /// The epoch of every room's history in this hub. The store is this
    /// process's memory, so history is lost exactly when the process ends:
    /// one epoch per hub is enough, and it keeps a room that was dropped
    /// while empty (it never had a message) recoverable when it comes back.
    epoch: Epoch,
    rooms: HashMap<RoomName, Room>,
    memberships: HashMap<ConnectionId, HashSet<RoomName>>,
    /// Messages kept per room for late joiners and recovery.
    history_size: usize,
}

#[derive(Debug)]
struct Room {
    /// The offset of the latest message; 0 before the first. Never goes back
    /// within an epoch: a room that has had a message is kept.
    last_offset: u64,
    /// The latest messages, oldest first, at most `history_size`.
    history: VecDeque<ChatMessage>,
    members: HashMap<ConnectionId, Member>,
    /// Connections per display name: a name is present while it has one.
    presence: BTreeMap<DisplayName, usize>,
}

#[derive(Debug)]
struct Member {
    name: DisplayName,
    conn: Connection,
}

impl Room {
    fn new() -> Self {
        Self {
            last_offset: 0,
            history: VecDeque::new(),
            members: HashMap::new(),
            presence: BTreeMap::new(),
        }
    }

    /// Queues `frame` for every member but `except`.
    fn broadcast(&self, frame: &Utf8Bytes, except: Option<ConnectionId>) {
        for (id, member) in &self.members {
            if Some(*id) != except {
                let _ = member.conn.send_text(frame.clone());
            }
        }
    }

    /// Counts one more connection for `name`; announces the name to the
    /// others if it was absent.
    fn add_presence(&mut self, room: &RoomName, name: &DisplayName, joiner: ConnectionId) {
        let count = self.presence.entry(name.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            let frame = encode(&ServerMessage::MemberJoined {
                room: room.clone(),
                name: name.clone(),
            });
            self.broadcast(&frame, Some(joiner));
        }
    }

    /// Counts one connection less for `name`; announces its departure, to
    /// all but `except`, if it was the last.
    fn remove_presence(
        &mut self,
        room: &RoomName,
        name: &DisplayName,
        except: Option<ConnectionId>,
    ) {
        let Some(count) = self.presence.get_mut(name) else {
            return;
        };
        *count -= 1;
        if *count == 0 {
            self.presence.remove(name);
            let frame = encode(&ServerMessage::MemberLeft {
                room: room.clone(),
                name: name.clone(),
            });
            self.broadcast(&frame, except);
        }
    }

    /// What a joiner at `since` should be shown, and whether it is exactly
    /// what it missed.
    fn history_since(&self, epoch: &Epoch, since: Option<&Position>) -> (Vec<ChatMessage>, bool) {
        if let Some(since) = since {
            let oldest = self
                .history
                .front()
                .map_or(self.last_offset + 1, |m| m.offset);
            let same_epoch = since.epoch == *epoch;
            let not_ahead = since.offset <= self.last_offset;
            let still_kept = since.offset.saturating_add(1) >= oldest;
            if same_epoch && not_ahead && still_kept {
                let missed = self
                    .history
                    .iter()
                    .filter(|m| m.offset > since.offset)
                    .cloned()
                    .collect();
                return (missed, true);
            }
        }
        (self.history.iter().cloned().collect(), false)
    }

    /// Stores a message and delivers it to every member.
    fn append(&mut self, mut message: ChatMessage, history_size: usize) -> Stored {
        self.last_offset += 1;
        message.offset = self.last_offset;
        let stored = Stored {
            id: message.id,
            offset: message.offset,
        };
        let frame = encode(&ServerMessage::Message(message.clone()));
        self.broadcast(&frame, None);
        if history_size > 0 {
            if self.history.len() == history_size {
                self.history.pop_front();
            }
            self.history.push_back(message);
        }
        stored
    }

    /// A room with no members that never had a message holds nothing worth
    /// keeping: dropping it loses no offset.
    fn is_disposable(&self) -> bool {
        self.members.is_empty() && self.last_offset == 0
    }
}

fn encode(message: &ServerMessage) -> Utf8Bytes {
    message.to_json().into()
}

impl Hub {
    /// An empty hub keeping `history_size` messages per room.
    #[must_use]
    pub fn new(history_size: usize) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                epoch: Epoch::generate(),
                rooms: HashMap::new(),
                memberships: HashMap::new(),
                history_size,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: no edit
        // leaves it half done across a call that can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `conn` a member of `room` as `name` (renaming it if it already
    /// was one) and queues its `joined` frame: the members present and the
    /// history to show, from `since` when that can be done exactly.
    pub fn join(
        &self,
        conn: &Connection,
        room: RoomName,
        name: DisplayName,
        since: Option<&Position>,
        reference: Option<ClientRef>,
    ) {
        let mut state = self.lock();
        state
            .memberships
            .entry(conn.id())
            .or_default()
            .insert(room.clone());
        let epoch = state.epoch.clone();
        let entry = state.rooms.entry(room.clone()).or_insert_with(Room::new);
        let previous = entry.members.insert(
            conn.id(),
            Member {
                name: name.clone(),
                conn: conn.clone(),
            },
        );
        match previous {
            Some(old) if old.name == name => {}
            Some(old) => {
                // The renamed connection learns the new list from `joined`.
                entry.remove_presence(&room, &old.name, Some(conn.id()));
                entry.add_presence(&room, &name, conn.id());
            }
            None => entry.add_presence(&room, &name, conn.id()),
        }
        let (history, recovered) = entry.history_since(&epoch, since);
        let joined = ServerMessage::Joined {
            room,
            name,
            epoch,
            offset: entry.last_offset,
            recovered,
            members: entry.presence.keys().cloned().collect(),
            history,
            reference,
        };
        let _ = conn.send_text(encode(&joined));
    }

    /// Removes `conn` from `room`.
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

    /// Stores `text` from member `conn` in `room` and delivers it to every
    /// member, the poster included.
    ///
    /// # Errors
    /// [`NotJoined`] when `conn` is not in `room`.
    pub fn post(
        &self,
        conn: ConnectionId,
        room: RoomName,
        text: MessageText,
        reference: Option<ClientRef>,
    ) -> Result<Stored, NotJoined> {
        let mut state = self.lock();
        let history_size = state.history_size;
        let Some(entry) = state.rooms.get_mut(&room) else {
            return Err(NotJoined(room));
        };
        let Some(poster) = entry.members.get(&conn) else {
            return Err(NotJoined(room));
        };
        let message = new_message(room, poster.name.clone(), text, false, reference);
        Ok(entry.append(message, history_size))
    }

    /// Stores an announcement in `room` (created if need be) and delivers it
    /// to every member: server-side publishing.
    pub fn publish(
        &self,
        room: RoomName,
        name: DisplayName,
        text: MessageText,
        reference: Option<ClientRef>,
    ) -> Stored {
        let mut state = self.lock();
        let history_size = state.history_size;
        let entry = state.rooms.entry(room.clone()).or_insert_with(Room::new);
        let stored = entry.append(
            new_message(room.clone(), name, text, true, reference),
            history_size,
        );
        if entry.is_disposable() {
            state.rooms.remove(&room);
        }
        stored
    }

    /// Rooms with at least one member, by name, with their member counts.
    #[must_use]
    pub fn rooms(&self) -> Vec<RoomInfo> {
        let state = self.lock();
        let mut rooms: Vec<RoomInfo> = state
            .rooms
            .iter()
            .filter(|(_, r)| !r.members.is_empty())
            .map(|(name, r)| RoomInfo {
                room: name.clone(),
                members: r.presence.len(),
            })
            .collect();
        rooms.sort_by(|a, b| a.room.cmp(&b.room));
        rooms
    }

    /// The number of distinct names present in `room`.
    #[must_use]
    pub fn member_count(&self, room: &RoomName) -> usize {
        self.lock().rooms.get(room).map_or(0, |r| r.presence.len())
    }

    /// The number of rooms kept (with members, or that have had messages).
    #[must_use]
    pub fn room_count(&self) -> usize {
        self.lock().rooms.len()
    }
}

fn new_message(
    room: RoomName,
    name: DisplayName,
    text: MessageText,
    announcement: bool,
    reference: Option<ClientRef>,
) -> ChatMessage {
    ChatMessage {
        id: MessageId::generate(),
        room,
        offset: 0, // assigned by Room::append
        name,
        text,
        ts: protocol::now_millis(),
        announcement,
        reference,
    }
}

fn remove_member(state: &mut State, conn: ConnectionId, room: &RoomName) {
    let Some(entry) = state.rooms.get_mut(room) else {
        return;
    };
    if let Some(member) = entry.members.remove(&conn) {
        entry.remove_presence(room, &member.name, None);
    }
    if entry.is_disposable() {
        state.rooms.remove(room);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::Outbox;
    use tokio::sync::mpsc;
    use tokio_tungstenite::tungstenite::Message;

    fn conn(id: ConnectionId) -> (Connection, mpsc::Receiver<Message>) {
        let (outbox, rx) = Outbox::unlimited(64);
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 1000));
        (Connection::new(id, peer, outbox, Default::default()), rx)
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

    fn frames(rx: &mut mpsc::Receiver<Message>) -> Vec<ServerMessage> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .filter_map(|m| match m {
                Message::Text(t) => serde_json::from_str(&t).ok(),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn posts_reach_members_of_that_room_only() {
        let hub = Hub::new(10);
        let (a, mut a_rx) = conn(1);
        let (b, mut b_rx) = conn(2);
        let (c, mut c_rx) = conn(3);
        hub.join(&a, room("one"), name("A"), None, None);
        hub.join(&b, room("one"), name("B"), None, None);
        hub.join(&c, room("two"), name("C"), None, None);
        let _ = (frames(&mut a_rx), frames(&mut b_rx), frames(&mut c_rx));
        assert_eq!(
            hub.post(1, room("one"), text("hi"), None).map(|s| s.offset),
            Ok(1)
        );
        assert_eq!(frames(&mut a_rx).len(), 1);
        assert_eq!(frames(&mut b_rx).len(), 1);
        assert!(frames(&mut c_rx).is_empty());
    }

    #[test]
    fn posting_or_leaving_without_joining_is_refused() {
        let hub = Hub::new(10);
        let (a, _a_rx) = conn(1);
        hub.join(&a, room("one"), name("A"), None, None);
        assert_eq!(
            hub.post(2, room("one"), text("x"), None).map(|_| ()),
            Err(NotJoined(room("one")))
        );
        assert_eq!(hub.leave(1, &room("two")), Err(NotJoined(room("two"))));
    }

    #[test]
    fn rooms_without_members_or_messages_are_dropped() {
        let hub = Hub::new(10);
        let (a, _a_rx) = conn(1);
        hub.join(&a, room("quiet"), name("A"), None, None);
        hub.join(&a, room("busy"), name("A"), None, None);
        assert!(hub.post(1, room("busy"), text("kept"), None).is_ok());
        assert_eq!(hub.room_count(), 2);
        hub.disconnect(1);
        assert_eq!(hub.room_count(), 1, "the room with messages stays");
        assert!(hub.rooms().is_empty(), "but is not listed as active");
    }

    #[test]
    fn history_is_capped_and_offsets_keep_counting() {
        let hub = Hub::new(3);
        let (a, mut a_rx) = conn(1);
        hub.join(&a, room("r"), name("A"), None, None);
        for i in 0..5 {
            assert!(hub.post(1, room("r"), text(&format!("m{i}")), None).is_ok());
        }
        let (b, mut b_rx) = conn(2);
        hub.join(&b, room("r"), name("B"), None, None);
        let _ = frames(&mut a_rx);
        match frames(&mut b_rx).first() {
            Some(ServerMessage::Joined {
                offset, history, ..
            }) => {
                assert_eq!(*offset, 5);
                let offsets: Vec<u64> = history.iter().map(|m| m.offset).collect();
                assert_eq!(offsets, [3, 4, 5]);
            }
            other => panic!("expected joined, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_room_that_comes_back_recovers_without_loss() {
        let hub = Hub::new(10);
        let (a, mut a_rx) = conn(1);
        hub.join(&a, room("blip"), name("A"), None, None);
        let Some(ServerMessage::Joined { epoch, offset, .. }) = frames(&mut a_rx).pop() else {
            panic!("expected joined");
        };
        hub.disconnect(1);
        assert_eq!(hub.room_count(), 0);
        let (again, mut again_rx) = conn(2);
        let since = Position { epoch, offset };
        hub.join(&again, room("blip"), name("A"), Some(&since), None);
        assert!(matches!(
            frames(&mut again_rx).pop(),
            Some(ServerMessage::Joined {
                recovered: true,
                ..
            })
        ));
    }

    #[test]
    fn offsets_never_restart_within_an_epoch_even_without_history() {
        let hub = Hub::new(0);
        let (a, _a_rx) = conn(1);
        hub.join(&a, room("r"), name("A"), None, None);
        assert!(hub.post(1, room("r"), text("x"), None).is_ok());
        hub.disconnect(1);
        let (b, _b_rx) = conn(2);
        hub.join(&b, room("r"), name("B"), None, None);
        assert_eq!(
            hub.post(2, room("r"), text("y"), None).map(|s| s.offset),
            Ok(2)
        );
    }

    #[test]
    fn a_full_outbox_closes_only_that_client() {
        let hub = Hub::new(0);
        let (outbox, _rx) = Outbox::unlimited(1);
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        let slow = Connection::new(9, peer, outbox, Default::default());
        let (fast, mut fast_rx) = conn(1);
        hub.join(&slow, room("r"), name("Slow"), None, None);
        hub.join(&fast, room("r"), name("Fast"), None, None);
        for _ in 0..3 {
            assert!(hub.post(1, room("r"), text("x"), None).is_ok());
        }
        assert_eq!(
            slow.close_request().map(|r| r.code),
            Some(protocol::CloseCode::SLOW_CONSUMER)
        );
        assert!(fast.close_request().is_none());
        assert_eq!(frames(&mut fast_rx).len(), 4, "joined and three messages");
    }
}
