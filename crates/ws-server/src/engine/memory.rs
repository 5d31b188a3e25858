//! The in-memory engine: every room in this process, each behind its own
//! lock.
//!
//! The map of rooms is locked only to find, create or drop a room; a room's
//! own lock covers its order: assigning an offset, appending the encoded
//! message to its history and queueing the frame for its members happen
//! under it, and so does a join's history snapshot, so a joiner's history
//! ends exactly where its live messages begin. Posts in different rooms
//! never wait for each other. Queueing never waits (a full outbox closes
//! that client), so holding a room's lock across it costs little.
//!
//! History is kept encoded: a join splices stored entries into its frame
//! rather than serializing the messages again.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use log::debug;
use protocol::encoded::{self, JoinedHead};
use protocol::{Epoch, Position, RoomName};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::local::{LocalRoom, NameConflict, presence_frame};
use super::{Draft, EngineError, HistoryPage, Join, Page, Stored};
use crate::component::ConnectionId;
use crate::settings::Settings;

/// The longest pause between two sweeps for idle rooms; with a short
/// `room_idle_ttl`, sweeps come at half of it.
const MAX_SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Rooms in this process; a cheap clonable handle.
#[derive(Debug, Clone)]
pub struct MemoryEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    rooms: Mutex<Rooms>,
    history_size: usize,
    /// The most entries a join that does not recover is sent.
    join_history: usize,
    max_rooms: usize,
    room_idle_ttl: Duration,
}

/// The rooms held, and which of them went idle when.
#[derive(Debug, Default)]
struct Rooms {
    map: HashMap<RoomName, Arc<Room>>,
    /// Rooms as they went idle, oldest first: where eviction looks, so a
    /// full instance finds the longest-idle room without visiting every
    /// room. Entries are hints: a room may have gained a member since,
    /// which eviction checks under the room's own lock.
    idle: BTreeSet<(Instant, RoomName)>,
    /// Each room's one entry in `idle`.
    idle_at: HashMap<RoomName, Instant>,
}

impl Rooms {
    /// Records that `name` went idle at `since` (unless a later record for
    /// it is already here).
    fn went_idle(&mut self, name: &RoomName, since: Instant) {
        if let Some(&at) = self.idle_at.get(name) {
            if at >= since {
                return;
            }
            self.idle.remove(&(at, name.clone()));
        }
        self.idle_at.insert(name.clone(), since);
        self.idle.insert((since, name.clone()));
    }

    fn remove(&mut self, name: &RoomName) -> Option<Arc<Room>> {
        if let Some(at) = self.idle_at.remove(name) {
            self.idle.remove(&(at, name.clone()));
        }
        self.map.remove(name)
    }
}

#[derive(Debug)]
struct Room {
    state: Mutex<RoomState>,
}

#[derive(Debug)]
struct RoomState {
    /// Names this room's history; a new one whenever the room is opened
    /// again after being dropped, so old offsets are never taken for new.
    epoch: Epoch,
    /// The offset of the latest message; 0 before the first.
    last_offset: u64,
    /// The latest messages, oldest first, at most `history_size`, encoded.
    history: VecDeque<Entry>,
    members: LocalRoom,
    /// Since when the room has had no member and no message; `None` while
    /// it has members.
    idle_since: Option<Instant>,
    /// Set when the room is taken out of the map: a caller that found it
    /// just before must look again.
    dropped: bool,
}

#[derive(Debug)]
struct Entry {
    offset: u64,
    json: String,
}

impl RoomState {
    fn new(now: Instant) -> Self {
        Self {
            epoch: Epoch::generate(),
            last_offset: 0,
            history: VecDeque::new(),
            members: LocalRoom::default(),
            idle_since: Some(now),
            dropped: false,
        }
    }

    fn expired(&self, now: Instant, ttl: Duration) -> bool {
        self.idle_since.is_some_and(|since| now >= since + ttl)
    }

    /// A room found idle past its time is the same as one dropped and opened
    /// again: a new epoch and no history. The sweep may not have come yet.
    fn expire_if_idle(&mut self, now: Instant, ttl: Duration) {
        if self.expired(now, ttl) {
            *self = Self::new(now);
        }
    }

