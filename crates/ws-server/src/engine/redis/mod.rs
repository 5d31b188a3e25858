//! The Redis engine: any number of instances pointed at one Redis act as
//! one server.
//!
//! Redis holds what all instances share: each room's epoch, its offset
//! counter, its log (the history, a stream trimmed to `history_size`) and
//! who is present ([`store`]). A post is one script that assigns the
//! offset, appends to the log and publishes on the room's channel. Each
//! instance subscribes, over one pub/sub connection ([`subscriber`]), to
//! the rooms that have members here, and runs one task per such room
//! ([`room`]) that delivers the room's events to its local members in
//! offset order: an event ahead of the next expected offset is preceded by
//! the missing ones read from the log, one at or behind it is dropped, so
//! members see neither a gap nor a duplicate, whatever the pub/sub
//! connection lost.

mod room;
mod store;
mod subscriber;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use log::info;
use protocol::RoomName;
use protocol::encoded;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::room::{Command, RoomHandle};
use self::store::{Event, Lifetimes, RoomKeys, Store};
use self::subscriber::Request;
use super::{Draft, EngineError, HistoryPage, Join, Page, Stored};
use crate::component::ConnectionId;
use crate::settings::Settings;

/// How long one Redis command may take before it counts as failed: a post
/// is refused with `engine_unavailable` rather than left hanging.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an acknowledged post waits for its own copy to come back
/// through the room's task before the ack goes anyway: only a room that is
/// behind (being resynced) takes this long.
const ACK_WAIT: Duration = Duration::from_secs(2);
/// How long connecting to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the health probe's PING may take before Redis counts as
/// unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Rooms in Redis; a cheap clonable handle.
#[derive(Debug, Clone)]
pub struct RedisEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    /// The rooms with members on this instance, each served by its task.
    /// Locked only to find, add or remove a room and to queue a command
    /// for it; a room task removes itself under this lock, and only when
    /// no command is queued, so a command never reaches a task that left.
    rooms: Mutex<HashMap<RoomName, RoomHandle>>,
    /// Subscription changes for the pub/sub task.
    subscriptions: mpsc::UnboundedSender<Request>,
    /// Set while the pub/sub connection is down.
    degraded: AtomicBool,
    max_rooms: usize,
    /// How often a room task renews its presence entries: a third of
    /// `presence_ttl`, so one late refresh does not expire them.
    refresh: Duration,
    /// Where room tasks run.
    tracker: TaskTracker,
    /// Stops room tasks and the pub/sub task.
    shutdown: CancellationToken,
}

impl Inner {
    fn rooms(&self) -> MutexGuard<'_, HashMap<RoomName, RoomHandle>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn room_names(&self) -> Vec<RoomName> {
        self.rooms().keys().cloned().collect()
    }

    /// Queues `command` for `room`'s task, if the room has one.
    fn command(&self, room: &RoomName, command: Command) {
        if let Some(handle) = self.rooms().get(room) {
            let _ = handle.commands.send(command);
        }
    }

    /// Hands a published event to `room`'s task. A task too far behind to
    /// take it loses it and reads it back from the log instead.
    fn deliver(&self, room: &RoomName, event: Event) {
        let rooms = self.rooms();
        if let Some(handle) = rooms.get(room) {
            handle.deliver(event);
        }
    }
}

