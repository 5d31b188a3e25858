//! The relay contract every peer shares: a text message from one client
//! reaches every connected client, the sender included.

// A panic in a test is a failed test with a clear message, helpers included.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Reads until the text `want`, skipping other clients' earlier messages.
async fn receive(client: &mut Client, want: &str) {
    let read = async {
        while let Some(frame) = client.next().await {
            if let Message::Text(text) = frame.unwrap()
                && text.as_str() == want
            {
                return;
            }
        }
        panic!("connection ended before {want:?} arrived");
    };
    tokio::time::timeout(TIMEOUT, read).await.unwrap();
}

#[tokio::test]
async fn a_text_message_reaches_all_three_clients_including_its_sender() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(naive_relay::run(listener, async {
        let _ = stopped.await;
    }));

    let mut clients = Vec::new();
    for i in 0..3 {
        let (mut client, _) = connect_async(&url).await.unwrap();
        // Hearing its own greeting proves the relay has registered it.
        let hello = format!("joined {i}");
        client.send(Message::text(hello.clone())).await.unwrap();
        receive(&mut client, &hello).await;
        clients.push(client);
    }

    clients[0].send(Message::text("hello, all")).await.unwrap();
    for client in &mut clients {
        receive(client, "hello, all").await;
    }

    stop.send(()).unwrap();
    tokio::time::timeout(TIMEOUT, server)
        .await
        .unwrap()
        .unwrap();
}
