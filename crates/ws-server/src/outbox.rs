//! A connection's outbox: the frames queued for its writer task, bounded
//! in frames and in bytes.
//!
//! Every broadcast queues one frame per recipient, so this is the hottest
//! path of a fan-out. It is a `VecDeque` behind a mutex held for a push or
//! for taking the whole queue, plus a `Notify` rung only when the queue
//! goes from empty to not empty: a push costs one uncontended lock and
//! most pushes wake nothing, and the writer takes everything queued in one
//! step and writes it as one batch. A bounded tokio channel did the same
//! with a semaphore permit and a wake-up check per frame.
//!
//! Bytes count against the budget from the push until the writer takes
//! them. The batch the writer is writing is bounded too: it was at most a
//! full outbox when taken, and a write step that does not complete within
//! `write_timeout` closes the connection. Counting it against the queue as
//! well would refuse every frame behind one large `joined` until its last
//! byte reached the kernel: on a slow network, every joiner of a busy room
//! would be closed as slow. So one connection holds at most two outboxes'
//! worth (the queue and the batch, each `max_bytes` plus one frame) and
//! tungstenite's bounded write buffer.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// Why [`Outbox::push`] refused a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    /// The outbox holds as many frames or bytes as it may.
    Full,
    /// The writer is gone.
    Closed,
}

#[derive(Debug)]
struct Queue {
    frames: VecDeque<Message>,
    /// Bytes of `frames`.
    bytes: usize,
    /// Set when the writer is gone: nothing more will be taken.
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// Rung when the queue stops being empty, or closes.
    ready: Notify,
    capacity: usize,
    max_bytes: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The queueing side, held by the connection's handle.
#[derive(Debug, Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The taking side, owned by the connection's writer task. Dropping it
/// closes the outbox.
#[derive(Debug)]
pub struct OutboxReader {
    shared: Arc<Shared>,
}

/// An outbox of at most `capacity` frames, which takes no more frames once
/// it holds `max_bytes` bytes or more. The byte check looks at what is
/// queued, not at the frame offered: one large frame (a `joined` with a long
/// history) still goes in behind a few small ones, so an outbox holds at
/// most `max_bytes` plus one frame.
#[must_use]
pub fn outbox(capacity: usize, max_bytes: usize) -> (Outbox, OutboxReader) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            frames: VecDeque::new(),
            bytes: 0,
            closed: false,
        }),
        ready: Notify::new(),
        capacity: capacity.max(1),
        max_bytes,
    });
    (
        Outbox {
            shared: Arc::clone(&shared),
        },
        OutboxReader { shared },
    )
}

impl Outbox {
    /// Queues `message` without waiting.
    pub(crate) fn push(&self, message: Message) -> Result<(), PushError> {
        let size = message.len();
        let was_empty = {
            let mut queue = self.shared.lock();
            if queue.closed {
                return Err(PushError::Closed);
            }
            if queue.bytes >= self.shared.max_bytes || queue.frames.len() >= self.shared.capacity {
                return Err(PushError::Full);
            }
            queue.bytes += size;
            queue.frames.push_back(message);
            queue.frames.len() == 1
        };
        if was_empty {
            self.shared.ready.notify_one();
        }
        Ok(())
    }
}

impl OutboxReader {
    /// Waits until frames are queued and moves all of them into `batch`
    /// (which should be empty); `false` once the outbox is closed.
    pub async fn take(&mut self, batch: &mut VecDeque<Message>) -> bool {
        loop {
            {
                let mut queue = self.shared.lock();
                if !queue.frames.is_empty() {
                    // A swap, not a copy: the queue keeps the batch's spent
                    // buffer for the next frames.
                    std::mem::swap(&mut queue.frames, batch);
                    queue.bytes = 0;
                    return true;
                }
                if queue.closed {
                    return false;
                }
            }
            // A push between the check and here stores a permit, so no
            // wake-up is lost.
            self.shared.ready.notified().await;
        }
    }

    /// The next queued frame, if any, without waiting; for tests.
    #[must_use]
    pub fn try_recv(&mut self) -> Option<Message> {
        let mut queue = self.shared.lock();
        let message = queue.frames.pop_front()?;
        queue.bytes = queue.bytes.saturating_sub(message.len());
        Some(message)
    }
}

impl Drop for OutboxReader {
    fn drop(&mut self) {
        let mut queue = self.shared.lock();
        queue.closed = true;
        queue.frames.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(n: usize) -> Message {
        Message::text("x".repeat(n))
    }

    #[tokio::test]
    async fn the_writer_takes_everything_queued_at_once() {
        let (outbox, mut reader) = outbox(16, usize::MAX);
        for n in 1..=3 {
            assert_eq!(outbox.push(text(n)), Ok(()));
        }
        let mut batch = VecDeque::new();
        assert!(reader.take(&mut batch).await);
        assert_eq!(
            batch.iter().map(Message::len).collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }

    #[tokio::test]
    async fn a_waiting_writer_is_woken_by_a_push() {
        let (outbox, mut reader) = outbox(16, usize::MAX);
        let writer = tokio::spawn(async move {
            let mut batch = VecDeque::new();
            reader.take(&mut batch).await.then_some(batch.len())
        });
        tokio::task::yield_now().await;
        assert_eq!(outbox.push(text(1)), Ok(()));
        assert_eq!(writer.await.ok().flatten(), Some(1));
    }

    #[tokio::test]
    async fn frames_and_bytes_are_bounded_until_the_writer_takes_them() {
        let (outbox, mut reader) = outbox(3, 100);
        assert_eq!(outbox.push(text(60)), Ok(()));
        assert_eq!(outbox.push(text(60)), Ok(()), "60 queued: room left");
        assert_eq!(
            outbox.push(text(1)),
            Err(PushError::Full),
            "120 queued: full"
        );
        let mut batch = VecDeque::new();
        assert!(reader.take(&mut batch).await);
        for n in 1..=3 {
            assert_eq!(outbox.push(text(n)), Ok(()), "taken: room again");
        }
        assert_eq!(outbox.push(text(1)), Err(PushError::Full), "over 3 frames");
    }

    #[test]
    fn one_large_frame_goes_in_behind_small_ones() {
        let (outbox, _reader) = outbox(4, 100);
        assert_eq!(outbox.push(text(10)), Ok(()));
        assert_eq!(outbox.push(text(1000)), Ok(()));
        assert_eq!(outbox.push(text(1)), Err(PushError::Full));
    }

    #[tokio::test]
    async fn a_gone_writer_closes_the_outbox() {
        let (outbox, reader) = outbox(2, 100);
        drop(reader);
        assert_eq!(outbox.push(text(1)), Err(PushError::Closed));
    }
}
