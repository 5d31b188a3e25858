//! Server-side publishing and the room directory, through a real ws-server
//! and the app-server's service connection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::{App, test};
use app_server::{Publisher, Settings};
use futures_util::{SinkExt, StreamExt};
use protocol::ServerMessage;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// A ws-server on an ephemeral port, stopped when dropped.
struct WsServer {
    url: String,
    shutdown: CancellationToken,
}

impl Drop for WsServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn ws_server() -> WsServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let settings = ws_server::Settings {
        port: 0,
        ..ws_server::Settings::default()
    };
    tokio::spawn(ws_server::serve_chat(listener, settings, shutdown.clone()));
    WsServer { url, shutdown }
}

async fn app(
    publisher: &Publisher,
) -> impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error> {
    let settings = Settings {
        public_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../../public").into(),
        ..Settings::default()
    };
    let ws_urls = app_server::WsUrls::new(&settings).unwrap();
    test::init_service(App::new().configure(|cfg| {
        app_server::routes::configure(cfg, &settings, publisher, &ws_urls);
    }))
    .await
}

/// A publisher connected to `ws`.
async fn publisher_for(ws: &WsServer) -> Publisher {
    let secret = ws_server::settings::DEV_SERVICE_SECRET.into();
    let publisher = Publisher::start(ws.url.clone(), secret);
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        publisher.wait_until_connected(),
    )
    .await
    .unwrap();
    publisher
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A browser-like member of `room`, past its `welcome` and `joined`.
async fn member(ws: &WsServer, room: &str) -> Client {
    let (mut client, _) = tokio_tungstenite::connect_async(&ws.url).await.unwrap();
    client
        .send(Message::text(
            json!({"type": "join", "room": room, "name": "Ada"}).to_string(),
        ))
        .await
        .unwrap();
    for _ in 0..2 {
        next_message(&mut client).await;
    }
    client
}

async fn next_message(client: &mut Client) -> ServerMessage {
    loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), client.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn json_body(response: ServiceResponse) -> Value {
    serde_json::from_slice(&test::read_body(response).await).unwrap()
}

fn post_json(uri: &str, body: Value) -> actix_http::Request {
    test::TestRequest::post()
        .uri(uri)
        .set_json(body)
        .to_request()
}

#[actix_rt::test]
async fn publishing_through_the_api_reaches_members_and_history() {
    let ws = ws_server().await;
    let publisher = publisher_for(&ws).await;
    let app = app(&publisher).await;
    let mut ada = member(&ws, "lobby").await;

    let response = app
        .call(post_json(
            "/api/rooms/lobby/messages",
            json!({"text": "maintenance at noon", "name": "Ops"}),
        ))
        .await
        .unwrap();
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

    // A later joiner finds it in the history.
    let (mut bob, _) = tokio_tungstenite::connect_async(&ws.url).await.unwrap();
    bob.send(Message::text(
        json!({"type": "join", "room": "lobby", "name": "Bob"}).to_string(),
    ))
    .await
    .unwrap();
    next_message(&mut bob).await; // welcome
    let ServerMessage::Joined { history, .. } = next_message(&mut bob).await else {
        panic!("expected joined");
    };
    assert_eq!(history.last(), Some(&message));
}

#[actix_rt::test]
async fn many_requests_share_one_service_connection() {
    let ws = ws_server().await;
    let publisher = publisher_for(&ws).await;
    let app = app(&publisher).await;
    let mut ada = member(&ws, "lobby").await;
    for i in 1..=20 {
        let response = app
            .call(post_json(
                "/api/rooms/lobby/messages",
                json!({"text": format!("n{i}")}),
            ))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(json_body(response).await["offset"], json!(i));
    }
    for i in 1..=20 {
        let ServerMessage::Message(m) = next_message(&mut ada).await else {
            panic!("expected message {i}");
        };
        assert_eq!((m.name.as_str(), m.offset), ("Announcer", i));
    }
    // The room's members: Ada, and no extra connection per request.
    let response = app
        .call(test::TestRequest::get().uri("/api/rooms").to_request())
        .await
        .unwrap();
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
        let response = app.call(post_json(uri, body)).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{uri} {code}");
        let error = json_body(response).await;
        assert_eq!(error["error"]["code"], json!(code));
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let not_json = test::TestRequest::post()
        .uri("/api/rooms/lobby/messages")
        .insert_header((header::CONTENT_TYPE, "text/plain"))
        .set_payload("hello")
        .to_request();
    let response = app.call(not_json).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        json_body(response).await["error"]["code"],
        json!("unsupported_media_type")
    );
}

