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
use tokio_util::sync::CancellationToken;

use super::Inner;
use super::room::Command;
use super::store::{Event, RoomKeys};

/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

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
            connected = client.get_async_pubsub() => connected,
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
        && let Err(e) = sink.subscribe(&channels).await
    {
        return Served::Lost(format!("cannot resubscribe: {e}"));
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
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Served::Shutdown,
            message = stream.next() => {
                let Some(message) = message else {
                    return Served::Lost("pub/sub connection lost".to_owned());
                };
                dispatch(inner, &message);
            }
            Some(request) = requests.recv() => match request {
                Request::Subscribe { channel, done } => {
                    let result = sink.subscribe(&channel).await;
                    let failed = result.is_err();
                    let _ = done.send(result);
                    if failed {
                        return Served::Lost("subscribe failed".to_owned());
                    }
                }
                Request::Unsubscribe { channel } => {
                    if sink.unsubscribe(&channel).await.is_err() {
                        return Served::Lost("unsubscribe failed".to_owned());
                    }
                }
            },
        }
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
        warn!("redis engine degraded: {reason}; posts are refused until Redis is back");
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
