//! The log an operator reads: one line per connection event, each naming
//! the connection and its peer; refusals with their reason; joins and
//! leaves at debug level.

mod common;

use std::sync::Mutex;

use common::{Client, start_server};
use log::{LevelFilter, Log, Metadata, Record};
use tokio::sync::Notify;

/// Every line the server logs in this test binary (one test: the logger
/// is global).
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Told of every new line, so that a test awaits the line it expects.
static LOGGED: Notify = Notify::const_new();

struct Capture;

impl Log for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("ws_server")
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata())
            && let Ok(mut lines) = LINES.lock()
        {
            lines.push(format!("{} {}", record.level(), record.args()));
            LOGGED.notify_waiters();
        }
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

/// Waits until a logged line contains every one of `parts`, and returns it.
async fn line_with(parts: &[&str]) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        // Registered before the check, so that no line slips in between.
        let logged = LOGGED.notified();
        tokio::pin!(logged);
        logged.as_mut().enable();
        let lines = LINES.lock().map(|l| l.clone()).unwrap_or_default();
        if let Some(line) = lines.iter().find(|l| parts.iter().all(|p| l.contains(p))) {
            return line.clone();
        }
        assert!(
            tokio::time::timeout_at(deadline, logged).await.is_ok(),
            "no line with {parts:?} in {lines:#?}"
        );
    }
}

#[tokio::test]
async fn each_lifecycle_event_is_one_line_naming_the_connection() {
    log::set_logger(&CAPTURE).unwrap_or_else(|e| panic!("{e}"));
    log::set_max_level(LevelFilter::Debug);
    let server = start_server().await;

    let mut ada = Client::connect_as(&server, "Ada").await;
    let id = ada.connection_id.to_string();
    let _ = ada.join("lobby").await;
    ada.leave("lobby").await;
    ada.ws.close(None).await.unwrap_or_else(|e| panic!("{e}"));
    let _ = ada.recv_close().await;

    let opened = line_with(&["INFO", &format!("connection {id} opened from 127.0.0.1:")]).await;
    assert!(
        opened.contains("(origin http://localhost:5001)"),
        "{opened}"
    );
    line_with(&[
        "DEBUG",
        &format!("connection {id} joined lobby as Ada (user u"),
    ])
    .await;
    line_with(&["DEBUG", &format!("connection {id} left lobby")]).await;
    line_with(&[
        "INFO",
        &format!("connection {id} from 127.0.0.1:"),
        "closed: client closed",
    ])
    .await;

    // A refusal says who was refused and why.
    let refused = tokio_tungstenite::connect_async(common::request(
        &server.url(),
        Some("http://evil.example"),
        None,
    ))
    .await;
    assert!(refused.is_err());
    line_with(&["WARN", "handshake from 127.0.0.1:", "refused with 403"]).await;
}
