//! A plain relay, as the peer servers are: every text frame any client
//! sends goes to every connected client, the sender included. No token,
//! no room.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

/// Frames a slow client may lag behind before it misses some.
const BACKLOG_FRAMES: usize = 65_536;

/// Starts a relay on a free loopback port; it runs until the test ends.
pub async fn start_relay() -> SocketAddr {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (all, _) = broadcast::channel::<Message>(BACKLOG_FRAMES);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let all = all.clone();
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let (mut sink, mut stream) = ws.split();
                let mut outbox = all.subscribe();
                let forward = tokio::spawn(async move {
                    while let Ok(frame) = outbox.recv().await {
                        if sink.send(frame).await.is_err() {
                            break;
                        }
                    }
                });
                while let Some(Ok(frame)) = stream.next().await {
                    if frame.is_text() {
                        let _ = all.send(frame);
                    }
                }
                forward.abort();
            });
        }
    });
    addr
}
