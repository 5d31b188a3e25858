//! The operator's sign-in and the announcement form it guards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use actix_web::http::{StatusCode, header};
use common::*;
use protocol::ServerMessage;

/// Signs in with `key` from the site's own page; returns the response.
async fn sign_in(app: &impl TestApp, key: &str) -> actix_web::dev::ServiceResponse {
    call(
        app,
        post_request("/operator")
            .insert_header((header::ORIGIN, "http://localhost:5001"))
            .set_form([("key", key)]),
    )
    .await
}

/// The `duplex_operator=...` pair of a successful sign-in.
async fn operator_cookie(app: &impl TestApp) -> String {
    let response = sign_in(app, API_KEY).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(header_of(&response, header::LOCATION), "/announce");
    cookie_pair(&response, "duplex_operator").unwrap()
}

fn announce(cookie: Option<&str>, origin: &str, text: &str) -> actix_web::test::TestRequest {
    let mut request = post_request("/announce")
        .insert_header((header::ORIGIN, origin.to_owned()))
        .set_form([("room", "lobby"), ("text", text)]);
    if let Some(cookie) = cookie {
        request = request.insert_header((header::COOKIE, cookie.to_owned()));
    }
    request
}

#[actix_rt::test]
async fn signing_in_with_the_key_sets_a_strict_http_only_cookie_that_expires() {
    let app = app_with(&settings(), &publisher_down()).await;
    let response = sign_in(&app, API_KEY).await;
    let cookie = set_cookies(&response).join("\n");
    for part in [
        "duplex_operator=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }

    let response = sign_in(&app, "not-the-key").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_pair(&response, "duplex_operator").is_none());
    assert!(
        body(response)
            .await
            .contains("data-testid=\"operator-error\"")
    );
}

