//! Who is connected: each client's bounded outbox, spread over shards.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc::Sender;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Shards of the registry. No lock covers every client: a join or leave
/// locks one shard, and a broadcast holds one shard at a time, so each
/// critical section is short and, should the runtime ever get more threads,
/// joins and broadcasts rarely meet on the same lock.
const SHARDS: usize = 16;

/// One connected client, as the registry sees it.
struct Member {
    id: u64,
    outbox: Sender<Message>,
    /// Never sent on: dropping it, whatever removed the member, tells the
    /// connection it is out. Its writer may be stuck on a full socket and
    /// would never notice the outbox closing.
    _removed: oneshot::Sender<()>,
}

type Shard = Vec<Member>;

/// A cheap handle to the set of connected clients.
///
/// Invariant: the registry holds the only [`Sender`] of each outbox, so
/// removing a client (or [`Registry::clear`]) is what ends its writer.
#[derive(Clone)]
pub(crate) struct Registry {
    shards: Arc<[Mutex<Shard>; SHARDS]>,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Self {
            shards: Arc::new(std::array::from_fn(|_| Mutex::default())),
        }
    }

    /// Adds a client; the receiver completes once it is removed, by
    /// [`Registry::remove`], for being too slow, or by [`Registry::clear`].
    pub(crate) fn insert(&self, id: u64, outbox: Sender<Message>) -> oneshot::Receiver<()> {
        let (removed, on_removal) = oneshot::channel();
        self.shard(id).push(Member {
            id,
            outbox,
            _removed: removed,
        });
        on_removal
    }

    pub(crate) fn remove(&self, id: u64) {
        let mut shard = self.shard(id);
        if let Some(at) = shard.iter().position(|member| member.id == id) {
            shard.swap_remove(at);
        }
    }

    /// Queues `text` for every client. The payload is shared, not copied: a
    /// `Utf8Bytes` clone is a reference count.
    ///
    /// A client whose outbox is full is removed, which closes its connection:
    /// it fell too far behind, and waiting for it would slow everyone.
    /// `try_send` never waits, so holding the shard's lock across it is fine.
    pub(crate) fn broadcast(&self, text: &Utf8Bytes) {
        for shard in self.shards.iter() {
            // Full (too slow) or closed (leaving): either way, out.
            lock(shard)
                .retain(|member| member.outbox.try_send(Message::Text(text.clone())).is_ok());
        }
    }

    /// Removes every client, so every writer closes its socket.
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            lock(shard).clear();
        }
    }

    fn shard(&self, id: u64) -> MutexGuard<'_, Shard> {
        // The remainder is below SHARDS, so it fits any usize and indexes in bounds.
        lock(&self.shards[(id % SHARDS as u64) as usize])
    }
}

/// Nothing panics while holding a shard's lock, so a poisoned shard is whole.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}
