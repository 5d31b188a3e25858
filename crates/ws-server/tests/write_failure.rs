//! A write that fails reaches the component: `on_error` once, with the
//! write's error, then `on_close`, as `Component` promises.

mod transport;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use transport::{Event, Events, TEXT, open, read_frame, start_component, write_frame};
use ws_server::{Component, Connection, ConnectionError};

/// Answers `go` with `ready`, then waits inside `on_message`, so that the
/// server does not read the socket, until the test says `send`; then sends
/// until the connection closes. The reader cannot notice a reset socket
/// meanwhile: only the writer can.
#[derive(Debug, Clone, Default)]
struct SendOnCue {
    events: Events,
    cue: Arc<Notify>,
}

impl Component for SendOnCue {
    async fn on_open(&self, conn: &Connection) {
        self.events.push(Event::Open(conn.id()));
    }

    async fn on_message(&self, conn: &Connection, message: Message) {
        self.events.push(Event::Message(
            conn.id(),
            message.to_text().unwrap_or_default().to_owned(),
        ));
        let _ = conn.send(Message::text("ready"));
        self.cue.notified().await;
        // The first write after the reset may still be taken by the kernel;
        // the next ones fail.
        loop {
            let _ = conn.send(Message::text("x".repeat(1024)));
            tokio::select! {
                () = conn.closing() => return,
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }

    async fn on_close(&self, conn: &Connection) {
        self.events.push(Event::Close(conn.id()));
    }

    async fn on_error(&self, conn: &Connection, error: &ConnectionError) {
        let kind = match error {
            ConnectionError::Write(_) => "write",
            _ => "other",
        };
        self.events
            .push(Event::Error(conn.id(), format!("{kind}: {error}")));
    }
}

#[tokio::test]
async fn a_failed_write_reaches_on_error_once_before_on_close() {
    let component = SendOnCue::default();
    let (events, cue) = (component.events.clone(), Arc::clone(&component.cue));
    let server = start_component(component, |_| {}).await;
    let mut tcp = open(server.addr).await;
    write_frame(&mut tcp, TEXT, b"go").await;
    assert_eq!(read_frame(&mut tcp).await.payload, b"ready");
    // The client vanishes with a reset, as a crashed peer or a middlebox
    // that dropped the connection would.
    tcp.set_zero_linger().unwrap_or_else(|e| panic!("{e}"));
    drop(tcp);
    cue.notify_one();

    let events = events
        .wait_for(|e| e.iter().any(|e| matches!(e, Event::Close(_))))
        .await;
    let errors: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Error(_, error) => Some(error.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "{events:?}");
    assert!(errors[0].starts_with("write: "), "{events:?}");
    assert!(
        matches!(
            events[..],
            [
                Event::Open(_),
                Event::Message(..),
                Event::Error(..),
                Event::Close(_)
            ]
        ),
        "{events:?}"
    );
}
