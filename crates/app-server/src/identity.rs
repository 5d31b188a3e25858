//! Who a browser is: a random [`UserId`] kept in a signed cookie
//! (`duplex_user`), so that the user stays the same across pages, tabs and
//! reconnections without an account.
//!
//! The cookie's value is `ID.TAG`, `TAG` being base64url (no padding) of
//! the secret's HMAC tag of `ID` under [`USER_COOKIE_CONTEXT`]. A browser
//! can send only an id this server signed: a missing, altered or foreign
//! cookie gets a fresh id, never someone else's.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use protocol::{Secret, UserId};

/// The cookie's name over plain HTTP (development).
pub const USER_COOKIE: &str = "duplex_user";

/// The cookie's name over HTTPS. The `__Host-` prefix makes browsers
/// refuse it unless it is `Secure`, for `/` and without a `Domain`: a
/// sibling subdomain cannot plant its own copy on a visitor.
pub const SECURE_USER_COOKIE: &str = "__Host-duplex_user";

/// The cookie's name: [`SECURE_USER_COOKIE`] when the public origin is
/// https, [`USER_COOKIE`] otherwise.
#[must_use]
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_USER_COOKIE
    } else {
        USER_COOKIE
    }
}

/// What the cookie's tag is computed for: no other tag of the same secret
/// (a token's signature, the operator cookie's) can pass for it.
pub const USER_COOKIE_CONTEXT: &[u8] = b"duplex cookie v1\n";

/// How long a browser keeps its id, in days: the longest lifetime browsers
/// grant a cookie (Chrome caps it at 400 days).
const USER_COOKIE_MAX_AGE_DAYS: i64 = 400;

/// The cookie value for `user`: `ID.TAG`.
#[must_use]
pub fn sign_user(user: &UserId, secret: &Secret) -> String {
    let tag = secret.tag(USER_COOKIE_CONTEXT, user.as_str().as_bytes());
    format!("{user}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// The user a cookie value names, if this server signed it.
#[must_use]
pub fn verify_user(value: &str, secret: &Secret) -> Option<UserId> {
    let (id, tag) = value.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    // The tag first: nothing unsigned is parsed.
    if !secret.verify_tag(USER_COOKIE_CONTEXT, id.as_bytes(), &tag) {
        return None;
    }
    UserId::new(id).ok()
}

/// The user of `request`'s valid user cookie (named as [`cookie_name`]
/// says for `secure`), if it has one.
#[must_use]
pub fn user_of(request: &HttpRequest, secret: &Secret, secure: bool) -> Option<UserId> {
    verify_user(request.cookie(cookie_name(secure))?.value(), secret)
}

/// The user cookie for `user`: HttpOnly (page scripts never need it: they
/// get tokens), SameSite=Lax (sent when following a link to a room, not on
/// other sites' requests), `Secure` and `__Host-` named when the public
/// origin is https.
#[must_use]
pub fn user_cookie(user: &UserId, secret: &Secret, secure: bool) -> Cookie<'static> {
    Cookie::build(cookie_name(secure), sign_user(user, secret))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(time::Duration::days(USER_COOKIE_MAX_AGE_DAYS))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(fill: &str) -> Secret {
        Secret::new(&fill.repeat(32)).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_signed_user_verifies_and_nothing_else_does() {
        let user = UserId::generate();
        let value = sign_user(&user, &secret("s"));
        assert_eq!(verify_user(&value, &secret("s")), Some(user.clone()));
        assert_eq!(verify_user(&value, &secret("t")), None);
        let other = UserId::generate();
        let (_, tag) = value.split_once('.').unwrap_or_default();
        assert_eq!(verify_user(&format!("{other}.{tag}"), &secret("s")), None);
        for bad in ["", ".", "abc", &format!("{user}."), &format!("{user}.!!")] {
            assert_eq!(verify_user(bad, &secret("s")), None, "{bad}");
        }
    }

    #[test]
    fn a_token_style_tag_is_not_a_cookie_tag() {
        let user = UserId::generate();
        let tag = secret("s").tag(b"duplex token v1\n", user.as_str().as_bytes());
        let forged = format!("{user}.{}", URL_SAFE_NO_PAD.encode(tag));
        assert_eq!(verify_user(&forged, &secret("s")), None);
    }

    #[test]
    fn the_cookie_is_http_only_lax_and_long_lived() {
        let cookie = user_cookie(&UserId::generate(), &secret("s"), true).to_string();
        for part in [
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Secure",
            "Max-Age=34560000",
        ] {
            assert!(cookie.contains(part), "{cookie} lacks {part}");
        }
        assert!(cookie.starts_with("__Host-duplex_user="), "{cookie}");
        assert!(!cookie.contains("Domain"), "{cookie}");
        let plain = user_cookie(&UserId::generate(), &secret("s"), false).to_string();
        assert!(!plain.contains("Secure"), "{plain}");
        assert!(plain.starts_with("duplex_user="), "{plain}");
    }
}
