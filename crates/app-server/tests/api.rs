//! Server-side publishing and the room directory, through a real ws-server
//! and the app-server's service connection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use app_server::Publisher;
use app_server::publisher::PublishError;
use common::*;
use protocol::ServerMessage;
use serde_json::{Value, json};

async fn app(publisher: &Publisher) -> impl TestApp + use<> {
    app_with(&settings(), publisher).await
}

/// An authorized API request: the test API key as a bearer.
fn api(request: actix_web::test::TestRequest) -> actix_web::test::TestRequest {
    request.insert_header((header::AUTHORIZATION, format!("Bearer {API_KEY}")))
}

fn post_json(uri: &str, body: Value) -> actix_web::test::TestRequest {
    api(post_request(uri).set_json(body))
}

#[actix_rt::test]
async fn publishing_through_the_api_reaches_members_and_history() {
    let ws = ws_server().await;
    let publisher = publisher_for(&ws).await;
    let app = app(&publisher).await;
    let mut ada = member(&ws, "lobby", "Ada").await;

    let response = call(
        &app,
        post_json(
            "/api/rooms/lobby/messages",
            json!({"text": "maintenance at noon", "name": "Ops"}),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = json_body(response).await;

    let ServerMessage::Message(message) = next_message(&mut ada).await else {
        panic!("expected the announcement");
    };
    assert!(message.announcement);
    assert_eq!(
        (message.name.as_str(), message.text.as_str()),
        ("Ops", "maintenance at noon")
    );
    assert_eq!(created["id"], json!(message.id));
    assert_eq!(created["offset"], json!(message.offset));
    assert_eq!(created["room"], json!("lobby"));

    assert_eq!(message.user.as_str(), app_server::tokens::SERVICE_USER);

    // A later joiner finds it in the history.
    let mut bob = connect_with(&ws, &member_token("bob", "Bob")).await;
    let ServerMessage::Joined { history, .. } = join(&mut bob, "lobby").await else {
        panic!("expected joined");
    };
    assert_eq!(history.last(), Some(&message));
}

#[actix_rt::test]
async fn many_requests_share_one_service_connection() {
    // Twice the ws-server's default burst: the service connection has no
    // frame budget.
    let ws = ws_server().await;
    let publisher = publisher_for(&ws).await;
    let app = app(&publisher).await;
    let mut ada = member(&ws, "lobby", "Ada").await;
    for i in 1..=40 {
        let response = call(
            &app,
            post_json(
                "/api/rooms/lobby/messages",
                json!({"text": format!("n{i}")}),
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(json_body(response).await["offset"], json!(i));
    }
    for i in 1..=40 {
        let ServerMessage::Message(m) = next_message(&mut ada).await else {
            panic!("expected message {i}");
        };
        assert_eq!((m.name.as_str(), m.offset), ("Announcer", i));
    }
    // The room's members: Ada, and no extra connection per request.
    let response = call(&app, api(get_request("/api/rooms"))).await;
    assert_eq!(
        json_body(response).await,
        json!({"rooms": [{"room": "lobby", "members": 1}]})
    );
}

#[actix_rt::test]
async fn invalid_requests_get_json_errors_with_codes() {
    let ws = ws_server().await;
    let publisher = publisher_for(&ws).await;
    let app = app(&publisher).await;
    let cases = [
        (
            "/api/rooms/a%20b/messages",
            json!({"text": "x"}),
            400,
            "invalid_room",
        ),
        (
            "/api/rooms/lobby/messages",
            json!({"text": ""}),
            400,
            "invalid_text",
        ),
        (
            "/api/rooms/lobby/messages",
            json!({"text": "x".repeat(2001)}),
            400,
            "text_too_long",
        ),
        (
            "/api/rooms/lobby/messages",
            json!({"text": "x", "name": "<b>"}),
            400,
            "invalid_name",
        ),
        (
            "/api/rooms/lobby/messages",
            json!({"txt": "x"}),
            400,
            "invalid_json",
        ),
        (
            "/api/rooms/lobby/messages",
            json!({"text": "y".repeat(20_000)}),
            413,
            "payload_too_large",
        ),
    ];
    for (uri, body, status, code) in cases {
        let response = call(&app, post_json(uri, body)).await;
        assert_eq!(response.status().as_u16(), status, "{uri} {code}");
        let error = json_body(response).await;
        assert_eq!(error["error"]["code"], json!(code));
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let not_json = api(post_request("/api/rooms/lobby/messages"))
        .insert_header((header::CONTENT_TYPE, "text/plain"))
        .set_payload("hello");
    let response = call(&app, not_json).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        json_body(response).await["error"]["code"],
        json!("unsupported_media_type")
    );
}

#[actix_rt::test]
async fn publishing_while_the_ws_server_is_down_is_503_at_once() {
    // Connected first, then the ws-server goes away: the publisher must
    // notice, and then fail requests at once rather than queue them.
    let ws = ws_server().await;
    let publisher = publisher_for(&ws).await;
    let app = app(&publisher).await;
    ws.stop().await;
    let status = tokio::time::timeout(DEADLINE, publisher.wait_for_failed_attempts(1))
        .await
        .unwrap();
    assert!(!status.connected);

    let asked = tokio::time::Instant::now();
    let response = call(
        &app,
        post_json("/api/rooms/lobby/messages", json!({"text": "hello?"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        json_body(response).await["error"]["code"],
        json!("ws_unavailable")
    );
    // The pause before the next attempt has just begun: an answer that
    // waited for that attempt would take at least 100 ms (`backoff(1)`).
    assert!(
        asked.elapsed() < Duration::from_millis(100),
        "{:?}",
        asked.elapsed()
    );
}

#[actix_rt::test]
async fn health_reports_the_service_connection() {
    let ws = ws_server().await;
    let publisher = publisher_for(&ws).await;
    let app = app(&publisher).await;
    let response = get_from(&app, "/healthz").await;
    assert_eq!(
        json_body(response).await,
        json!({"status": "ok", "ws": "connected"})
    );
}

#[actix_rt::test]
async fn a_wrong_secret_means_the_ws_server_refuses_the_service_connection() {
    let ws = ws_server().await;
    let wrong = protocol::Secret::new(&"w".repeat(32)).unwrap();
    let publisher = Publisher::start(ws.url.clone(), wrong);
    // Two refused attempts, and never a connection in between.
    let status = tokio::time::timeout(DEADLINE, publisher.wait_for_failed_attempts(2))
        .await
        .expect("the ws-server accepted a token signed with another secret");
    assert!(!status.connected);
    let error = status.last_error.unwrap_or_default();
    assert!(error.contains("401"), "{error}");
    assert_eq!(publisher.rooms(None).await, Err(PublishError::Unavailable));
}

#[actix_rt::test]
async fn the_api_needs_the_api_key_before_reading_the_body() {
    let ws = ws_server().await;
    let publisher = publisher_for(&ws).await;
    let app = app(&publisher).await;
    let publish = || post_request("/api/rooms/lobby/messages").set_json(json!({"text": "x"}));
    let wrong = format!("Bearer {}", "x".repeat(API_KEY.len()));
    for request in [
        publish(),
        publish().insert_header((header::AUTHORIZATION, wrong.clone())),
        publish().insert_header((header::AUTHORIZATION, API_KEY)),
        publish().insert_header((header::AUTHORIZATION, format!("Basic {API_KEY}"))),
        get_request("/api/rooms"),
        get_request("/api/rooms").insert_header((header::AUTHORIZATION, wrong)),
        // Not even a body error is reported before the key is checked.
        post_request("/api/rooms/lobby/messages").set_payload("not json"),
    ] {
        let response = call(&app, request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(
            header_of(&response, header::WWW_AUTHENTICATE).starts_with("Bearer"),
            "{:?}",
            response.headers()
        );
        assert_eq!(json_body(response).await["error"]["code"], "unauthorized");
    }
    // The key works whatever the scheme's case.
    let response = call(
        &app,
        publish().insert_header((header::AUTHORIZATION, format!("bearer {API_KEY}"))),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[actix_rt::test]
async fn without_an_api_key_configured_the_api_refuses_everyone_and_says_why() {
    let settings = app_server::Settings {
        api_key: String::new(),
        ..settings()
    };
    let app = app_with(&settings, &publisher_down()).await;
    let response = call(
        &app,
        post_json("/api/rooms/lobby/messages", json!({"text": "x"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let error = json_body(response).await;
    assert_eq!(error["error"]["code"], "api_disabled");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("api_key")
    );
}

#[actix_rt::test]
async fn the_directory_is_paged_and_the_start_page_shows_the_first_page() {
    let ws = ws_server_with(|s| s.directory_page_size = 2).await;
    let publisher = publisher_for(&ws).await;
    let app = app(&publisher).await;
    let mut members = Vec::new();
    for room in ["a-room", "b-room", "c-room"] {
        members.push(member(&ws, room, &format!("in-{room}")).await);
    }
    let response = call(&app, api(get_request("/api/rooms"))).await;
    assert_eq!(
        json_body(response).await,
        json!({"rooms": [{"room": "a-room", "members": 1}, {"room": "b-room", "members": 1}], "next": "b-room"})
    );
    let response = call(&app, api(get_request("/api/rooms?after=b-room"))).await;
    assert_eq!(
        json_body(response).await,
        json!({"rooms": [{"room": "c-room", "members": 1}]})
    );

    let html = body(get_from(&app, "/").await).await;
    assert!(html.contains("data-room=\"b-room\""), "{html}");
    assert!(!html.contains("data-room=\"c-room\""), "{html}");
    assert!(html.contains("data-testid=\"more-rooms\""), "{html}");
}

#[actix_rt::test]
async fn the_start_page_lists_active_rooms_with_member_counts() {
    let ws = ws_server().await;
    let publisher = publisher_for(&ws).await;
    let app = app(&publisher).await;
    let _one = member(&ws, "lobby", "Ada").await;
    let _two = member(&ws, "games", "Bob").await;
    let html = body(get_from(&app, "/").await).await;
    assert!(html.contains("data-room=\"games\""), "{html}");
    assert!(html.contains("data-room=\"lobby\""));
    assert!(html.contains("1 member"));
    assert!(!html.contains("rooms-unavailable"));
    assert!(!html.contains("more-rooms"));
}
