//! Who a browser is: the `duplex_user` cookie, the member token on the room
//! page, and the token endpoint a page calls to reconnect.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use app_server::Settings;
use common::*;
use protocol::token::{Role, TOKEN_SUBPROTOCOL_PREFIX, now_secs, verify};
use protocol::{Claims, SUBPROTOCOL, ServerMessage};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

fn claims_of(token: &str) -> Claims {
    verify(token, &secret(), now_secs()).unwrap()
}

/// Opens the room page with `cookie` (a `name=value` pair) if given;
/// returns the response's new `duplex_user` pair, if any, and the token on
/// the page.
async fn room_page(app: &impl TestApp, cookie: Option<&str>) -> (Option<String>, Claims) {
    let mut request = get_request("/rooms/lobby?name=Ada");
    if let Some(cookie) = cookie {
        request = request.insert_header((header::COOKIE, cookie.to_owned()));
    }
    let response = call(app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-store");
    let set = cookie_pair(&response, "duplex_user");
    let html = body(response).await;
    let token = data_attribute(&html, "token").unwrap();
    (set, claims_of(&token))
}

#[actix_rt::test]
async fn a_new_browser_gets_a_signed_user_cookie_and_a_member_token_for_it() {
    let app = app_with(&settings(), &publisher_down()).await;
    let response = get_from(&app, "/rooms/lobby?name=Ada").await;
    let cookie = set_cookies(&response)
        .into_iter()
        .find(|c| c.starts_with("duplex_user="))
        .unwrap();
    for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    assert!(!cookie.contains("Secure"), "http origin: {cookie}");
    let value = cookie_pair(&response, "duplex_user").unwrap();
    let id = value
        .trim_start_matches("duplex_user=")
        .split('.')
        .next()
        .unwrap()
        .to_owned();

    let html = body(response).await;
    let claims = claims_of(&data_attribute(&html, "token").unwrap());
    assert_eq!(claims.user.as_str(), id);
    assert_eq!(claims.name.as_str(), "Ada");
    assert_eq!(claims.role, Role::Member);
    let ttl = settings().token_ttl.as_secs();
    assert!(claims.expires.abs_diff(now_secs() + ttl) <= 2, "{claims:?}");
}

#[actix_rt::test]
async fn the_same_cookie_keeps_the_same_user_and_a_tampered_one_gets_a_fresh_user() {
    let app = app_with(&settings(), &publisher_down()).await;
    let (cookie, first) = room_page(&app, None).await;
    let cookie = cookie.unwrap();

    let (again, second) = room_page(&app, Some(&cookie)).await;
    assert_eq!(again, None, "a valid cookie is not replaced");
    assert_eq!(second.user, first.user);

    // Another user's id with this cookie's tag, and garbage.
    let (_, tag) = cookie.split_once('.').unwrap();
    for forged in [
        format!("duplex_user=someone-else.{tag}"),
        format!("{cookie}x"),
        "duplex_user=abc".to_owned(),
    ] {
        let (fresh, claims) = room_page(&app, Some(&forged)).await;
        assert!(fresh.is_some(), "{forged}: no fresh cookie");
        assert_ne!(claims.user, first.user);
        assert_ne!(claims.user.as_str(), "someone-else");
    }
}

#[actix_rt::test]
async fn cookies_are_secure_when_the_public_origin_is_https() {
    let settings = Settings {
        public_origin: "https://chat.example".into(),
        ws_url: "wss://chat.example/ws".into(),
        ..settings()
    };
    let app = app_with(&settings, &publisher_down()).await;
    let response = call(
        &app,
        get_request("/rooms/lobby?name=Ada").insert_header((header::HOST, "chat.example")),
    )
    .await;
    let cookie = set_cookies(&response).join("\n");
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[actix_rt::test]
async fn the_token_endpoint_gives_a_fresh_token_for_the_cookie_user() {
    let app = app_with(&settings(), &publisher_down()).await;
    let (cookie, page) = room_page(&app, None).await;
    let cookie = cookie.unwrap();
    let response = call(
        &app,
        get_request("/token?name=Ada%20L").insert_header((header::COOKIE, cookie)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-store");
    let answer = json_body(response).await;
    let claims = claims_of(answer["token"].as_str().unwrap());
    assert_eq!(claims.user, page.user);
    assert_eq!(claims.name.as_str(), "Ada L");
    assert_eq!(answer["expires"].as_u64(), Some(claims.expires));
}

#[actix_rt::test]
async fn the_token_endpoint_needs_the_cookie_and_a_valid_name() {
    let app = app_with(&settings(), &publisher_down()).await;
    let (cookie, _) = room_page(&app, None).await;
    let cookie = cookie.unwrap();

    for request in [
        get_request("/token?name=Ada"),
        get_request("/token?name=Ada").insert_header((header::COOKIE, "duplex_user=u1.AAAA")),
    ] {
        let response = call(&app, request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(json_body(response).await["error"]["code"], "no_user");
    }
    for bad in ["/token?name=%3Cb%3E", "/token?name=", "/token"] {
        let response = call(
            &app,
            get_request(bad).insert_header((header::COOKIE, cookie.clone())),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(json_body(response).await["error"]["code"], "invalid_name");
    }
}

#[actix_rt::test]
async fn a_page_token_opens_a_connection_as_a_browser_would() {
    let ws = ws_server().await;
    let app = app_with(&settings(), &publisher_down()).await;
    let response = get_from(&app, "/rooms/lobby?name=Ada").await;
    let html = body(response).await;
    let token = data_attribute(&html, "token").unwrap();
    let user = claims_of(&token).user;

    // Browsers cannot set headers on a WebSocket: the token rides as a
    // second subprotocol next to the protocol's.
    let mut request = ws.url.as_str().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_str(&format!("{SUBPROTOCOL}, {TOKEN_SUBPROTOCOL_PREFIX}{token}"))
            .unwrap(),
    );
    request
        .headers_mut()
        .insert("Origin", HeaderValue::from_static("http://localhost:5001"));
    let (mut client, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .unwrap()
    .unwrap();
    let ServerMessage::Welcome {
        user: welcomed,
        name,
        ..
    } = next_message(&mut client).await
    else {
        panic!("expected welcome");
    };
    assert_eq!((welcomed, name.as_str()), (user, "Ada"));
}
