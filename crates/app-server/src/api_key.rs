//! The operator credential (`api_key`) and the check that guards the JSON
//! API with it: `Authorization: Bearer API_KEY`.
//!
//! The key is compared in constant time, so that how long a refusal takes
//! says nothing about how much of a guess was right.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::site::Site;

/// The operator credential. Its `Debug` output is masked so that it cannot
/// reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl ApiKey {
    /// The shortest key accepted, in bytes: as long as the token secret,
    /// far past guessing through the sign-in form or the API.
    pub const MIN_BYTES: usize = 32;

    /// The key from configured text, trimmed; `Ok(None)` when it is empty
    /// (no operator at all).
    ///
    /// # Errors
    /// The key's length when it is set but shorter than
    /// [`ApiKey::MIN_BYTES`].
    pub fn new(value: &str) -> Result<Option<Self>, usize> {
        match value.trim() {
            "" => Ok(None),
            short if short.len() < Self::MIN_BYTES => Err(short.len()),
            key => Ok(Some(Self(key.to_owned()))),
        }
    }

    /// Whether `candidate` is the key, in time that does not depend on
    /// where the two differ.
    #[must_use]
    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }

    /// The key's text, for signing the operator cookie with it.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The bearer credential of a request, if its `Authorization` header is
/// `Bearer VALUE` (the scheme in any case).
fn bearer(request: &ServiceRequest) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credential.trim())
}

/// Middleware for the API scope: a request without the right bearer key
/// gets 401 with `WWW-Authenticate: Bearer` and a JSON error, before its
/// body is read. Needs `web::Data<Site>` in the app data.
///
/// # Errors
/// Only those of the wrapped service.
pub async fn require_api_key(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let key = request
        .app_data::<web::Data<Site>>()
        .and_then(|site| site.api_key.clone());
    let refusal = match (&key, bearer(&request)) {
        (None, _) => Some((
            "api_disabled",
            "this server has no API key configured (api_key), so its API refuses every request",
        )),
        (Some(_), None) => Some((
            "unauthorized",
            "send the API key as Authorization: Bearer API_KEY",
        )),
        (Some(key), Some(candidate)) if !key.matches(candidate) => {
            Some(("unauthorized", "the API key is wrong"))
        }
        (Some(_), Some(_)) => None,
    };
    let Some((code, message)) = refusal else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    let response = HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"duplex\""))
        .json(json!({"error": {"code": code, "message": message}}));
    Ok(request.into_response(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_or_absent_and_masked() {
        assert_eq!(ApiKey::new("  "), Ok(None));
        assert_eq!(ApiKey::new("short"), Err(5));
        let key = ApiKey::new(&format!("{}\n", "k".repeat(32)))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("a key"));
        assert!(key.matches(&"k".repeat(32)));
        assert!(!key.matches(&"k".repeat(31)));
        assert!(!key.matches(&"k".repeat(33)));
        assert!(!key.matches(""));
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
    }
}