    /// The history entries a joiner at `since` should get (everything
    /// after `since` when that can be recovered, else the latest
    /// `join_history`), whether they are exactly what it missed, and whether
    /// older entries are kept.
    fn history_since(
        &self,
        since: Option<&Position>,
        join_history: usize,
    ) -> (impl Iterator<Item = &str>, bool, bool) {
        let oldest = self.history.front().map(|e| e.offset);
        let from = since
            .filter(|since| super::can_recover(since, &self.epoch, self.last_offset, oldest))
            .map(|since| since.offset);
        let skip = match from {
            Some(from) => self.history.partition_point(|e| e.offset <= from),
            None => self.history.len().saturating_sub(join_history),
        };
        let entries = self.history.iter().skip(skip).map(|e| e.json.as_str());
        (entries, from.is_some(), skip > 0)
    }

    /// The latest `limit` entries before offset `before`, oldest first,
    /// and whether older ones are kept.
    fn history_before(&self, before: u64, limit: usize) -> HistoryPage {
        let end = self.history.partition_point(|e| e.offset < before);
        let start = end.saturating_sub(limit);
        HistoryPage {
            epoch: self.epoch.clone(),
            entries: self
                .history
                .range(start..end)
                .map(|e| e.json.clone())
                .collect(),
            has_earlier: start > 0,
        }
    }
}

