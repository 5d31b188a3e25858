//! Service connections: the app-server publishing into rooms and reading
//! the room directory.

mod common;

use common::{Client, Engine, request, start, start_server, start_with, token};
use protocol::{Role, ServerMessage};
use serde_json::json;
use tokio_tungstenite::tungstenite::{Error, http::HeaderValue};

async fn published_messages_reach_members_and_history_as_announcements(engine: Engine) {
    let server = start(engine).await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let mut service = Client::connect_service(&server).await;
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
    assert_eq!(announced.user.as_str(), "app-server");
    assert_eq!(announced.text.as_str(), "maintenance at noon");
    assert!(matches!(
        ack,
        ServerMessage::Ack { reference, id, offset, .. }
            if reference.as_str() == "p1" && id == announced.id && offset == announced.offset
    ));

    let mut bob = Client::connect_as(&server, "Bob").await;
    let history = bob.join("lobby").await.history;
    assert_eq!(history.last(), Some(&announced));
}

async fn publishing_to_an_empty_room_keeps_the_message_for_later_joiners(engine: Engine) {
    let server = start(engine).await;
    let mut service = Client::connect_service(&server).await;
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
    let mut ada = Client::connect_as(&server, "Ada").await;
    let joined = ada.join("news").await;
    assert_eq!(joined.history.len(), 1);
    assert!(joined.history[0].announcement);
}

async fn the_service_lists_active_rooms_with_distinct_member_counts(engine: Engine) {
    let server = start(engine).await;
    let _ada = Client::joined(&server, "lobby", "Ada").await;
    let _bob = Client::joined(&server, "lobby", "Bob").await;
    let _bob_tab = Client::joined(&server, "lobby", "Bob").await;
    let _cy = Client::joined(&server, "games", "Cy").await;
    let mut service = Client::connect_service(&server).await;
    service
        .send_json(json!({"type": "list_rooms", "ref": "l"}))
        .await;
    match service.recv().await {
        ServerMessage::Rooms {
            rooms,
            reference,
            next,
        } => {
            assert_eq!(next, None);
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
        HeaderValue::from_str(&format!(
            "Bearer {}",
            token("app-server", "Announcements", Role::Service)
        ))
        .unwrap(),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(Error::Http(response)) => assert_eq!(response.status().as_u16(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
}

/// Asks for one page of the directory; returns its rooms and `next`.
async fn page(service: &mut Client, after: Option<&str>) -> (Vec<String>, Option<String>) {
    service
        .send_json(json!({"type": "list_rooms", "after": after}))
        .await;
    match service.recv().await {
        ServerMessage::Rooms { rooms, next, .. } => (
            rooms.iter().map(|r| r.room.to_string()).collect(),
            next.map(|n| n.to_string()),
        ),
        other => panic!("expected rooms, got {other:?}"),
    }
}

async fn the_directory_comes_in_pages(engine: Engine) {
    let server = start_with(engine, |s| s.directory_page_size = 2).await;
    let mut members = Vec::new();
    for room in ["a", "b", "c", "d", "e"] {
        members.push(Client::joined(&server, room, "Ada").await);
    }
    let mut service = Client::connect_service(&server).await;
    assert_eq!(
        page(&mut service, None).await,
        (vec!["a".into(), "b".into()], Some("b".into()))
    );
    assert_eq!(
        page(&mut service, Some("b")).await,
        (vec!["c".into(), "d".into()], Some("d".into()))
    );
    assert_eq!(
        page(&mut service, Some("d")).await,
        (vec!["e".into()], None)
    );
}

#[tokio::test]
async fn an_operator_token_may_publish_too() {
    let server = start_server().await;
    let mut ada = Client::joined(&server, "lobby", "Ada").await;
    let mut operator =
        Client::connect_bearer(&server, &token("op-1", "Operator", Role::Operator)).await;
    operator
        .send_json(json!({"type": "publish", "room": "lobby", "name": "Ops", "text": "hi"}))
        .await;
    let announced = ada.recv_chat().await;
    assert_eq!(
        (announced.user.as_str(), announced.announcement),
        ("op-1", true)
    );
}

both_engines!(
    the_directory_comes_in_pages,
    published_messages_reach_members_and_history_as_announcements,
    publishing_to_an_empty_room_keeps_the_message_for_later_joiners,
    the_service_lists_active_rooms_with_distinct_member_counts,
);
