//! A client that stops reading is dropped once its outbox is full, and
//! everyone else keeps receiving.

// A panic in a test is a failed test with a clear message, helpers included.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Near the relay's 64 KiB message limit, so few messages fill the outbox
/// (1024 frames) and the socket buffers in front of it.
const BIG: usize = 60 * 1024;

/// Enough to overflow the kernel's buffers and the outbox together.
const MESSAGES: usize = 1500;

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_the_rest_keep_receiving() {
    let started = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    tokio::spawn(tuned_relay::run(listener, std::future::pending()));

    let (mut stalled, _) = connect_async(&url).await.unwrap();
    let (sender, _) = connect_async(&url).await.unwrap();
    let (mut to_relay, mut from_relay) = sender.split();
    // The sender reads its own echoes meanwhile, so only `stalled` lags.
    let echoes = tokio::spawn(async move {
        let mut count = 0;
        while let Some(frame) = from_relay.next().await {
            if let Message::Text(text) = frame.unwrap() {
                count += 1;
                if text.as_str() == "last" {
                    return count;
                }
            }
        }
        panic!("the sender was dropped after {count} echoes");
    });

    let big = "x".repeat(BIG);
    for _ in 0..MESSAGES {
        to_relay.send(Message::text(big.clone())).await.unwrap();
    }
    to_relay.send(Message::text("last")).await.unwrap();
    let echoed = tokio::time::timeout(TIMEOUT, echoes)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echoed, MESSAGES + 1);

    // The stalled client finds its connection ended before "last".
    let mut received = 0;
    let read = async {
        while let Some(Ok(frame)) = stalled.next().await {
            if let Message::Text(text) = frame {
                assert_ne!(
                    text.as_str(),
                    "last",
                    "the stalled client was never dropped"
                );
                received += 1;
            }
        }
    };
    tokio::time::timeout(TIMEOUT, read).await.unwrap();
    assert!(received < MESSAGES, "received {received}");
    eprintln!(
        "stalled client got {received} of {MESSAGES} in {:?}",
        started.elapsed()
    );
}