impl Room {
    fn lock(&self) -> MutexGuard<'_, RoomState> {
        // No edit leaves a room half done across a call that can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MemoryEngine {
    /// An empty engine with `settings`' history and room limits, and its
    /// sweep for idle rooms on `tracker` until `shutdown`.
    #[must_use]
    pub fn start(settings: &Settings, shutdown: &CancellationToken, tracker: &TaskTracker) -> Self {
        let engine = Self::new(settings);
        let sweeper = engine.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let period = (sweeper.inner.room_idle_ttl / 2)
                .clamp(Duration::from_millis(1), MAX_SWEEP_INTERVAL);
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = tick.tick() => sweeper.sweep(),
                }
            }
        });
        engine
    }

    /// An empty engine with no sweep task; rooms past their idle time are
    /// then renewed when next used.
    #[must_use]
    pub fn new(settings: &Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                rooms: Mutex::new(Rooms::default()),
                history_size: settings.history_size,
                join_history: settings.join_history,
                max_rooms: settings.max_rooms,
                room_idle_ttl: settings.room_idle_ttl,
            }),
        }
    }

    fn rooms(&self) -> MutexGuard<'_, Rooms> {
        self.inner
            .rooms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the room's state, creating the room if need be. Lock
    /// order: the map, then a room, never the other way round.
    fn with_room<T>(
        &self,
        name: &RoomName,
        f: impl FnOnce(&mut RoomState) -> T,
    ) -> Result<T, EngineError> {
        loop {
            let room = self.find_or_open(name)?;
            let mut state = room.lock();
            if state.dropped {
                continue; // swept between the lookup and the lock
            }
            state.expire_if_idle(Instant::now(), self.inner.room_idle_ttl);
            let result = f(&mut state);
            let idle = state.idle_since;
            drop(state);
            if let Some(since) = idle {
                // Only an empty room is idle: posts to rooms with members
                // never get here.
                self.rooms().went_idle(name, since);
            }
            return Ok(result);
        }
    }

    fn find_or_open(&self, name: &RoomName) -> Result<Arc<Room>, EngineError> {
        let mut rooms = self.rooms();
        if let Some(room) = rooms.map.get(name) {
            return Ok(Arc::clone(room));
        }
        if rooms.map.len() >= self.inner.max_rooms && !Self::evict_one(&mut rooms) {
            return Err(EngineError::ServerBusy);
        }
        let now = Instant::now();
        let room = Arc::new(Room {
            state: Mutex::new(RoomState::new(now)),
        });
        rooms.map.insert(name.clone(), Arc::clone(&room));
        rooms.went_idle(name, now);
        Ok(room)
    }

    /// Drops the room idle the longest, if any is idle; a room with members
    /// is never dropped. Dropping early is the same as its idle time having
    /// run out: it comes back with a new epoch.
    fn evict_one(rooms: &mut Rooms) -> bool {
        while let Some((since, name)) = rooms.idle.pop_first() {
            rooms.idle_at.remove(&name);
            let Some(room) = rooms.map.get(&name).map(Arc::clone) else {
                continue;
            };
            // Checked and marked under one hold of the room's lock: a join
            // that got the room before this either made it busy (kept) or
            // finds it dropped and looks again.
            let mut state = room.lock();
            match state.idle_since {
                Some(at) if at == since => {
                    state.dropped = true;
                    drop(state);
                    rooms.map.remove(&name);
                    debug!("room {name} dropped early to make room");
                    return true;
                }
                // Idle since another time: listed again under it.
                Some(at) => {
                    drop(state);
                    rooms.went_idle(&name, at);
                }
                None => {}
            }
        }
        false
    }

    /// Drops every room idle past `room_idle_ttl`, history included.
    pub fn sweep(&self) {
        let now = Instant::now();
        let ttl = self.inner.room_idle_ttl;
        let mut rooms = self.rooms();
        let expired: Vec<RoomName> = rooms
            .idle
            .iter()
            .take_while(|(since, _)| now >= *since + ttl)
            .map(|(_, name)| name.clone())
            .collect();
        for name in expired {
            let Some(room) = rooms.map.get(&name).map(Arc::clone) else {
                rooms.remove(&name); // a record left by a room evicted since
                continue;
            };
            let mut state = room.lock();
            if state.expired(now, ttl) {
                state.dropped = true;
                drop(state);
                rooms.remove(&name);
                debug!("room {name} dropped after {ttl:?} idle");
            } else {
                // Busy again (its record is stale), or idle since later.
                let idle = state.idle_since;
                drop(state);
                if let Some(at) = rooms.idle_at.remove(&name) {
                    rooms.idle.remove(&(at, name.clone()));
                }
                if let Some(at) = idle {
                    rooms.went_idle(&name, at);
                }
            }
        }
    }

    /// See [`super::Engine::join`].
    ///
    /// # Errors
    /// [`EngineError::ServerBusy`] when the room would be one too many.
    pub fn join(&self, join: Join<'_>) -> Result<(), EngineError> {
        self.with_room(join.room, |state| {
            let appeared = state.members.insert(join.conn, join.user, join.name)?;
            state.idle_since = None;
            if let Some(new) = &appeared {
                let frame = presence_frame(join.room, new, true);
                state
                    .members
                    .broadcast_presence(&frame, &new.user, Some(join.conn.id()), None);
            }
            let (entries, recovered, has_earlier) =
                state.history_since(join.since, self.inner.join_history);
            let head = JoinedHead {
                room: join.room.clone(),
                name: join.name.clone(),
                epoch: state.epoch.clone(),
                offset: state.last_offset,
                recovered,
                members: state.members.users(),
                has_earlier,
                reference: join.reference,
            };
            let _ = join.conn.send_text(head.encode(entries).into());
            Ok::<(), NameConflict>(())
        })?
        .map_err(EngineError::from)
    }

    /// See [`super::Engine::leave`].
    pub fn leave(&self, conn: ConnectionId, name: &RoomName) {
        let Some(room) = self.rooms().map.get(name).map(Arc::clone) else {
            return;
        };
        let mut state = room.lock();
        let was_member = state.members.contains(conn);
        if let Some(gone) = state.members.remove(conn) {
            let frame = presence_frame(name, &gone, false);
            state
                .members
                .broadcast_presence(&frame, &gone.user, None, None);
        }
        if was_member && state.members.is_empty() {
            let now = Instant::now();
            state.idle_since = Some(now);
            drop(state);
            self.rooms().went_idle(name, now);
        }
    }

    /// See [`super::Engine::publish`].
    ///
    /// # Errors
    /// [`EngineError::ServerBusy`] when the room would be one too many.
    pub fn publish(&self, draft: Draft) -> Result<Stored, EngineError> {
        let history_size = self.inner.history_size;
        let mut message = draft.into_message();
        let room = message.room.clone();
        self.with_room(&room, |state| {
            state.last_offset += 1;
            message.offset = state.last_offset;
            let entry = encoded::encode_entry(&message);
            let frame: Utf8Bytes = encoded::message_frame(&entry).into();
            state.members.broadcast(&frame);
            if history_size > 0 {
                if state.history.len() >= history_size {
                    state.history.pop_front();
                }
                state.history.push_back(Entry {
                    offset: message.offset,
                    json: entry,
                });
            }
            if state.members.is_empty() {
                // A message keeps an empty room for another idle period.
                state.idle_since = Some(Instant::now());
            }
            Stored {
                id: message.id,
                offset: message.offset,
            }
        })
    }

    /// See [`super::Engine::history`]. Read under the room's lock, so the
    /// entries are ones its members were sent already.
    #[must_use]
    pub fn history(&self, name: &RoomName, before: u64, limit: usize) -> HistoryPage {
        let room = self.rooms().map.get(name).map(Arc::clone);
        match room {
            Some(room) => {
                let state = room.lock();
                if state.dropped {
                    HistoryPage::nothing()
                } else {
                    state.history_before(before, limit)
                }
            }
            // Not held: a room with members always is. One opened again
            // would keep nothing and have a new epoch.
            None => HistoryPage::nothing(),
        }
    }

    /// See [`super::Engine::rooms`].
    #[must_use]
    pub fn rooms_with_members(&self, after: Option<&RoomName>, limit: usize) -> Page {
        // Copied out, so that no room's lock is taken under the map's.
        let rooms: BTreeMap<RoomName, Arc<Room>> = self
            .rooms()
            .map
            .iter()
            .filter(|(name, _)| after.is_none_or(|after| *name > after))
            .map(|(name, room)| (name.clone(), Arc::clone(room)))
            .collect();
        Page::of(rooms.keys(), after, limit, |name| {
            let members = rooms.get(name)?.lock().members.user_count();
            (members > 0).then_some(members)
        })
    }

    /// Rooms held now: with members, or idle and not yet dropped.
    #[must_use]
    pub fn room_count(&self) -> usize {
        self.rooms().map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::Connection;
    use crate::outbox::{OutboxReader, outbox};
    use protocol::{DisplayName, ServerMessage};
    use tokio_tungstenite::tungstenite::Message;

    const TTL: Duration = Duration::from_secs(60);

    fn engine(max_rooms: usize) -> MemoryEngine {
        MemoryEngine::new(&Settings {
            max_rooms,
            room_idle_ttl: TTL,
            ..Settings::default()
        })
    }

    fn conn(id: ConnectionId) -> (Connection, OutboxReader) {
        let (outbox, rx) = outbox(64, usize::MAX);
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 1000));
        (Connection::new(id, peer, outbox, Default::default()), rx)
    }

    fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn name(s: &str) -> DisplayName {
        DisplayName::new(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn user() -> protocol::UserId {
        protocol::UserId::new("u1").unwrap_or_else(|e| panic!("{e}"))
    }

    /// Joins and returns the `joined` frame's epoch, offset and `recovered`.
    fn join(
        engine: &MemoryEngine,
        id: ConnectionId,
        r: &str,
        since: Option<&Position>,
    ) -> Result<(Epoch, u64, bool), EngineError> {
        let (c, mut rx) = conn(id);
        let r = room(r);
        let n = name("Ada");
        let u = user();
        engine.join(Join {
            conn: &c,
            room: &r,
            user: &u,
            name: &n,
            since,
            reference: None,
        })?;
        let Some(Message::Text(text)) = rx.try_recv() else {
            panic!("no joined frame");
        };
        match serde_json::from_str(&text) {
            Ok(ServerMessage::Joined {
                epoch,
                offset,
                recovered,
                ..
            }) => Ok((epoch, offset, recovered)),
            other => panic!("expected joined, got {other:?}"),
        }
    }

    fn post(engine: &MemoryEngine, r: &str) -> Result<Stored, EngineError> {
        engine.publish(Draft {
            room: room(r),
            user: user(),
            name: name("Ada"),
            text: protocol::MessageText::new("hi").unwrap_or_else(|e| panic!("{e}")),
            announcement: false,
            reference: None,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn an_emptied_room_is_kept_for_its_idle_time_then_dropped_with_its_history() {
        let engine = engine(10);
        let (epoch, _, _) = join(&engine, 1, "r", None).unwrap_or_else(|e| panic!("{e}"));
        assert!(post(&engine, "r").is_ok());
        engine.leave(1, &room("r"));

        tokio::time::advance(TTL - Duration::from_millis(1)).await;
        engine.sweep();
        assert_eq!(engine.room_count(), 1, "kept until its idle time is up");
        let since = Position { epoch, offset: 1 };
        let (same, _, recovered) =
            join(&engine, 2, "r", Some(&since)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((same, recovered), (since.epoch.clone(), true));
        engine.leave(2, &room("r"));

        tokio::time::advance(TTL).await;
        engine.sweep();
        assert_eq!(
            engine.room_count(),
            0,
            "dropped once idle for room_idle_ttl"
        );
        let (epoch, offset, recovered) =
            join(&engine, 3, "r", Some(&since)).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(epoch, since.epoch, "a room opened again has a new epoch");
        assert_eq!((offset, recovered), (0, false));
    }

    #[tokio::test(start_paused = true)]
    async fn a_room_past_its_idle_time_is_renewed_even_before_the_sweep() {
        let engine = engine(10);
        let (epoch, _, _) = join(&engine, 1, "r", None).unwrap_or_else(|e| panic!("{e}"));
        assert!(post(&engine, "r").is_ok());
        engine.leave(1, &room("r"));
        tokio::time::advance(TTL).await;
        let since = Position {
            epoch: epoch.clone(),
            offset: 1,
        };
        let (renewed, _, recovered) =
            join(&engine, 2, "r", Some(&since)).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(renewed, epoch);
        assert!(!recovered);
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_keeps_an_empty_room_for_another_idle_period() {
        let engine = engine(10);
        assert!(post(&engine, "announced").is_ok());
        tokio::time::advance(TTL / 2).await;
        assert!(post(&engine, "announced").is_ok());
        tokio::time::advance(TTL / 2 + Duration::from_millis(1)).await;
        engine.sweep();
        assert_eq!(engine.room_count(), 1);
        tokio::time::advance(TTL).await;
        engine.sweep();
        assert_eq!(engine.room_count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_engine_drops_its_longest_idle_room_and_refuses_when_none_is_idle() {
        let engine = engine(2);
        assert!(join(&engine, 1, "a", None).is_ok());
        assert!(post(&engine, "old").is_ok());
        // "a" has a member; "old" is the only idle room, so it goes.
        assert!(join(&engine, 2, "c", None).is_ok());
        assert_eq!(engine.room_count(), 2);
        let names: Vec<String> = engine
            .rooms()
            .map
            .keys()
            .map(|r| r.as_str().to_owned())
            .collect();
        assert!(!names.contains(&"old".to_owned()), "{names:?}");
        // Now "a" and "c" have members: nothing can go.
        assert_eq!(post(&engine, "d").map(|_| ()), Err(EngineError::ServerBusy));
        assert_eq!(
            join(&engine, 3, "e", None).map(|_| ()),
            Err(EngineError::ServerBusy)
        );
    }

    /// The offsets of the entries of a `history` page.
    fn offsets(page: &HistoryPage) -> Vec<u64> {
        page.entries
            .iter()
            .filter_map(|e| serde_json::from_str::<protocol::ChatMessage>(e).ok())
            .map(|m| m.offset)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn history_pages_go_back_from_an_offset_and_say_when_older_ones_are_kept() {
        let engine = MemoryEngine::new(&Settings {
            history_size: 5,
            join_history: 2,
            ..Settings::default()
        });
        let (epoch, _, _) = join(&engine, 1, "r", None).unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..7 {
            assert!(post(&engine, "r").is_ok());
        }
        // Kept: 3 to 7.
        let r = room("r");
        let page = engine.history(&r, 6, 2);
        assert_eq!((offsets(&page), page.has_earlier), (vec![4, 5], true));
        assert_eq!(page.epoch, epoch);
        let page = engine.history(&r, 4, 10);
        assert_eq!((offsets(&page), page.has_earlier), (vec![3], false));
        let page = engine.history(&r, 6, 3);
        assert_eq!((offsets(&page), page.has_earlier), (vec![3, 4, 5], false));
        let page = engine.history(&r, u64::MAX, 100);
        assert_eq!(offsets(&page), [3, 4, 5, 6, 7]);
        let page = engine.history(&r, 3, 1);
        assert_eq!((offsets(&page), page.has_earlier), (vec![], false));
        let page = engine.history(&r, 0, 1);
        assert_eq!((offsets(&page), page.has_earlier), (vec![], false));
        // A room this engine does not hold keeps nothing, under an epoch
        // of its own.
        let page = engine.history(&room("elsewhere"), 9, 5);
        assert!(page.entries.is_empty() && !page.has_earlier);
        assert_ne!(page.epoch, epoch);
    }

    #[test]
    fn a_join_gets_the_latest_join_history_entries_or_everything_it_missed() {
        let engine = MemoryEngine::new(&Settings {
            history_size: 5,
            join_history: 2,
            ..Settings::default()
        });
        let (c, mut rx) = conn(1);
        let (r, n, u) = (room("r"), name("Ada"), user());
        let joined = |rx: &mut OutboxReader| match rx.try_recv() {
            Some(Message::Text(text)) => match serde_json::from_str(&text) {
                Ok(ServerMessage::Joined {
                    history,
                    has_earlier,
                    epoch,
                    ..
                }) => (
                    history.iter().map(|m| m.offset).collect::<Vec<_>>(),
                    has_earlier,
                    epoch,
                ),
                other => panic!("expected joined, got {other:?}"),
            },
            other => panic!("expected a frame, got {other:?}"),
        };
        fn join<'a>(
            c: &'a Connection,
            (r, n, u): (&'a RoomName, &'a DisplayName, &'a protocol::UserId),
            since: Option<&'a Position>,
        ) -> Join<'a> {
            Join {
                conn: c,
                room: r,
                user: u,
                name: n,
                since,
                reference: None,
            }
        }
        assert!(engine.join(join(&c, (&r, &n, &u), None)).is_ok());
        let (_, has_earlier, epoch) = joined(&mut rx);
        assert!(!has_earlier, "an empty room keeps nothing");
        for _ in 0..7 {
            assert!(post(&engine, "r").is_ok());
            let _ = rx.try_recv();
        }
        assert!(engine.join(join(&c, (&r, &n, &u), None)).is_ok());
        let (offsets, has_earlier, _) = joined(&mut rx);
        assert_eq!((offsets, has_earlier), (vec![6, 7], true));
        let at = |offset| Position {
            epoch: epoch.clone(),
            offset,
        };
        assert!(engine.join(join(&c, (&r, &n, &u), Some(&at(2)))).is_ok());
        let (offsets, has_earlier, _) = joined(&mut rx);
        assert_eq!((offsets, has_earlier), (vec![3, 4, 5, 6, 7], false));
        assert!(engine.join(join(&c, (&r, &n, &u), Some(&at(7)))).is_ok());
        let (offsets, has_earlier, _) = joined(&mut rx);
        assert_eq!((offsets, has_earlier), (vec![], true));
    }

    #[tokio::test(start_paused = true)]
    async fn eviction_takes_the_longest_idle_room_and_skips_rooms_busy_again() {
        let engine = engine(3);
        // "busy" went idle first, then got a member: its idle record is stale.
        assert!(post(&engine, "busy").is_ok());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(post(&engine, "older").is_ok());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(post(&engine, "newer").is_ok());
        assert!(join(&engine, 1, "busy", None).is_ok());

        assert!(join(&engine, 2, "fresh", None).is_ok());
        let mut names: Vec<String> = engine
            .rooms()
            .map
            .keys()
            .map(|r| r.as_str().to_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["busy", "fresh", "newer"]);
    }
}
