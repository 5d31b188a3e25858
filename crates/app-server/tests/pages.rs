//! The app-server's pages and files, as a browser receives them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use actix_web::http::{StatusCode, header};
use app_server::Settings;
use common::{TestApp, body, get_from, header_of, publisher_down, settings};

/// The app as configured by `settings`; the ws-server is down, which these
/// page tests do not need.
async fn app_with(settings: &Settings) -> impl TestApp + use<> {
    common::app_with(settings, &publisher_down()).await
}

async fn get_with(settings: &Settings, uri: &str) -> actix_web::dev::ServiceResponse {
    get_from(&app_with(settings).await, uri).await
}

async fn get(uri: &str) -> actix_web::dev::ServiceResponse {
    get_with(&settings(), uri).await
}

#[actix_rt::test]
async fn the_start_page_offers_a_name_and_room_form() {
    let response = get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header_of(&response, header::CONTENT_TYPE).starts_with("text/html"));
    let html = body(response).await;
    for needle in [
        "action=\"/join\"",
        "data-testid=\"name-input\"",
        "data-testid=\"room-input\"",
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
}

#[actix_rt::test]
async fn the_start_page_says_when_the_room_list_is_unavailable() {
    let html = body(get("/").await).await;
    assert!(html.contains("data-testid=\"rooms-unavailable\""), "{html}");
}

#[actix_rt::test]
async fn the_start_page_prefills_the_room_escaped() {
    let html = body(get("/?room=lobby%22%3E%3Cb%3E").await).await;
    assert!(
        html.contains("value=\"lobby&#34;&#62;&#60;b&#62;\""),
        "{html}"
    );
}

#[actix_rt::test]
async fn joining_redirects_to_the_room_page_with_the_name_encoded() {
    let response = get("/join?name=Ada+Lovelace&room=lobby").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        header_of(&response, header::LOCATION),
        "/rooms/lobby?name=Ada+Lovelace"
    );
}

#[actix_rt::test]
async fn joining_with_an_invalid_room_shows_the_form_again_with_the_reason() {
    let response = get("/join?name=Ada&room=no+spaces").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = body(response).await;
    assert!(html.contains("data-testid=\"form-error\""));
    assert!(
        html.contains("room name must not contain &#39; &#39;"),
        "{html}"
    );
    assert!(html.contains("value=\"Ada\""));
}

#[actix_rt::test]
async fn the_room_page_carries_the_websocket_url_room_name_and_token() {
    let response = get("/rooms/lobby?name=Ada%20L").await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = body(response).await;
    assert!(
        html.contains("data-ws-url=\"ws://127.0.0.1:5999/ws\""),
        "{html}"
    );
    assert!(html.contains("data-room=\"lobby\""));
    assert!(html.contains("data-name=\"Ada L\""));
    assert!(html.contains("data-token=\""));
    assert!(
        html.contains("data-token-url=\"/token?name=Ada+L\""),
        "{html}"
    );
    for id in [
        "connection-status",
        "message-input",
        "send-button",
        "message-list",
        "presence-list",
    ] {
        assert!(
            html.contains(&format!("data-testid=\"{id}\"")),
            "missing {id}"
        );
    }
    assert!(html.contains("src=\"/static/js/chat.js\""));
}

#[actix_rt::test]
async fn the_websocket_url_comes_from_the_settings_and_is_escaped() {
    let settings = Settings {
        ws_url: "wss://chat.example/ws?a=1&b=\"x\"".into(),
        ..settings()
    };
    let html = body(get_with(&settings, "/rooms/lobby?name=Ada").await).await;
    assert!(
        html.contains("data-ws-url=\"wss://chat.example/ws?a=1&#38;b=&#34;x&#34;\""),
        "{html}"
    );
}

