//! Minting connection tokens (see `protocol::token`): member tokens for
//! pages, through the room page and `GET /token`, and the service token of
//! this server's own connection.
//!
//! A token is a bearer credential: it goes into a response body only, with
//! `Cache-Control: no-store`, and never into a URL or a log line.

use std::time::Duration;

use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpRequest, HttpResponse, web};
use protocol::token::{Claims, Role, sign};
use protocol::{DisplayName, Secret, UserId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::identity;
use crate::site::Site;

/// The user id of this server's service connection, shown as the author of
/// announcements.
pub const SERVICE_USER: &str = "app-server";

/// The display name in this server's service token. Announcements are
/// shown under the name each request gives (`api::DEFAULT_ANNOUNCER` when
/// it gives none), not under this one.
pub const SERVICE_NAME: &str = "Announcements";

/// How long the service token is valid: it is checked when the connection
/// opens only, and a fresh one is minted for each (re)connection.
pub const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(60);

/// A token and when it stops being accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Minted {
    /// The token, to present as `Authorization: Bearer` or as the
    /// `duplex.token.TOKEN` subprotocol.
    pub token: String,
    /// Its expiry, in seconds since the Unix epoch.
    pub expires: u64,
}

/// A token for `user` shown as `name` with `role`, valid for `ttl` (whole
/// seconds, at least one).
#[must_use]
pub fn mint(secret: &Secret, user: UserId, name: DisplayName, role: Role, ttl: Duration) -> Minted {
    let claims = Claims::new(user, name, role, ttl.as_secs().max(1));
    Minted {
        expires: claims.expires,
        token: sign(&claims, secret),
    }
}

/// The token of this server's service connection.
#[must_use]
pub fn service(secret: &Secret) -> String {
    // Both are constants within the rules of their types.
    match (UserId::new(SERVICE_USER), DisplayName::new(SERVICE_NAME)) {
        (Ok(user), Ok(name)) => mint(secret, user, name, Role::Service, SERVICE_TOKEN_TTL).token,
        _ => String::new(),
    }
}

/// `Cache-Control: no-store`: no cache, shared or private, keeps a token.
pub(crate) fn no_store() -> CacheControl {
    CacheControl(vec![CacheDirective::NoStore])
}

/// The query of `GET /token`.
#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    name: String,
}

fn json_error(status: actix_web::http::StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(no_store())
        .json(json!({"error": {"code": code, "message": message}}))
}

/// `GET /token?name=NAME`: a fresh member token for the browser's cookie
/// user, for a page whose token expired. 200 `{"token", "expires"}`; 400
/// `invalid_name`; 401 `no_user` without a valid `duplex_user` cookie (the
/// room page sets it).
pub async fn refresh(
    request: HttpRequest,
    query: web::Query<TokenQuery>,
    site: web::Data<Site>,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let Some(user) = identity::user_of(&request, &site.secret, site.origin.is_https()) else {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "no_user",
            "no valid duplex_user cookie: open the room page again",
        );
    };
    let name = match DisplayName::new(query.name.trim()) {
        Ok(name) => name,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "invalid_name", &e.to_string()),
    };
    let minted = mint(&site.secret, user, name, Role::Member, site.token_ttl);
    HttpResponse::Ok()
        .insert_header(no_store())
        .insert_header((header::VARY, "Cookie"))
        .json(json!({"token": minted.token, "expires": minted.expires}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::token::verify;

    #[test]
    fn the_service_token_is_a_short_lived_service_role() {
        let secret = Secret::new(&"s".repeat(32)).unwrap_or_else(|e| panic!("{e}"));
        let claims = verify(&service(&secret), &secret, protocol::token::now_secs())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(claims.role, Role::Service);
        assert_eq!(claims.user.as_str(), SERVICE_USER);
        assert_eq!(claims.name.as_str(), SERVICE_NAME);
        assert!(claims.expires <= protocol::token::now_secs() + SERVICE_TOKEN_TTL.as_secs());
    }
}
