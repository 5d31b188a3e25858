//! Who a connection is: a token signed with the shared secret, checked
//! during the handshake; everything else is refused with 401 and a reason.

mod common;

use common::{Client, ORIGIN, SECRET, request, start_server, token, token_for};
use protocol::token::TOKEN_SUBPROTOCOL_PREFIX;
use protocol::{Claims, DisplayName, Role, SUBPROTOCOL, Secret, UserId};
use tokio_tungstenite::tungstenite::{Error, http::HeaderValue};

/// Attempts a handshake with `authorization` (if any) and `subprotocols`;
/// returns the status and the body of the answer.
async fn handshake(
    server: &common::TestServer,
    authorization: Option<&str>,
    subprotocols: Option<&str>,
) -> (u16, String) {
    let mut req = request(&server.url(), Some(ORIGIN), subprotocols);
    if let Some(authorization) = authorization {
        req.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(authorization).unwrap_or_else(|e| panic!("{e}")),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, response)) => (response.status().as_u16(), String::new()),
        Err(Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            (
                response.status().as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            )
        }
        Err(e) => panic!("{e}"),
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn a_missing_token_is_refused_with_401() {
    let server = start_server().await;
    let (status, body) = handshake(&server, None, Some(SUBPROTOCOL)).await;
    assert_eq!(status, 401);
    assert!(body.contains("token is required"), "{body}");
}

#[tokio::test]
async fn malformed_tokens_are_refused_with_401() {
    let server = start_server().await;
    for authorization in [
        "Bearer nonsense",
        "Bearer a.b.c",
        "Basic dXNlcjpwdw==",
        "Bearer",
    ] {
        let (status, body) = handshake(&server, Some(authorization), None).await;
        assert_eq!(status, 401, "{authorization}");
        assert!(body.contains("malformed"), "{authorization}: {body}");
    }
}

#[tokio::test]
async fn a_tampered_token_or_another_secret_is_refused_with_401() {
    let server = start_server().await;
    let good = token("u1", "Ada", Role::Member);
    // The payload swapped for one that claims the operator role.
    let forged = {
        let claims = Claims::new(
            UserId::new("u1").unwrap_or_else(|e| panic!("{e}")),
            DisplayName::new("Ada").unwrap_or_else(|e| panic!("{e}")),
            Role::Operator,
            3600,
        );
        let other =
            Secret::new("another-secret-another-secret-1234").unwrap_or_else(|e| panic!("{e}"));
        let (forged_payload, _) = protocol::token::sign(&claims, &other)
            .split_once('.')
            .map(|(p, s)| (p.to_owned(), s.to_owned()))
            .unwrap_or_default();
        let (_, signature) = good.split_once('.').unwrap_or_default();
        format!("{forged_payload}.{signature}")
    };
    let foreign = {
        let other =
            Secret::new("another-secret-another-secret-1234").unwrap_or_else(|e| panic!("{e}"));
        let claims = Claims::new(
            UserId::new("u1").unwrap_or_else(|e| panic!("{e}")),
            DisplayName::new("Ada").unwrap_or_else(|e| panic!("{e}")),
            Role::Member,
            3600,
        );
        protocol::token::sign(&claims, &other)
    };
    for bad in [forged, foreign] {
        let (status, body) = handshake(&server, Some(&bearer(&bad)), None).await;
        assert_eq!(status, 401);
        assert!(body.contains("signature is invalid"), "{body}");
    }
    assert_eq!(handshake(&server, Some(&bearer(&good)), None).await.0, 101);
}

#[tokio::test]
async fn an_expired_token_is_refused_with_401() {
    let server = start_server().await;
    let expired = token_for("u1", "Ada", Role::Member, 0);
    let (status, body) = handshake(&server, Some(&bearer(&expired)), None).await;
    assert_eq!(status, 401);
    assert!(body.contains("expired"), "{body}");
}

#[tokio::test]
async fn browsers_present_the_token_as_a_subprotocol_that_is_never_echoed() {
    let server = start_server().await;
    let good = token("u1", "Ada", Role::Member);
    let offered = format!("{SUBPROTOCOL}, {TOKEN_SUBPROTOCOL_PREFIX}{good}");
    assert_eq!(handshake(&server, None, Some(&offered)).await.0, 101);
    // `Client::connect_as` checks the answer names only the protocol.
    let ada = Client::connect_as(&server, "Ada").await;
    assert_eq!(ada.name, "Ada");
    let tampered = format!("{SUBPROTOCOL}, {TOKEN_SUBPROTOCOL_PREFIX}{good}x");
    assert_eq!(handshake(&server, None, Some(&tampered)).await.0, 401);
}

#[tokio::test]
async fn the_welcome_names_the_user_and_messages_carry_it() {
    let server = start_server().await;
    let mut ada = Client::connect_user(&server, "user-7", "Ada").await;
    ada.join("lobby").await;
    let mine = ada.post_acked("lobby", "hi").await;
    assert_eq!((mine.user.as_str(), mine.name.as_str()), ("user-7", "Ada"));
}

#[tokio::test]
async fn a_server_without_a_valid_secret_does_not_serve() {
    for secret in ["", "short"] {
        let mut server = common::start_server_with(|s| s.secret = secret.to_owned()).await;
        // serve_chat returns at once, without serving: its listener is gone.
        (&mut server.task).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
    }
    assert!(SECRET.len() >= Secret::MIN_BYTES);
}
