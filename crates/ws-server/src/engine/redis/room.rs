//! One task per room with members on this instance: it joins and leaves
//! members, and delivers the room's events to them in offset order.
//!
//! Everything about one room happens here, one step at a time: a join reads
//! its history up to the offset last delivered here (the cursor), then
//! becomes a member, so its history ends exactly where its live messages
//! begin. An event ahead of the cursor is preceded by the missing entries,
//! read from the log; an event at or behind it was delivered already. When
//! the log cannot fill a gap (trimmed, or the room's epoch changed because
//! its keys were lost), every member gets a fresh `joined` with
//! `recovered: false` instead: the protocol's way to say "start over from
//! here".

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use log::{debug, warn};
use protocol::encoded::{self, JoinedHead};
use protocol::{ClientRef, CloseCode, DisplayName, Epoch, Member, Position, RoomName, UserId};
use redis::RedisResult;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use super::store::{Event, RoomKeys};
use super::subscriber::Request;
use super::{COMMAND_TIMEOUT, Inner};
use crate::component::{Connection, ConnectionId};
use crate::engine::EngineError;
use crate::engine::local::{LocalRoom, NameConflict, presence_frame};

/// Events queued for one room task before it counts as lagging; beyond it
/// events are dropped and read back from the log.
const EVENT_QUEUE: usize = 1024;

/// What a room task is asked to do.
#[derive(Debug)]
pub(super) enum Command {
    /// Add a member and send it `joined`.
    Join {
        conn: Connection,
        user: UserId,
        name: DisplayName,
        since: Option<Position>,
        reference: Option<ClientRef>,
        /// When it was asked: a join queued too long is refused.
        asked: Instant,
        done: oneshot::Sender<Result<(), EngineError>>,
    },
    /// Remove a member.
    Leave {
        conn: ConnectionId,
        done: oneshot::Sender<()>,
    },
    /// Compare the cursor with Redis and catch up: after the pub/sub
    /// connection came back, or after events were dropped.
    Resync,
}

/// One thing a room task does at a time.
enum Step {
    Command(Command),
    Event(Event),
    Refresh,
}

/// The answer to a command, sent once the room has settled.
enum Answer {
    Join(
        oneshot::Sender<Result<(), EngineError>>,
        Result<(), EngineError>,
    ),
    Leave(oneshot::Sender<()>),
}

