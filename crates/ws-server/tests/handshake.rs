//! The HTTP phase: which upgrade requests are accepted, and how the others
//! are refused.

mod common;

use common::{ORIGIN, authorized_request as request, start_server, start_server_with};
use protocol::SUBPROTOCOL;
use tokio_tungstenite::tungstenite::{self, Error};

/// Attempts a handshake; returns the HTTP status of a refusal, or 101.
async fn status_of(req: tungstenite::handshake::client::Request) -> u16 {
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}

#[tokio::test]
async fn allowed_origins_are_accepted() {
    let server = start_server().await;
    for origin in ["http://localhost:5001", "http://127.0.0.1:5001"] {
        assert_eq!(
            status_of(request(&server.url(), Some(origin), None)).await,
            101
        );
    }
}

#[tokio::test]
async fn other_origins_get_403_with_a_reason() {
    let server = start_server().await;
    for origin in ["http://evil.example", "http://localhost:5002", "null"] {
        let req = request(&server.url(), Some(origin), None);
        match tokio_tungstenite::connect_async(req).await {
            Err(Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 403, "{origin}");
                let body = response.body().clone().unwrap_or_default();
                let body = String::from_utf8_lossy(&body);
                assert!(body.contains("not allowed"), "{body}");
            }
            other => panic!("{origin}: expected 403, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_allowlist_is_a_setting() {
    let server =
        start_server_with(|s| s.allowed_origins = vec!["https://chat.example".into()]).await;
    assert_eq!(
        status_of(request(&server.url(), Some(ORIGIN), None)).await,
        403
    );
    let ok = request(&server.url(), Some("https://chat.example"), None);
    assert_eq!(status_of(ok).await, 101);
}

#[tokio::test]
async fn clients_without_origin_are_accepted() {
    let server = start_server().await;
    assert_eq!(status_of(request(&server.url(), None, None)).await, 101);
}

#[tokio::test]
async fn other_paths_get_404() {
    let server = start_server().await;
    let url = format!("ws://{}/elsewhere", server.addr);
    assert_eq!(status_of(request(&url, Some(ORIGIN), None)).await, 404);
}

#[tokio::test]
async fn the_duplex_subprotocol_is_selected_when_offered() {
    let server = start_server().await;
    let offered = format!("chat, {SUBPROTOCOL}");
    let req = request(&server.url(), Some(ORIGIN), Some(&offered));
    let (_, response) = tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let selected = response.headers().get("Sec-WebSocket-Protocol");
    assert_eq!(selected.and_then(|v| v.to_str().ok()), Some(SUBPROTOCOL));
}

#[tokio::test]
async fn unknown_subprotocols_get_400() {
    let server = start_server().await;
    let req = request(&server.url(), Some(ORIGIN), Some("mqtt"));
    assert_eq!(status_of(req).await, 400);
}

#[tokio::test]
async fn a_refused_handshake_does_not_affect_the_server() {
    let server = start_server().await;
    assert_eq!(
        status_of(request(&server.url(), Some("http://evil.example"), None)).await,
        403
    );
    let mut ada = common::Client::joined(&server, "lobby", "Ada").await;
    ada.post_acked("lobby", "fine").await;
}