#[actix_rt::test]
async fn an_invalid_room_gets_a_400_page_that_says_why() {
    let response = get("/rooms/a%20b?name=Ada").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = body(response).await;
    assert!(html.contains("Invalid room name"));
    assert!(html.contains("room name must not contain"), "{html}");

    let long = "r".repeat(65);
    let response = get(&format!("/rooms/{long}?name=Ada")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(body(response).await.contains("at most 64 characters"));
}

#[actix_rt::test]
async fn an_invalid_name_gets_a_400_page_that_says_why() {
    let response = get("/rooms/lobby?name=%3Cscript%3E").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = body(response).await;
    assert!(html.contains("Invalid display name"));
    assert!(
        html.contains("display name must not contain &#39;&#60;&#39;"),
        "{html}"
    );
    assert!(!html.contains("<script>"));
}

#[actix_rt::test]
async fn a_room_without_a_name_asks_for_one() {
    let response = get("/rooms/lobby").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(header_of(&response, header::LOCATION), "/?room=lobby");
}

#[actix_rt::test]
async fn static_files_are_served_with_their_types() {
    for (path, mime) in [
        ("/static/js/chat.js", "text/javascript"),
        ("/static/js/duplex.js", "text/javascript"),
        ("/static/css/app.css", "text/css"),
        ("/static/js/dashboard.js", "text/javascript"),
        ("/static/js/dashboard-data.js", "text/javascript"),
        ("/static/vendor/uplot/uPlot.esm.js", "text/javascript"),
        ("/static/vendor/uplot/uPlot.min.css", "text/css"),
        ("/static/css/dashboard.css", "text/css"),
    ] {
        let response = get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            header_of(&response, header::CONTENT_TYPE).starts_with(mime),
            "{path}"
        );
    }
    let js = body(get("/static/js/duplex.js").await).await;
    assert!(js.contains("export class DuplexClient"));
}

#[actix_rt::test]
async fn unknown_routes_and_files_get_404() {
    for path in [
        "/nope",
        "/static/js/missing.js",
        "/static/",
        "/static/../Cargo.toml",
    ] {
        let response = get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert!(body(get("/nope").await).await.contains("404"));
}

#[actix_rt::test]
async fn health_check_answers_ok() {
    let response = get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body(response).await,
        "{\"status\":\"ok\",\"ws\":\"disconnected\"}"
    );
}

#[actix_rt::test]
async fn pages_may_connect_only_to_the_configured_websocket_origin() {
    let response = get("/rooms/lobby?name=Ada").await;
    let csp = header_of(&response, header::CONTENT_SECURITY_POLICY);
    assert!(
        csp.contains("connect-src 'self' ws://127.0.0.1:5999;"),
        "{csp}"
    );
    assert!(csp.contains("default-src 'self'"));
    assert_eq!(
        header_of(&response, header::X_CONTENT_TYPE_OPTIONS),
        "nosniff"
    );
}

#[actix_rt::test]
async fn consecutive_room_pages_get_the_ws_urls_in_turn_and_may_connect_to_all() {
    let settings = Settings {
        ws_urls: vec![
            "ws://127.0.0.1:5998/ws".into(),
            "ws://127.0.0.1:5997/ws".into(),
        ],
        ..settings()
    };
    let app = app_with(&settings).await;
    let mut handed_out = Vec::new();
    for _ in 0..3 {
        let response = get_from(&app, "/rooms/lobby?name=Ada").await;
        let csp = header_of(&response, header::CONTENT_SECURITY_POLICY).to_owned();
        assert!(
            csp.contains("connect-src 'self' ws://127.0.0.1:5998 ws://127.0.0.1:5997;"),
            "{csp}"
        );
        let html = body(response).await;
        let url = ["ws://127.0.0.1:5998/ws", "ws://127.0.0.1:5997/ws"]
            .into_iter()
            .find(|url| html.contains(&format!("data-ws-url=\"{url}\"")));
        handed_out.push(url);
    }
    assert_eq!(
        handed_out,
        [
            Some("ws://127.0.0.1:5998/ws"),
            Some("ws://127.0.0.1:5997/ws"),
            Some("ws://127.0.0.1:5998/ws"),
        ]
    );
}
