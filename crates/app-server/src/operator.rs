//! The operator's sign-in: a form where the operator pastes the API key,
//! answered with a signed `duplex_operator` cookie that the announcement
//! form requires.
//!
//! The cookie's value is `EXPIRES.TAG`: its expiry in Unix seconds and the
//! secret's HMAC tag of that expiry and the API key, under a context of its
//! own. Changing the API key thus signs every operator out, and no other
//! tag of the secret (a token's, the user cookie's) can pass for it. It is
//! SameSite=Strict: no request started by another site carries it.

use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::api_key::ApiKey;
use crate::error::AppError;
use crate::pages::OperatorPage;
use crate::routes::{html_with, see_other};
use crate::site::Site;

/// The cookie's name.
pub const OPERATOR_COOKIE: &str = "duplex_operator";

/// What the cookie's tag is computed for; differs from the user cookie's.
const OPERATOR_COOKIE_CONTEXT: &[u8] = b"duplex operator cookie v1\n";

/// How long a sign-in lasts: a working day.
pub const OPERATOR_SESSION: Duration = Duration::from_secs(12 * 60 * 60);

/// Where a successful sign-in leads.
pub const AFTER_SIGN_IN: &str = "/announce";

fn tag(site: &Site, key: &ApiKey, expires: u64) -> Vec<u8> {
    let mut message = format!("{expires}\n").into_bytes();
    message.extend_from_slice(key.as_bytes());
    site.secret.tag(OPERATOR_COOKIE_CONTEXT, &message)
}

/// The cookie value for a session that ends at `expires`.
fn sign_session(site: &Site, key: &ApiKey, expires: u64) -> String {
    format!(
        "{expires}.{}",
        URL_SAFE_NO_PAD.encode(tag(site, key, expires))
    )
}

/// Whether a cookie value is a session this server signed, with the
/// current API key, that has not ended at `now`.
fn session_is_valid(site: &Site, value: &str, now: u64) -> bool {
    let Some(key) = &site.api_key else {
        return false;
    };
    let Some((expires, signature)) = value.split_once('.') else {
        return false;
    };
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    let mut message = format!("{expires}\n").into_bytes();
    message.extend_from_slice(key.as_bytes());
    site.secret
        .verify_tag(OPERATOR_COOKIE_CONTEXT, &message, &signature)
        && expires.parse::<u64>().is_ok_and(|expires| now < expires)
}

/// Whether `request` carries a valid operator session.
#[must_use]
pub fn is_operator(request: &HttpRequest, site: &Site) -> bool {
    session_ends(request, site).is_some()
}

/// When `request`'s operator session ends (Unix seconds), if it carries a
/// valid one: a long-lived answer, such as the dashboard's event stream,
/// ends then too.
#[must_use]
pub fn session_ends(request: &HttpRequest, site: &Site) -> Option<u64> {
    let cookie = request.cookie(OPERATOR_COOKIE)?;
    let value = cookie.value();
    session_is_valid(site, value, protocol::token::now_secs())
        .then(|| value.split_once('.')?.0.parse().ok())
        .flatten()
}

fn session_cookie(value: String, secure: bool, max_age: time::Duration) -> Cookie<'static> {
    Cookie::build(OPERATOR_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(max_age)
        .finish()
}

/// `GET /operator`: the sign-in form, or the sign-out button for a signed-in
/// operator.
pub async fn page(request: HttpRequest, site: web::Data<Site>) -> Result<HttpResponse, AppError> {
    html_with(
        StatusCode::OK,
        &OperatorPage {
            signed_in: is_operator(&request, &site),
            enabled: site.api_key.is_some(),
            error: None,
        },
    )
}

/// The sign-in form's field.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    key: String,
}

/// `POST /operator`: checks the pasted key (in constant time); on success
/// sets the session cookie and leads to the announcement form, else shows
/// the form again with a 401.
pub async fn sign_in(
    request: HttpRequest,
    form: web::Form<SignInForm>,
    site: web::Data<Site>,
) -> Result<HttpResponse, AppError> {
    site.origin.check_same_origin(&request)?;
    let Some(key) = site
        .api_key
        .as_ref()
        .filter(|key| key.matches(form.key.trim()))
    else {
        let error = if site.api_key.is_some() {
            "That is not the API key."
        } else {
            "This server has no API key configured (api_key), so nobody can sign in."
        };
        return html_with(
            StatusCode::UNAUTHORIZED,
            &OperatorPage {
                signed_in: false,
                enabled: site.api_key.is_some(),
                error: Some(error),
            },
        );
    };
    let expires = protocol::token::now_secs().saturating_add(OPERATOR_SESSION.as_secs());
    let max_age = time::Duration::seconds(i64::try_from(OPERATOR_SESSION.as_secs()).unwrap_or(0));
    let mut response = see_other(AFTER_SIGN_IN.to_owned());
    response
        .add_cookie(&session_cookie(
            sign_session(&site, key, expires),
            site.origin.is_https(),
            max_age,
        ))
        .map_err(|_| AppError::Cookie)?;
    Ok(response)
}

/// `POST /operator/sign-out`: drops the session cookie; back to the start.
pub async fn sign_out(
    request: HttpRequest,
    site: web::Data<Site>,
) -> Result<HttpResponse, AppError> {
    site.origin.check_same_origin(&request)?;
    let mut response = see_other("/".to_owned());
    response
        .add_removal_cookie(&session_cookie(
            String::new(),
            site.origin.is_https(),
            time::Duration::ZERO,
        ))
        .map_err(|_| AppError::Cookie)?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    fn site(api_key: &str) -> Site {
        Site::new(&Settings {
            secret: "s".repeat(32),
            api_key: api_key.to_owned(),
            ..Settings::default()
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_session_is_valid_until_it_ends_and_only_with_its_key() {
        let site = site(&"k".repeat(32));
        let Some(key) = &site.api_key else {
            panic!("a key")
        };
        let value = sign_session(&site, key, 1000);
        assert!(session_is_valid(&site, &value, 999));
        assert!(!session_is_valid(&site, &value, 1000));
        // Another key (rotated) or no key at all signs everyone out.
        assert!(!session_is_valid(&self::site(&"j".repeat(32)), &value, 0));
        assert!(!session_is_valid(&self::site(""), &value, 0));
        // A later expiry with the old tag is a forgery.
        let (_, tag) = value.split_once('.').unwrap_or_default();
        assert!(!session_is_valid(&site, &format!("9999.{tag}"), 0));
        for bad in ["", "1000", "1000.", "x.y", "1000.!!"] {
            assert!(!session_is_valid(&site, bad, 0), "{bad}");
        }
    }

    #[test]
    fn a_user_cookie_is_not_an_operator_session() {
        let site = site(&"k".repeat(32));
        let user = protocol::UserId::new("1000").unwrap_or_else(|e| panic!("{e}"));
        let value = crate::identity::sign_user(&user, &site.secret);
        assert!(!session_is_valid(&site, &value, 0));
    }
}