#[actix_rt::test]
async fn publishing_while_the_ws_server_is_down_is_503() {
    let publisher = Publisher::start("ws://127.0.0.1:9/ws".into(), "s".into());
    let app = app(&publisher).await;
    let response = app
        .call(post_json(
            "/api/rooms/lobby/messages",
            json!({"text": "hello?"}),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        json_body(response).await["error"]["code"],
        json!("ws_unavailable")
    );
}

#[actix_rt::test]
async fn health_reports_the_service_connection() {
    let ws = ws_server().await;
    let publisher = publisher_for(&ws).await;
    let app = app(&publisher).await;
    let response = app
        .call(test::TestRequest::get().uri("/healthz").to_request())
        .await
        .unwrap();
    assert_eq!(
        json_body(response).await,
        json!({"status": "ok", "ws": "connected"})
    );
}

#[actix_rt::test]
async fn a_wrong_service_secret_means_unavailable() {
    let ws = ws_server().await;
    let publisher = Publisher::start(ws.url.clone(), "not-the-secret".into());
    assert_eq!(
        publisher.rooms().await,
        Err(app_server::publisher::PublishError::Unavailable)
    );
}

#[actix_rt::test]
async fn the_start_page_lists_active_rooms_with_member_counts() {
    let ws = ws_server().await;
    let publisher = publisher_for(&ws).await;
    let app = app(&publisher).await;
    let _one = member(&ws, "lobby").await;
    let _two = member(&ws, "games").await;
    let response = app
        .call(test::TestRequest::get().uri("/").to_request())
        .await
        .unwrap();
    let html = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
    assert!(html.contains("data-room=\"games\""), "{html}");
    assert!(html.contains("data-room=\"lobby\""));
    assert!(html.contains("1 member"));
    assert!(!html.contains("rooms-unavailable"));
}

#[actix_rt::test]
async fn the_announcement_form_publishes_and_confirms() {
    let ws = ws_server().await;
    let publisher = publisher_for(&ws).await;
    let app = app(&publisher).await;
    let mut ada = member(&ws, "lobby").await;
    let form = test::TestRequest::post()
        .uri("/announce")
        .set_form([("room", "lobby"), ("text", "cake in the kitchen")])
        .to_request();
    let response = app.call(form).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some("/?announced=lobby")
    );
    let ServerMessage::Message(m) = next_message(&mut ada).await else {
        panic!("expected the announcement");
    };
    assert_eq!(m.text.as_str(), "cake in the kitchen");

    let confirmation = app
        .call(
            test::TestRequest::get()
                .uri("/?announced=lobby")
                .to_request(),
        )
        .await
        .unwrap();
    let html = String::from_utf8(test::read_body(confirmation).await.to_vec()).unwrap();
    assert!(html.contains("Announced to #lobby."));

    let invalid = test::TestRequest::post()
        .uri("/announce")
        .set_form([("room", "lobby"), ("text", "   ")])
        .to_request();
    let response = app.call(invalid).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
    assert!(html.contains("data-testid=\"announce-error\""));
    assert!(html.contains("message text must not be empty"));
}

#[actix_rt::test]
async fn the_announcement_form_refuses_other_sites() {
    let ws = ws_server().await;
    let publisher = publisher_for(&ws).await;
    let app = app(&publisher).await;
    let forged = test::TestRequest::post()
        .uri("/announce")
        .insert_header((header::ORIGIN, "http://evil.example"))
        .set_form([("room", "lobby"), ("text", "free money")])
        .to_request();
    let response = app.call(forged).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let own = test::TestRequest::post()
        .uri("/announce")
        .insert_header((header::HOST, "localhost:5001"))
        .insert_header((header::ORIGIN, "http://localhost:5001"))
        .set_form([("room", "lobby"), ("text", "from our own page")])
        .to_request();
    let response = app.call(own).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}
