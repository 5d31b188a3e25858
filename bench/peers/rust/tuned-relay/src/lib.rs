//! The upper anchor of Duplex's benchmarks: a minimal broadcast relay written
//! as well as tokio-tungstenite allows. Each tuning choice says why; the
//! relay semantics are those of every peer (see `bench/peers/README.md`).

mod registry;

use std::future::Future;
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::task::TaskTracker;

use registry::Registry;

/// Frames a client may have queued before it counts as too slow and is
/// dropped. Bounds the memory one stalled reader can pin, and keeps a
/// broadcast from ever waiting on anyone.
const OUTBOX_CAPACITY: usize = 1024;

/// Read buffer per connection. The default (128 KiB) suits bulk transfer;
/// chat frames are small, and with thousands of sockets the default would be
/// most of the process's memory.
const READ_BUFFER_SIZE: usize = 4 * 1024;

/// Encoded frames gather in the write buffer until it holds this much, then
/// go out in one write; a flush sends whatever is left. Big enough that a
/// batch of small frames costs one syscall, small enough to bound the memory
/// of each connection (the default is 128 KiB).
const WRITE_BUFFER_SIZE: usize = 16 * 1024;

/// Largest message accepted from a client. Chat lines are far smaller; the
/// library default (64 MiB) would let one client make every outbox hold that
/// much, and would leave the write buffer bound below meaningless.
const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Hard cap on the write buffer: one threshold's worth plus one frame, which
/// is all that feeding after `poll_ready` can ever add, plus room for frame
/// headers and a control frame.
const MAX_WRITE_BUFFER_SIZE: usize = WRITE_BUFFER_SIZE + MAX_MESSAGE_SIZE + 1024;

/// How long a leaving client's writer may take to send what is queued and
/// the close frame. A client dropped for being slow may never read them.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How long shutdown waits for connections to close before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts WebSocket clients on `listener` and relays every text message to
/// every client, the sender included, until `shutdown` completes; then closes
/// every connection and waits for them, at most [`SHUTDOWN_GRACE`].
pub async fn run(listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let registry = Registry::new();
    let tracker = TaskTracker::new();
    tokio::select! {
        () = accept_loop(listener, &registry, &tracker) => {}
        () = shutdown => {}
    }
    tracker.close();
    registry.clear();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await;
}

async fn accept_loop(listener: TcpListener, registry: &Registry, tracker: &TaskTracker) {
    let mut next_id: u64 = 0;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                next_id += 1;
                tracker.spawn(serve(stream, next_id, registry.clone(), tracker.clone()));
            }
            Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
        }
    }
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        .write_buffer_size(WRITE_BUFFER_SIZE)
        .max_write_buffer_size(MAX_WRITE_BUFFER_SIZE)
        .max_message_size(Some(MAX_MESSAGE_SIZE))
        .max_frame_size(Some(MAX_MESSAGE_SIZE))
}

/// One client: this task reads and broadcasts; a writer task owns the sink.
async fn serve(stream: TcpStream, id: u64, registry: Registry, tracker: TaskTracker) {
    // Frames go out in batches we flush ourselves; Nagle would only hold the
    // tail of a batch back waiting for an ACK.
    let _ = stream.set_nodelay(true);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(ws_config())).await
    else {
        return;
    };
    let (sink, mut source) = ws.split();
    let (outbox, queued) = mpsc::channel(OUTBOX_CAPACITY);
    let mut removed = registry.insert(id, outbox);
    let mut writer = tracker.spawn(write_loop(sink, queued));

    loop {
        tokio::select! {
            frame = source.next() => match frame {
                Some(Ok(Message::Text(text))) => registry.broadcast(&text),
                // tungstenite answers pings itself; only text is relayed.
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            // Dropped for being slow, or shutting down: stop relaying at once.
            _ = &mut removed => break,
            // The socket failed under the writer; reading it is pointless.
            _ = &mut writer => break,
        }
    }
    // Removing the outbox's only sender lets the writer drain and close. A
    // writer stuck on a client that stopped reading is cut off instead.
    registry.remove(id);
    if !writer.is_finished()
        && tokio::time::timeout(CLOSE_TIMEOUT, &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
}

/// Drains the outbox into the socket: takes every queued frame, feeds them
/// all, and flushes once per batch, so a burst costs one write, not one each.
async fn write_loop(
    mut sink: SplitSink<WebSocketStream<TcpStream>, Message>,
    mut queued: mpsc::Receiver<Message>,
) {
    let mut batch = Vec::with_capacity(OUTBOX_CAPACITY);
    while queued.recv_many(&mut batch, OUTBOX_CAPACITY).await > 0 {
        for frame in batch.drain(..) {
            if sink.feed(frame).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}