impl Answer {
    fn send(self) {
        match self {
            Self::Join(done, result) => {
                let _ = done.send(result);
            }
            Self::Leave(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// How the rest of the engine reaches a room task.
#[derive(Debug)]
pub(super) struct RoomHandle {
    /// Joins and leaves: one at a time per connection, so few.
    pub commands: mpsc::UnboundedSender<Command>,
    events: mpsc::Sender<Event>,
    /// Set when an event was dropped; cleared by a successful resync.
    lagging: Arc<AtomicBool>,
    /// The position last delivered to the room's members here, so that a
    /// poster's `ack` can follow its own copy of the message, as the
    /// protocol promises.
    pub delivered: watch::Receiver<Option<Cursor>>,
}

impl RoomHandle {
    /// Queues an event without waiting; a full queue marks the room as
    /// lagging and asks it to resync instead.
    pub fn deliver(&self, event: Event) {
        if self.events.try_send(event).is_err() && !self.lagging.swap(true, Ordering::Relaxed) {
            let _ = self.commands.send(Command::Resync);
        }
    }
}

/// Starts the task of `room` on the engine's tracker.
pub(super) fn spawn(inner: &Arc<Inner>, room: RoomName) -> RoomHandle {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (events, event_rx) = mpsc::channel(EVENT_QUEUE);
    let lagging = Arc::new(AtomicBool::new(false));
    let (delivered_tx, delivered) = watch::channel(None);
    let task = RoomTask {
        delivered: delivered_tx,
        last_live: 0,
        shutdown: inner.shutdown.clone(),
        keys: RoomKeys::new(&room),
        room,
        inner: Arc::clone(inner),
        members: LocalRoom::default(),
        subscribed: false,
        cursor: None,
        lagging: Arc::clone(&lagging),
        commands: command_rx,
        events: event_rx,
    };
    inner.tracker.spawn(task.run());
    RoomHandle {
        commands,
        events,
        lagging,
        delivered,
    }
}

/// The last position delivered to this instance's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cursor {
    pub epoch: Epoch,
    pub offset: u64,
}

struct RoomTask {
    room: RoomName,
    keys: RoomKeys,
    inner: Arc<Inner>,
    members: LocalRoom,
    subscribed: bool,
    /// `None` until the room is open (subscribed, then its epoch and offset
    /// read, in that order, so no event falls between the two).
    cursor: Option<Cursor>,
    lagging: Arc<AtomicBool>,
    delivered: watch::Sender<Option<Cursor>>,
    /// The highest offset delivered from a live event in the cursor's
    /// epoch (not read from the log): how a reused offset is recognized.
    last_live: u64,
    shutdown: CancellationToken,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Receiver<Event>,
}

impl RoomTask {
    /// Moves the cursor; the one place it changes.
    fn set_cursor(&mut self, epoch: Epoch, offset: u64) {
        if self.cursor.as_ref().is_none_or(|c| c.epoch != epoch) {
            // Late events of the new epoch may be at or below its start.
            self.last_live = 0;
        }
        // The epoch is copied only when it changes, not per message.
        self.delivered.send_modify(|delivered| match delivered {
            Some(cursor) if cursor.epoch == epoch => cursor.offset = offset,
            _ => {
                *delivered = Some(Cursor {
                    epoch: epoch.clone(),
                    offset,
                });
            }
        });
        self.cursor = Some(Cursor { epoch, offset });
    }

    async fn run(mut self) {
        let period = self.inner.refresh;
        let mut refresh = tokio::time::interval_at(Instant::now() + period, period);
        refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // On shutdown the task stops at once, even in the middle of a step
        // that waits on Redis: its members' presence lapses with
        // `presence_ttl` (so members who reconnect to another instance do
        // not flicker out and back), and a frozen Redis cannot hold up the
        // stop. Callers waiting on a dropped answer are told the room ended.
        let shutdown = self.shutdown.clone();
        loop {
            // In this order: a busy room's stream of events must not starve
            // its presence refresh (its members would expire elsewhere).
            let step = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(command) = self.commands.recv() => Step::Command(command),
                _ = refresh.tick() => Step::Refresh,
                Some(event) = self.events.recv() => Step::Event(event),
            };
            let answer = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                answer = self.take(step) => answer,
            };
            // A room left empty leaves the map before its last leave is
            // answered, so whoever hears `left` finds the room gone.
            let retired = self.members.is_empty() && self.retire();
            if let Some(answer) = answer {
                answer.send();
            }
            if retired {
                break;
            }
        }
    }

    async fn take(&mut self, step: Step) -> Option<Answer> {
        match step {
            Step::Command(command) => self.on_command(command).await,
            Step::Event(event) => {
                self.on_event(event).await;
                None
            }
            Step::Refresh => {
                self.refresh().await;
                None
            }
        }
    }

    /// Leaves the engine's map if nothing more is queued for this room.
    fn retire(&mut self) -> bool {
        let mut rooms = self.inner.rooms();
        if !self.commands.is_empty() {
            return false;
        }
        rooms.remove(&self.room);
        if self.subscribed {
            // Queued under the map lock: a task opened for this room from
            // now on subscribes after this.
            let _ = self.inner.subscriptions.send(Request::Unsubscribe {
                channel: self.keys.channel.clone(),
            });
        }
        true
    }

    async fn on_command(&mut self, command: Command) -> Option<Answer> {
        match command {
            Command::Join {
                conn,
                user,
                name,
                since,
                reference,
                asked,
                done,
            } => {
                // Joins queue behind one another; one that waited past the
                // timeout (Redis is slow or gone) is refused without trying,
                // so that a queue of them drains at once.
                let result = if asked.elapsed() > COMMAND_TIMEOUT {
                    Err(EngineError::Unavailable(
                        "the room is waiting on Redis".to_owned(),
                    ))
                } else {
                    let member = Member { user, name };
                    self.join(&conn, &member, since.as_ref(), reference).await
                };
                Some(Answer::Join(done, result))
            }
            Command::Leave { conn, done } => {
                if let Some(gone) = self.members.remove(conn)
                    && let Err(e) = self.inner.store.release(&self.keys, &gone.user).await
                {
                    // Its entry expires with the presence TTL instead.
                    debug!("room {}: cannot release {}: {e}", self.room, gone.user);
                }
                Some(Answer::Leave(done))
            }
            Command::Resync => {
                self.resync().await;
                None
            }
        }
    }

    /// Opens the room here (subscribed first, its position read second, so
    /// no event falls between them) or, when it is open, checks that Redis
    /// still holds it under the same epoch: a room that Redis lost starts
    /// over for its members before anyone else joins it.
    async fn open(&mut self) -> Result<Cursor, EngineError> {
        if !self.subscribed {
            let (done, answer) = oneshot::channel();
            let _ = self.inner.subscriptions.send(Request::Subscribe {
                channel: self.keys.channel.clone(),
                done,
            });
            match tokio::time::timeout(COMMAND_TIMEOUT, answer).await {
                Ok(Ok(Ok(()))) => self.subscribed = true,
                Ok(Ok(Err(e))) => return Err(unavailable(e)),
                Ok(Err(_)) => return Err(EngineError::Unavailable("shutting down".to_owned())),
                Err(_) => {
                    return Err(EngineError::Unavailable(
                        "no answer to the subscription".to_owned(),
                    ));
                }
            }
        }
        let (epoch, offset) = self
            .inner
            .store
            .open(&self.keys)
            .await
            .map_err(unavailable)?;
        let Some(cursor) = self.cursor.clone() else {
            self.set_cursor(epoch.clone(), offset);
            return Ok(Cursor { epoch, offset });
        };
        match (self.follow(&cursor, epoch, offset).await, &self.cursor) {
            (true, Some(now)) => Ok(now.clone()),
            _ => Err(EngineError::Unavailable(
                "the room could not catch up with Redis".to_owned(),
            )),
        }
    }

    async fn join(
        &mut self,
        conn: &Connection,
        member: &Member,
        since: Option<&Position>,
        reference: Option<ClientRef>,
    ) -> Result<(), EngineError> {
        // Refused here first when this instance alone shows the conflict.
        self.members.check(&member.user, &member.name)?;
        let cursor = self.open().await?;
        // The history first: reading changes nothing, so a failure leaves
        // no trace. Nothing moves the cursor until this join is done.
        let (entries, recovered, has_earlier) =
            self.history(&cursor, since).await.map_err(unavailable)?;
        let first_here = self.members.is_empty();
        let was_member = self.members.contains(conn.id());
        let appeared = self.members.insert(conn, &member.user, &member.name)?;
        let presence = match self.inner.store.hold(&self.keys, &appeared).await {
            Ok(presence) if !presence.refused.contains(&member.user) => presence,
            Ok(presence) => {
                // Redis refused the name: another instance has it.
                self.members.remove(conn.id());
                let conflict = match presence.members.iter().find(|m| m.user == member.user) {
                    Some(shown) => NameConflict::OtherName(shown.name.to_string()),
                    None => NameConflict::Taken(member.name.to_string()),
                };
                return Err(conflict.into());
            }
            Err(e) => {
                // Not a member after all.
                if !was_member {
                    self.members.remove(conn.id());
                }
                return Err(unavailable(e));
            }
        };
        if first_here && let Err(e) = self.inner.store.list_room(&self.room).await {
            // The next refresh lists it.
            debug!("room {}: cannot list it in the directory: {e}", self.room);
        }
        let head = JoinedHead {
            room: self.room.clone(),
            name: member.name.clone(),
            epoch: cursor.epoch,
            offset: cursor.offset,
            recovered,
            members: presence.members,
            has_earlier,
            reference,
        };
        self.members.saw_presence(conn.id(), presence.version);
        let _ = conn.send_text(head.encode(entries.iter().map(|(_, e)| e.as_str())).into());
        Ok(())
    }

    /// What a joiner at `since` should be shown, up to the cursor, whether
    /// it is exactly what it missed, and whether older entries are kept.
    async fn history(
        &self,
        cursor: &Cursor,
        since: Option<&Position>,
    ) -> RedisResult<(Vec<(u64, String)>, bool, bool)> {
        let store = &self.inner.store;
        if let Some(since) = since
            && since.epoch == cursor.epoch
            && since.offset <= cursor.offset
        {
            // Read from the entry at `since` itself: the log's offsets are
            // consecutive, so older entries are kept exactly when it is.
            let mut missed = store
                .range(&self.keys, since.offset.max(1), cursor.offset)
                .await?;
            let has_earlier =
                since.offset > 0 && missed.first().is_some_and(|e| e.0 == since.offset);
            if has_earlier {
                missed.remove(0);
            }
            if since.offset == cursor.offset || complete(&missed, since.offset + 1, cursor.offset) {
                return Ok((missed, true, has_earlier));
            }
        }
        let (latest, has_earlier) = store.latest(&self.keys, cursor.offset).await?;
        Ok((latest, false, has_earlier))
    }

    async fn on_event(&mut self, event: Event) {
        let Some(cursor) = self.cursor.clone() else {
            return; // not open yet: its open reads past this
        };
        if *event.epoch() != cursor.epoch {
            // Redis lost the room, or this is a late event of the epoch
            // before: Redis says which.
            self.resync().await;
            return;
        }
        match event {
            Event::Presence {
                version,
                member,
                present,
                ..
            } => {
                let frame = presence_frame(&self.room, &member, present);
                self.members
                    .broadcast_presence(&frame, &member.user, None, Some(version));
            }
            Event::Message {
                epoch,
                offset,
                entry,
            } => {
                if offset <= cursor.offset {
                    if offset <= self.last_live {
                        // Live events come once each, in offset order: an
                        // offset at or below one already heard live was
                        // handed out again. Redis went back in time.
                        self.rolled_back(&cursor).await;
                    }
                    return; // delivered already (read from the log)
                }
                if offset > cursor.offset + 1 && !self.catch_up(offset - 1).await {
                    return;
                }
                if self
                    .cursor
                    .as_ref()
                    .is_some_and(|c| c.epoch == epoch && c.offset + 1 == offset)
                {
                    self.members.broadcast(&frame(&entry));
                    self.set_cursor(epoch, offset);
                    self.last_live = offset;
                }
            }
        }
    }

    /// The room's data in Redis went back in time under `cursor`'s epoch:
    /// gives it a new epoch (once, whichever instance sees it first) and
    /// starts members over. Returns whether that worked.
    async fn rolled_back(&mut self, cursor: &Cursor) -> bool {
        warn!(
            "room {}: Redis went back in time (offsets reused)",
            self.room
        );
        match self
            .inner
            .store
            .renew_epoch(&self.keys, &cursor.epoch)
            .await
        {
            Ok(at) => self.restart(Some(at)).await,
            Err(e) => {
                self.lag(&e);
                false
            }
        }
    }

    /// Delivers the entries after the cursor up to `to` from the log.
    /// Returns whether the room is in step with Redis again: the cursor
    /// reached `to`, or members started over past it.
    async fn catch_up(&mut self, to: u64) -> bool {
        let Some(cursor) = self.cursor.clone() else {
            return false;
        };
        let from = cursor.offset + 1;
        match self.inner.store.range(&self.keys, from, to).await {
            Ok(entries) if complete(&entries, from, to) => {
                for (_, entry) in &entries {
                    self.members.broadcast(&frame(entry));
                }
                self.set_cursor(cursor.epoch, to);
                true
            }
            // Trimmed away: members cannot get exactly what they missed.
            Ok(_) => self.restart(None).await,
            Err(e) => {
                self.lag(&e);
                false
            }
        }
    }

    /// Compares the cursor with the room in Redis and catches up. The
    /// lagging flag is cleared first: an event dropped while this runs sets
    /// it again and queues another resync, so no tail is left behind.
    async fn resync(&mut self) {
        let Some(cursor) = self.cursor.clone() else {
            return;
        };
        self.lagging.store(false, Ordering::Relaxed);
        match self.inner.store.open(&self.keys).await {
            Ok((epoch, offset)) => {
                self.follow(&cursor, epoch, offset).await;
            }
            Err(e) => self.lag(&e),
        }
    }

    /// Brings the cursor to the room's position in Redis, `epoch` and
    /// `offset`: catches up within the epoch; starts members over when the
    /// epoch changed, or when Redis is behind the cursor in the same epoch
    /// (rolled back: an older snapshot, a lagging replica), which would
    /// otherwise reuse offsets members already have. The rolled-back room
    /// gets a new epoch first, once, whichever instance sees it. Returns
    /// whether the room is in step with Redis.
    async fn follow(&mut self, cursor: &Cursor, epoch: Epoch, offset: u64) -> bool {
        if epoch != cursor.epoch {
            self.restart(Some((epoch, offset))).await
        } else if offset < cursor.offset {
            self.rolled_back(cursor).await
        } else if offset > cursor.offset {
            self.catch_up(offset).await
        } else {
            true
        }
    }

    /// Starts every member over at the room's current position (or
    /// `at`): presence held again, and a fresh `joined` with the recent
    /// history and `recovered: false`.
    async fn restart(&mut self, at: Option<(Epoch, u64)>) -> bool {
        let store = &self.inner.store;
        let restarted = async {
            let (epoch, offset) = match at {
                Some(at) => at,
                None => store.open(&self.keys).await?,
            };
            let present = store.hold(&self.keys, &self.members.users()).await?;
            let latest = store.latest(&self.keys, offset).await?;
            Ok::<_, redis::RedisError>((epoch, offset, present, latest))
        }
        .await;
        let (epoch, offset, presence, (entries, has_earlier)) = match restarted {
            Ok(restarted) => restarted,
            Err(e) => {
                self.lag(&e);
                return false;
            }
        };
        self.evict(&presence.refused);
        warn!(
            "room {}: its stream restarted (epoch {epoch}); members start over at offset {offset}",
            self.room
        );
        for (conn, name) in self.members.connections() {
            let head = JoinedHead {
                room: self.room.clone(),
                name: name.clone(),
                epoch: epoch.clone(),
                offset,
                recovered: false,
                members: presence.members.clone(),
                has_earlier,
                reference: None,
            };
            let _ = conn.send_text(head.encode(entries.iter().map(|(_, e)| e.as_str())).into());
        }
        self.members.all_saw_presence(presence.version);
        self.set_cursor(epoch, offset);
        true
    }

    /// Renews this instance's presence in the room and its directory entry,
    /// and resyncs.
    async fn refresh(&mut self) {
        if self.members.is_empty() || self.cursor.is_none() {
            return;
        }
        let store = &self.inner.store;
        let renewed = async {
            let presence = store.hold(&self.keys, &self.members.users()).await?;
            store.list_room(&self.room).await?;
            Ok::<_, redis::RedisError>(presence)
        }
        .await;
        match renewed {
            Ok(presence) => self.evict(&presence.refused),
            Err(e) => debug!("room {}: cannot renew presence: {e}", self.room),
        }
        // Also the backstop for a quiet room: a message lost without a trace
        // (no later one to reveal the gap) is found here.
        self.resync().await;
    }

    /// Closes the connections of `refused` users: only after Redis lost the
    /// room can a user of another instance have claimed their name first,
    /// and two users must never show one name. Closing, rather than
    /// dropping them from this room alone, keeps every connection's own
    /// list of its rooms true; a client that reconnects is told
    /// `name_taken` by its join.
    fn evict(&mut self, refused: &[UserId]) {
        for user in refused {
            for conn in self.members.remove_user(user) {
                warn!(
                    "room {}: closing connection {}: its name went to another user after the room started over",
                    self.room,
                    conn.id()
                );
                conn.close(
                    CloseCode::NAME_LOST,
                    format!("your name in room {} went to another user", self.room),
                );
            }
        }
    }

    /// Marks the room behind Redis; the next refresh (or dropped event)
    /// resyncs it.
    fn lag(&self, error: &redis::RedisError) {
        if !self.lagging.swap(true, Ordering::Relaxed) {
            warn!("room {}: behind Redis, will catch up: {error}", self.room);
        }
    }
}

/// Whether `entries` are exactly the offsets `from..=to`.
fn complete(entries: &[(u64, String)], from: u64, to: u64) -> bool {
    entries.first().map(|e| e.0) == Some(from)
        && entries.last().map(|e| e.0) == Some(to)
        && u64::try_from(entries.len()).is_ok_and(|n| n == to - from + 1)
}

fn frame(entry: &str) -> Utf8Bytes {
    encoded::message_frame(entry).into()
}

fn unavailable(error: redis::RedisError) -> EngineError {
    EngineError::Unavailable(error.to_string())
}