impl RedisEngine {
    /// Starts the engine: the pub/sub task runs on `tracker` until
    /// `shutdown`; connections to Redis are made, and remade, in the
    /// background, so the server starts (degraded) even while Redis is
    /// down.
    ///
    /// # Errors
    /// [`EngineError::Unavailable`] when `settings.redis_url` is not a Redis
    /// URL (settings validation refuses those first).
    pub fn start(
        settings: &Settings,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<Self, EngineError> {
        let unavailable = |e: redis::RedisError| EngineError::Unavailable(e.to_string());
        let client = redis::Client::open(settings.redis_url.as_str()).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1);
        let conn =
            ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(unavailable)?;
        let instance = uuid::Uuid::now_v7().simple().to_string();
        info!(
            "redis engine: instance {instance} using {}",
            settings.redis_url_for_log()
        );
        let store = Store::new(
            conn,
            instance,
            settings.history_size,
            settings.join_history,
            Lifetimes {
                room_idle_ttl: settings.room_idle_ttl,
                presence_ttl: settings.presence_ttl,
            },
        );
        let (subscriptions, requests) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            store,
            rooms: Mutex::new(HashMap::new()),
            subscriptions,
            degraded: AtomicBool::new(false),
            max_rooms: settings.max_rooms,
            refresh: settings.presence_ttl / 3,
            tracker: tracker.clone(),
            shutdown: shutdown.clone(),
        });
        tracker.spawn(subscriber::run(
            Arc::clone(&inner),
            client,
            requests,
            shutdown.clone(),
        ));
        Ok(Self { inner })
    }

    /// See [`super::Engine::join`].
    ///
    /// # Errors
    /// [`EngineError::ServerBusy`] when the room would be one too many here;
    /// [`EngineError::Unavailable`] when Redis cannot be reached.
    pub async fn join(&self, join: Join<'_>) -> Result<(), EngineError> {
        let (done, answer) = oneshot::channel();
        let command = Command::Join {
            conn: join.conn.clone(),
            user: join.user.clone(),
            name: join.name.clone(),
            since: join.since.cloned(),
            reference: join.reference,
            asked: tokio::time::Instant::now(),
            done,
        };
        {
            let mut rooms = self.inner.rooms();
            if !rooms.contains_key(join.room) && rooms.len() >= self.inner.max_rooms {
                return Err(EngineError::ServerBusy);
            }
            let handle = rooms
                .entry(join.room.clone())
                .or_insert_with(|| room::spawn(&self.inner, join.room.clone()));
            let _ = handle.commands.send(command);
        }
        answer
            .await
            .unwrap_or_else(|_| Err(EngineError::Unavailable("room task ended".to_owned())))
    }

    /// See [`super::Engine::leave`].
    pub async fn leave(&self, conn: ConnectionId, room: &RoomName) {
        let (done, answer) = oneshot::channel();
        self.inner.command(room, Command::Leave { conn, done });
        let _ = answer.await;
    }

    /// See [`super::Engine::publish`].
    ///
    /// # Errors
    /// [`EngineError::Unavailable`] when Redis did not confirm the store.
    pub async fn publish(&self, draft: Draft) -> Result<Stored, EngineError> {
        // Only an acknowledged post waits for its own copy: an ack must
        // follow it, and a post without a `ref` gets no ack.
        let acked_post = !draft.announcement && draft.reference.is_some();
        let message = draft.into_message();
        let (prefix, suffix) = encoded::entry_around_offset(&message);
        let keys = RoomKeys::new(&message.room);
        // A member's post comes back through its room's task here; watch it.
        let mut delivered = acked_post
            .then(|| {
                let rooms = self.inner.rooms();
                rooms.get(&message.room).map(|h| h.delivered.clone())
            })
            .flatten();
        let (epoch, offset) = self
            .inner
            .store
            .publish(&keys, &prefix, &suffix)
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        if let Some(delivered) = &mut delivered {
            // The poster's own copy first, then its `ack`, in the epoch the
            // script stored it under (a room that Redis lost counts anew).
            let caught_up = |d: &Option<room::Cursor>| {
                d.as_ref()
                    .is_some_and(|c| c.epoch == epoch && c.offset >= offset)
            };
            let _ = tokio::time::timeout(ACK_WAIT, delivered.wait_for(caught_up)).await;
        }
        Ok(Stored {
            id: message.id,
            offset,
        })
    }

    /// See [`super::Engine::history`]: read from the log, up to the
    /// position the room's task here has delivered to its members.
    ///
    /// # Errors
    /// [`EngineError::Unavailable`] when Redis cannot be reached.
    pub async fn history(
        &self,
        room: &RoomName,
        before: u64,
        limit: usize,
    ) -> Result<HistoryPage, EngineError> {
        let delivered = self
            .inner
            .rooms()
            .get(room)
            .and_then(|handle| handle.delivered.borrow().clone());
        // What the members here were not sent yet reaches them live.
        let before = delivered
            .as_ref()
            .map_or(before, |cursor| before.min(cursor.offset.saturating_add(1)));
        let (epoch, entries, has_earlier) = self
            .inner
            .store
            .history(&RoomKeys::new(room), before, limit)
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        // Redis no longer holds the room: nothing of the epoch its members
        // know is kept. The room's task starts them over when it notices.
        let Some(epoch) = epoch.or(delivered.map(|cursor| cursor.epoch)) else {
            return Ok(HistoryPage::nothing());
        };
        Ok(HistoryPage {
            epoch,
            entries,
            has_earlier,
        })
    }

    /// Rooms with members here, each served by its task.
    #[must_use]
    pub fn room_count(&self) -> usize {
        self.inner.rooms().len()
    }

    /// See [`super::Engine::probe`]: a PING within [`PROBE_TIMEOUT`], and
    /// the pub/sub connection up.
    ///
    /// # Errors
    /// [`EngineError::Unavailable`] saying which of the two failed.
    pub async fn probe(&self) -> Result<Duration, EngineError> {
        let started = tokio::time::Instant::now();
        match tokio::time::timeout(PROBE_TIMEOUT, self.inner.store.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(EngineError::Unavailable(format!("redis: {e}"))),
            Err(_) => {
                return Err(EngineError::Unavailable(format!(
                    "redis: no answer to PING within {PROBE_TIMEOUT:?}"
                )));
            }
        }
        let round_trip = started.elapsed();
        if self.inner.degraded.load(Ordering::Relaxed) {
            return Err(EngineError::Unavailable(
                "redis: the pub/sub connection is down".to_owned(),
            ));
        }
        Ok(round_trip)
    }

    /// See [`super::Engine::rooms`].
    ///
    /// # Errors
    /// [`EngineError::Unavailable`] when Redis cannot be reached.
    pub async fn rooms(&self, after: Option<&RoomName>, limit: usize) -> Result<Page, EngineError> {
        self.inner
            .store
            .directory(after, limit)
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))
    }
}
