//! Service connections: the app-server publishing into rooms and reading
//! the room directory.

mod common;

use common::{Client, Engine, request, start, start_server, start_server_with};
use protocol::ServerMessage;
use serde_json::json;
use tokio_tungstenite::tungstenite::{Error, http::HeaderValue};
use ws_server::settings::DEV_SERVICE_SECRET;

async fn handshake_status(server: &common::TestServer, authorization: &str) -> u16 {
    let mut req = request(&server.url(), None, None);
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(authorization).unwrap_or_else(|e| panic!("{e}")),
    );
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn wrong_service_credentials_get_401() {
    let server = start_server().await;
    assert_eq!(handshake_status(&server, "Bearer wrong").await, 401);
    assert_eq!(handshake_status(&server, DEV_SERVICE_SECRET).await, 401);
    assert_eq!(
        handshake_status(&server, &format!("Bearer {DEV_SERVICE_SECRET}")).await,
        101
    );
}

#[tokio::test]
async fn an_empty_secret_disables_service_connections() {
    let server = start_server_with(|s| s.service_secret = String::new()).await;
    assert_eq!(handshake_status(&server, "Bearer ").await, 401);
}

async fn published_messages_reach_members_and_history_as_announcements(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let mut service = Client::connect_service(&server, DEV_SERVICE_SECRET).await;
    service
        .send_json(
            json!({"type": "publish", "room": "lobby", "name": "Announcer",
                          "text": "maintenance at noon", "ref": "p1"}),
        )
        .await;
    let ack = service.recv().await;
    let announced = ada.recv_chat().await;
    assert!(announced.announcement);
    assert_eq!(announced.name.as_str(), "Announcer");
    assert_eq!(announced.text.as_str(), "maintenance at noon");
    assert!(matches!(
        ack,
        ServerMessage::Ack { reference, id, offset, .. }
            if reference.as_str() == "p1" && id == announced.id && offset == announced.offset
    ));

    let mut bob = Client::connect(&server).await;
    let history = bob.join("lobby", "Bob").await.history;
    assert_eq!(history.last(), Some(&announced));
}

async fn publishing_to_an_empty_room_keeps_the_message_for_later_joiners(engine: Engine) {
    let server = start(engine).await;
    let mut service = Client::connect_service(&server, DEV_SERVICE_SECRET).await;
    service
        .send_json(
            json!({"type": "publish", "room": "news", "name": "Announcer",
                          "text": "first!", "ref": "p"}),
        )
        .await;
    assert!(matches!(
        service.recv().await,
        ServerMessage::Ack { offset: 1, .. }
    ));
    let mut ada = Client::connect(&server).await;
    let joined = ada.join("news", "Ada").await;
    assert_eq!(joined.history.len(), 1);
    assert!(joined.history[0].announcement);
}

async fn the_service_lists_active_rooms_with_distinct_member_counts(engine: Engine) {
    let server = start(engine).await;
    let _ada = Client::joined(&server, "lobby", "Ada").await;
    let _bob = Client::joined(&server, "lobby", "Bob").await;
    let _bob_tab = Client::joined(&server, "lobby", "Bob").await;
    let _cy = Client::joined(&server, "games", "Cy").await;
    let mut service = Client::connect_service(&server, DEV_SERVICE_SECRET).await;
    service
        .send_json(json!({"type": "list_rooms", "ref": "l"}))
        .await;
    match service.recv().await {
        ServerMessage::Rooms { rooms, reference } => {
            let listed: Vec<(&str, usize)> =
                rooms.iter().map(|r| (r.room.as_str(), r.members)).collect();
            assert_eq!(listed, [("games", 1), ("lobby", 2)]);
            assert_eq!(
                reference.map(|r| r.as_str().to_owned()).as_deref(),
                Some("l")
            );
        }
        other => panic!("expected rooms, got {other:?}"),
    }
}

#[tokio::test]
async fn members_may_not_publish_or_list_rooms() {
    let server = start_server().await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    ada.send_json(json!({"type": "publish", "room": "lobby", "name": "Boss", "text": "obey"}))
        .await;
    assert_eq!(ada.recv_error().await, "forbidden");
    ada.send_json(json!({"type": "list_rooms"})).await;
    assert_eq!(ada.recv_error().await, "forbidden");
}

#[tokio::test]
async fn a_browser_origin_cannot_smuggle_service_credentials_past_the_origin_check() {
    let server = start_server().await;
    let mut req = request(&server.url(), Some("http://evil.example"), None);
    req.headers_mut().insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {DEV_SERVICE_SECRET}")).unwrap(),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(Error::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
}

both_engines!(
    published_messages_reach_members_and_history_as_announcements,
    publishing_to_an_empty_room_keeps_the_message_for_later_joiners,
    the_service_lists_active_rooms_with_distinct_member_counts,
);
