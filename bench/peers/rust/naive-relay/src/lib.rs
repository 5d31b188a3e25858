//! The lower anchor of Duplex's benchmarks: the broadcast relay a newcomer
//! writes after reading the tokio-tungstenite examples. Library defaults, one
//! global lock, unbounded queues, one flush per message.
//!
//! Do not tune this file: its value is being the baseline. Only correctness
//! and the workspace lints may change it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_tungstenite::tungstenite::Message;

/// Every connected client's outbox, keyed by a connection id.
type Peers = Arc<Mutex<HashMap<u64, UnboundedSender<Message>>>>;

/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts WebSocket clients on `listener` and relays every text message to
/// every client, the sender included, until `shutdown` completes.
///
/// Connections still open then are dropped with the runtime.
pub async fn run(listener: TcpListener, shutdown: impl Future<Output = ()>) {
    tokio::select! {
        () = accept_loop(listener) => {}
        () = shutdown => {}
    }
}

async fn accept_loop(listener: TcpListener) {
    let peers = Peers::default();
    let mut next_id = 0;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                next_id += 1;
                tokio::spawn(handle_connection(stream, next_id, peers.clone()));
            }
            Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
        }
    }
}

async fn handle_connection(stream: TcpStream, id: u64, peers: Peers) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut write, mut read) = ws.split();
    let (tx, mut rx) = unbounded_channel();
    lock(&peers).insert(id, tx);

    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if write.send(msg).await.is_err() {
                break;
            }
        }
    });

    while let Some(Ok(msg)) = read.next().await {
        if msg.is_text() {
            for tx in lock(&peers).values() {
                let _ = tx.send(msg.clone());
            }
        }
    }

    // Dropping our sender ends the writer once it has sent what is queued.
    lock(&peers).remove(&id);
    let _ = writer.await;
}

/// No code panics while holding the lock, so a poisoned map is still whole.
fn lock(peers: &Peers) -> std::sync::MutexGuard<'_, HashMap<u64, UnboundedSender<Message>>> {
    peers.lock().unwrap_or_else(PoisonError::into_inner)
}
