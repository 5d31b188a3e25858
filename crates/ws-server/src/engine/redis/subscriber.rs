//! The instance's one Redis pub/sub connection: subscribes to the channel
//! of every room that has members here, hands each event to its room's
//! task, and reconnects when the connection drops.
//!
//! Subscriptions go through this task in the order they were asked for, so
//! a room that closes (unsubscribe) and opens again (subscribe) at once
//! ends subscribed. After a reconnect every room is subscribed again and
//! told to resync: whatever was published while the connection was down is
//! read back from the room's log, so no member misses a message.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use log::{debug, info, warn};
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::Inner;
use super::room::Command;
use super::store::{Event, RoomKeys};

/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often the idle pub/sub connection is pinged. Nothing else would
/// notice a connection that a NAT or a frozen Redis left half open: the
/// instance would silently stop hearing other instances' messages.
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// How long a subscription change or a ping may take before the connection
/// counts as lost (and is made again, with every room resynced).
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// A change of subscriptions.
#[derive(Debug)]
pub(super) enum Request {
    /// Subscribe to a channel; answered once Redis confirmed it.
    Subscribe {
        channel: String,
        done: oneshot::Sender<redis::RedisResult<()>>,
    },
    /// Unsubscribe from a channel.
    Unsubscribe { channel: String },
}

/// Runs until `shutdown`, connected whenever Redis can be reached.
pub(super) async fn run(
    inner: Arc<Inner>,
    client: redis::Client,
    mut requests: mpsc::UnboundedReceiver<Request>,
    shutdown: CancellationToken,
) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let connected = tokio::select! {
            () = shutdown.cancelled() => return,
            // A Redis that accepts and never answers must not stall the
            // connect: joins wait on it.
            connected = tokio::time::timeout(REPLY_TIMEOUT, client.get_async_pubsub()) => {
                connected.unwrap_or_else(|_| {
                    Err(redis::RedisError::from((redis::ErrorKind::Io, "connect: no reply")))
                })
            }
        };
        let (sink, stream) = match connected {
            Ok(pubsub) => pubsub.split(),
            Err(e) => {
                mark_degraded(&inner, &format!("cannot reach Redis: {e}"));
                // Nobody can subscribe while Redis is away: refuse at once.
                let wait = tokio::time::sleep(backoff);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = &mut wait => break,
                        Some(request) = requests.recv() => refuse(request),
                    }
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = FIRST_BACKOFF;
        match serve(&inner, sink, stream, &mut requests, &shutdown).await {
            Served::Shutdown => return,
            Served::Lost(reason) => mark_degraded(&inner, &reason),
        }
    }
}

enum Served {
    Shutdown,
    Lost(String),
}

async fn serve(
    inner: &Arc<Inner>,
    mut sink: PubSubSink,
    mut stream: PubSubStream,
    requests: &mut mpsc::UnboundedReceiver<Request>,
    shutdown: &CancellationToken,
) -> Served {
    // Every room with members here, subscribed again; then each reads back
    // what it may have missed.
    let rooms = inner.room_names();
    let channels: Vec<String> = rooms.iter().map(|r| RoomKeys::new(r).channel).collect();
    if !channels.is_empty()
        && let Err(e) = within(shutdown, sink.subscribe(&channels)).await
    {
        return e.served("cannot resubscribe");
    }
    if inner.degraded.swap(false, Ordering::Relaxed) {
        info!(
            "redis engine: connected again; {} rooms resync",
            rooms.len()
        );
    } else {
        debug!("redis engine: pub/sub connected");
    }
    for room in &rooms {
        inner.command(room, Command::Resync);
    }
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Served::Shutdown,
            _ = ping.tick() => {
                if let Err(e) = within(shutdown, sink.ping::<redis::Value>()).await {
                    return e.served("ping");
                }
            }
            message = stream.next() => {
                let Some(message) = message else {
                    return Served::Lost("pub/sub connection lost".to_owned());
                };
                dispatch(inner, &message);
            }
            Some(request) = requests.recv() => match request {
                // Its room stopped waiting (and will not unsubscribe).
                Request::Subscribe { done, .. } if done.is_closed() => {}
                Request::Subscribe { channel, done } => {
                    match within(shutdown, sink.subscribe(&channel)).await {
                        Ok(()) => {
                            let _ = done.send(Ok(()));
                        }
                        Err(e) => {
                            let _ = done.send(Err(e.to_redis()));
                            return e.served("subscribe");
                        }
                    }
                }
                Request::Unsubscribe { channel } => {
                    if let Err(e) = within(shutdown, sink.unsubscribe(&channel)).await {
                        return e.served("unsubscribe");
                    }
                }
            },
        }
    }
}

/// Why a call on the pub/sub connection did not succeed.
enum Failed {
    Shutdown,
    TimedOut,
    Redis(redis::RedisError),
}

impl Failed {
    fn served(self, what: &str) -> Served {
        match self {
            Self::Shutdown => Served::Shutdown,
            Self::TimedOut => Served::Lost(format!("{what}: no reply within {REPLY_TIMEOUT:?}")),
            Self::Redis(e) => Served::Lost(format!("{what}: {e}")),
        }
    }

    fn to_redis(&self) -> redis::RedisError {
        match self {
            Self::Redis(e) => e.clone(),
            _ => redis::RedisError::from((redis::ErrorKind::Io, "no reply from Redis")),
        }
    }
}

/// Runs `call` for at most [`REPLY_TIMEOUT`], and not past `shutdown`.
async fn within<T>(
    shutdown: &CancellationToken,
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, Failed> {
    tokio::select! {
        () = shutdown.cancelled() => Err(Failed::Shutdown),
        result = tokio::time::timeout(REPLY_TIMEOUT, call) => match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(Failed::Redis(e)),
            Err(_) => Err(Failed::TimedOut),
        },
    }
}

fn refuse(request: Request) {
    if let Request::Subscribe { done, .. } = request {
        let _ = done.send(Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "Redis is unreachable",
        ))));
    }
}

fn mark_degraded(inner: &Inner, reason: &str) {
    if !inner.degraded.swap(true, Ordering::Relaxed) {
        warn!(
            "redis engine degraded: {reason}; members here miss live messages until the \
             pub/sub connection is back, then get them from the log"
        );
    }
}

/// Hands one published event to its room's task.
fn dispatch(inner: &Inner, message: &redis::Msg) {
    let Some(room) = RoomKeys::room_of(message.get_channel_name()) else {
        return;
    };
    let Ok(payload) = std::str::from_utf8(message.get_payload_bytes()) else {
        return;
    };
    match Event::parse(payload) {
        Some(event) => inner.deliver(&room, event),
        None => warn!(
            "redis engine: unreadable event on {}",
            message.get_channel_name()
        ),
    }
}