#[actix_rt::test]
async fn the_announcement_form_is_for_operators_only() {
    let app = app_with(&settings(), &publisher_down()).await;
    let response = get_from(&app, "/announce").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(header_of(&response, header::LOCATION), "/operator");

    let response = call(&app, announce(None, "http://localhost:5001", "hi")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(body(response).await.contains("href=\"/operator\""));

    // A user cookie, or a forged session, is no operator session.
    for forged in ["duplex_operator=99999999999.AAAA", "duplex_operator=1"] {
        let response = call(&app, announce(Some(forged), "http://localhost:5001", "hi")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{forged}");
    }

    let cookie = operator_cookie(&app).await;
    let response = call(
        &app,
        get_request("/announce").insert_header((header::COOKIE, cookie)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        body(response)
            .await
            .contains("data-testid=\"announce-form\"")
    );
}

#[actix_rt::test]
async fn a_signed_in_operator_announces_and_sees_it_confirmed() {
    let ws = ws_server().await;
    let publisher = publisher_for(&ws).await;
    let app = app_with(&settings(), &publisher).await;
    let mut ada = member(&ws, "lobby", "Ada").await;
    let cookie = operator_cookie(&app).await;

    let response = call(
        &app,
        announce(
            Some(&cookie),
            "http://localhost:5001",
            "cake in the kitchen",
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        header_of(&response, header::LOCATION),
        "/announce?announced=lobby"
    );
    let ServerMessage::Message(m) = next_message(&mut ada).await else {
        panic!("expected the announcement");
    };
    assert_eq!(
        (m.name.as_str(), m.text.as_str()),
        ("Announcer", "cake in the kitchen")
    );

    let confirmation = call(
        &app,
        get_request("/announce?announced=lobby").insert_header((header::COOKIE, cookie.clone())),
    )
    .await;
    assert!(body(confirmation).await.contains("Announced to #lobby."));

    let response = call(
        &app,
        announce(Some(&cookie), "http://localhost:5001", "   "),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = body(response).await;
    assert!(html.contains("data-testid=\"announce-error\""));
    assert!(html.contains("message text must not be empty"));
}

#[actix_rt::test]
async fn forms_from_other_sites_are_refused_whatever_the_host_header_says() {
    let app = app_with(&settings(), &publisher_down()).await;
    let cookie = operator_cookie(&app).await;
    for origin in [
        "http://evil.example",
        "https://localhost:5001",
        "http://localhost:5002",
        "null",
    ] {
        let response = call(&app, announce(Some(&cookie), origin, "free money")).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin}");
    }
    // A forwarded host naming the attacker changes nothing.
    let forged = announce(Some(&cookie), "http://evil.example", "x")
        .insert_header(("X-Forwarded-Host", "evil.example"));
    assert_eq!(call(&app, forged).await.status(), StatusCode::FORBIDDEN);
    // Without Origin, Fetch Metadata decides.
    let cross = post_request("/announce")
        .insert_header((header::COOKIE, cookie.clone()))
        .insert_header(("Sec-Fetch-Site", "cross-site"))
        .set_form([("room", "lobby"), ("text", "x")]);
    assert_eq!(call(&app, cross).await.status(), StatusCode::FORBIDDEN);
    // The sign-in itself is checked too (login cross-site request forgery).
    let response = call(
        &app,
        post_request("/operator")
            .insert_header((header::ORIGIN, "http://evil.example"))
            .set_form([("key", API_KEY)]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[actix_rt::test]
async fn signing_out_drops_the_session() {
    let app = app_with(&settings(), &publisher_down()).await;
    let cookie = operator_cookie(&app).await;
    let response = call(
        &app,
        post_request("/operator/sign-out")
            .insert_header((header::ORIGIN, "http://localhost:5001"))
            .insert_header((header::COOKIE, cookie)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let removal = set_cookies(&response).join("\n");
    assert!(removal.contains("duplex_operator=;"), "{removal}");
    assert!(removal.contains("Max-Age=0"), "{removal}");
}

#[actix_rt::test]
async fn without_an_api_key_nobody_signs_in() {
    let settings = app_server::Settings {
        api_key: String::new(),
        ..settings()
    };
    let app = app_with(&settings, &publisher_down()).await;
    let html = body(get_from(&app, "/operator").await).await;
    assert!(html.contains("data-testid=\"operator-disabled\""));
    let response = sign_in(&app, "").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_pair(&response, "duplex_operator").is_none());
}

#[actix_rt::test]
async fn requests_for_another_host_are_misdirected() {
    let app = app_with(&settings(), &publisher_down()).await;
    for host in [
        "evil.example",
        "localhost:5002",
        "localhost",
        "127.0.0.2:5001",
    ] {
        let response = call(
            &app,
            get_request("/rooms/lobby?name=Ada").insert_header((header::HOST, host)),
        )
        .await;
        assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST, "{host}");
        assert!(body(response).await.contains("421"));
    }
    // Both loopback names on the public origin's port are this server.
    for host in ["localhost:5001", "127.0.0.1:5001", "LOCALHOST:5001"] {
        let response = call(&app, get_request("/").insert_header((header::HOST, host))).await;
        assert_eq!(response.status(), StatusCode::OK, "{host}");
    }
    // The API is misdirected too, before its key is checked; the health
    // check answers probes that address the server by IP.
    let response = call(
        &app,
        get_request("/api/rooms").insert_header((header::HOST, "10.0.0.5:5001")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);
    let response = call(
        &app,
        get_request("/healthz").insert_header((header::HOST, "10.0.0.5:5001")),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[actix_rt::test]
async fn a_dashboards_stream_ends_when_the_server_stops() {
    let fleet = app_server::fleet::Fleet::start(Vec::new());
    let app = app_with_fleet(&settings(), &publisher_down(), &fleet).await;
    let cookie = operator_cookie(&app).await;
    let events = call(
        &app,
        get_request("/dashboard/events").insert_header((header::COOKIE, cookie)),
    )
    .await;
    assert_eq!(events.status(), StatusCode::OK);
    fleet.stop();
    // The body ends rather than waiting for the next round forever.
    let body = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        actix_web::test::read_body(events),
    )
    .await
    .expect("the stream ends");
    assert!(body.is_empty(), "{body:?}");
}

#[actix_rt::test]
async fn the_dashboard_and_its_stream_are_for_operators_only() {
    let app = app_with(&settings(), &publisher_down()).await;
    let page = get_from(&app, "/dashboard").await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(header_of(&page, header::LOCATION), "/operator");
    let events = get_from(&app, "/dashboard/events").await;
    assert_eq!(events.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_body(events).await["error"]["code"], "unauthorized");

    let cookie = operator_cookie(&app).await;
    let page = call(
        &app,
        get_request("/dashboard").insert_header((header::COOKIE, cookie.clone())),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(body(page).await.contains("/static/js/dashboard.js"));
    let events = call(
        &app,
        get_request("/dashboard/events").insert_header((header::COOKIE, cookie)),
    )
    .await;
    assert_eq!(events.status(), StatusCode::OK);
    assert_eq!(
        header_of(&events, header::CONTENT_TYPE),
        "text/event-stream"
    );
}
