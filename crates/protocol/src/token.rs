//! Connection tokens: who a connection is, signed by the app-server and
//! checked by the ws-server with the same secret.
//!
//! A token is `PAYLOAD.SIGNATURE`, both base64url without padding:
//! `PAYLOAD` is the JSON of [`Claims`] (user id, display name, role, expiry
//! in Unix seconds) and `SIGNATURE` is HMAC-SHA256 over the `PAYLOAD` text
//! with the shared [`Secret`]. Its alphabet (`A-Z a-z 0-9 - _ .`) fits an
//! `Authorization: Bearer` header and a `Sec-WebSocket-Protocol` value
//! alike, which is how browsers, who cannot set headers on a WebSocket,
//! present it.
//!
//! Signing and checking live here, in the one crate both servers use, so
//! the two can never disagree on the format.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::{DisplayName, UserId};

type HmacSha256 = Hmac<Sha256>;

/// The longest token accepted, in bytes: a payload of the longest id and
/// name in four-byte characters, base64-encoded, plus the signature, with
/// room to spare. Anything longer is refused before it is decoded.
pub const MAX_TOKEN_BYTES: usize = 1024;

/// The prefix of the `Sec-WebSocket-Protocol` value that carries a token
/// from a browser: `duplex.token.TOKEN`, offered next to
/// [`crate::SUBPROTOCOL`]. The server never selects it, so the token is not
/// echoed back.
pub const TOKEN_SUBPROTOCOL_PREFIX: &str = "duplex.token.";

/// What a connection may do, as its token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An end user: join rooms, post, leave.
    Member,
    /// A trusted server (the app-server): may also `publish` and
    /// `list_rooms`.
    Service,
    /// A person running the deployment: what a service may do, from a
    /// browser or a script.
    Operator,
}

impl Role {
    /// Whether the role may publish announcements and list rooms.
    #[must_use]
    pub fn is_privileged(self) -> bool {
        matches!(self, Self::Service | Self::Operator)
    }

    /// The role as written in tokens and settings.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Service => "service",
            Self::Operator => "operator",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "member" => Ok(Self::Member),
            "service" => Ok(Self::Service),
            "operator" => Ok(Self::Operator),
            other => Err(format!(
                "unknown role {other:?}; one of member, service, operator"
            )),
        }
    }
}

/// What a token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The user: presence, authorship and "mine" are keyed by it.
    #[serde(rename = "sub")]
    pub user: UserId,
    /// The name shown for the user.
    pub name: DisplayName,
    /// What the connection may do.
    pub role: Role,
    /// When the token stops being accepted, in seconds since the Unix
    /// epoch. A connection opened before then stays open after it.
    #[serde(rename = "exp")]
    pub expires: u64,
}

impl Claims {
    /// Claims for `user` shown as `name` with `role`, valid for `ttl_secs`
    /// from now.
    #[must_use]
    pub fn new(user: UserId, name: DisplayName, role: Role, ttl_secs: u64) -> Self {
        Self {
            user,
            name,
            role,
            expires: now_secs().saturating_add(ttl_secs),
        }
    }
}

/// Seconds since the Unix epoch.
#[must_use]
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Why a token was refused. The text is what the ws-server answers with
/// (HTTP 401) and logs; it never includes the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token was presented.
    #[error("a connection token is required")]
    Missing,
    /// The token is not `PAYLOAD.SIGNATURE` in base64url, is too long, or
    /// its payload is not the claims' JSON.
    #[error("the connection token is malformed")]
    Malformed,
    /// The signature does not match: tampered with, or signed with another
    /// secret.
    #[error("the connection token's signature is invalid")]
    BadSignature,
    /// The token's expiry has passed.
    #[error("the connection token has expired")]
    Expired,
}

/// The secret shared by the app-server and the ws-server: it signs tokens.
/// Its `Debug` output is masked so that it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// No secret was configured.
    #[error("no secret is set")]
    Missing,
    /// The secret is shorter than [`Secret::MIN_BYTES`].
    #[error("the secret must be at least {min} bytes long (got {len})", min = Secret::MIN_BYTES)]
    TooShort {
        /// Its length in bytes.
        len: usize,
    },
}

impl Secret {
    /// The shortest secret accepted, in bytes: what HMAC-SHA256 can use;
    /// [`Secret::generate`] gives 64 hex digits.
    pub const MIN_BYTES: usize = 32;

    /// A secret from configured text; surrounding whitespace (a newline at
    /// the end of a secret file) is not part of it.
    ///
    /// # Errors
    /// [`SecretError`] when it is empty or shorter than
    /// [`Secret::MIN_BYTES`].
    pub fn new(value: &str) -> Result<Self, SecretError> {
        let value = value.trim();
        match value.len() {
            0 => Err(SecretError::Missing),
            len if len < Self::MIN_BYTES => Err(SecretError::TooShort { len }),
            _ => Ok(Self(value.as_bytes().to_vec())),
        }
    }

    /// A new random secret, as 64 hex digits (244 random bits from the
    /// operating system's random source, through two UUIDv4s).
    #[must_use]
    pub fn generate() -> String {
        format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    }

    fn mac(&self, context: &[u8], message: &[u8]) -> HmacSha256 {
        #[allow(clippy::expect_used)]
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(context);
        mac.update(message);
        mac
    }

    /// An HMAC-SHA256 tag of `message` under this secret, for a use named
    /// by `context` (say, `b"cookie"`), so that a tag made for one use is
    /// never valid for another.
    #[must_use]
    pub fn tag(&self, context: &[u8], message: &[u8]) -> Vec<u8> {
        self.mac(context, message).finalize().into_bytes().to_vec()
    }

    /// Whether `tag` is [`Secret::tag`] of `message` for `context`,
    /// compared in constant time.
    #[must_use]
    pub fn verify_tag(&self, context: &[u8], message: &[u8], tag: &[u8]) -> bool {
        self.mac(context, message).verify_slice(tag).is_ok()
    }
}

/// What a token's signature is computed for, so that a token's tag cannot
/// pass for a cookie's, or the other way round.
const TOKEN_CONTEXT: &[u8] = b"duplex token v1\n";

/// Signs `claims` with `secret`.
#[must_use]
pub fn sign(claims: &Claims, secret: &Secret) -> String {
    // Cannot fail: strings, an integer and a unit enum.
    let json = serde_json::to_vec(claims).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.encode(json);
    let signature = URL_SAFE_NO_PAD.encode(secret.tag(TOKEN_CONTEXT, payload.as_bytes()));
    format!("{payload}.{signature}")
}

/// Checks `token` against `secret` and the clock (`now`, in Unix seconds);
/// returns what it says.
///
/// # Errors
/// [`TokenError`] saying why the token is refused. The signature is checked
/// before the payload is decoded, so nothing an attacker writes is parsed
/// unless the secret signed it.
pub fn verify(token: &str, secret: &Secret, now: u64) -> Result<Claims, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?;
    if !secret.verify_tag(TOKEN_CONTEXT, payload.as_bytes(), &signature) {
        return Err(TokenError::BadSignature);
    }
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if claims.expires <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secret() -> Secret {
        Secret::new(&"s".repeat(32)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn claims(expires: u64) -> Claims {
        Claims {
            user: UserId::new("u1").unwrap_or_else(|e| panic!("{e}")),
            name: DisplayName::new("Ada").unwrap_or_else(|e| panic!("{e}")),
            role: Role::Member,
            expires,
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let token = sign(&claims(1000), &secret());
        assert_eq!(verify(&token, &secret(), 999), Ok(claims(1000)));
        assert_eq!(verify(&token, &secret(), 1000), Err(TokenError::Expired));
    }

    #[test]
    fn the_alphabet_fits_headers_and_subprotocols() {
        let token = sign(&claims(u64::MAX), &secret());
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{token}"
        );
    }

    #[test]
    fn another_secret_or_a_changed_payload_is_a_bad_signature() {
        let token = sign(&claims(1000), &secret());
        let other = Secret::new(&"t".repeat(32)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(verify(&token, &other, 0), Err(TokenError::BadSignature));

        // An operator role swapped into the payload, signature kept.
        let (_, signature) = token.split_once('.').unwrap_or_default();
        let mut forged = claims(1000);
        forged.role = Role::Operator;
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap_or_default());
        assert_eq!(
            verify(&format!("{payload}.{signature}"), &secret(), 0),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed_and_nothing_is_missing() {
        assert_eq!(verify("", &secret(), 0), Err(TokenError::Missing));
        for bad in ["abc", "a.b!", "no-dot-here", &"a.".repeat(600)] {
            assert_eq!(
                verify(bad, &secret(), 0),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_signed_payload_that_is_not_claims_is_malformed() {
        let payload = URL_SAFE_NO_PAD.encode(b"{\"sub\":\"u1\"}");
        let signature = URL_SAFE_NO_PAD.encode(secret().tag(TOKEN_CONTEXT, payload.as_bytes()));
        assert_eq!(
            verify(&format!("{payload}.{signature}"), &secret(), 0),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn a_cookie_tag_is_not_a_token_signature() {
        let token = sign(&claims(1000), &secret());
        let (payload, _) = token.split_once('.').unwrap_or_default();
        let cookie_tag = URL_SAFE_NO_PAD.encode(secret().tag(b"cookie", payload.as_bytes()));
        assert_eq!(
            verify(&format!("{payload}.{cookie_tag}"), &secret(), 0),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn secrets_are_long_and_masked() {
        assert_eq!(Secret::new("  \n"), Err(SecretError::Missing));
        assert_eq!(Secret::new("short"), Err(SecretError::TooShort { len: 5 }));
        let generated = Secret::generate();
        assert_eq!(generated.len(), 64);
        assert_ne!(generated, Secret::generate());
        assert!(Secret::new(&format!("{generated}\n")).is_ok());
        assert_eq!(format!("{:?}", secret()), "Secret(***)");
    }

    proptest! {
        #[test]
        fn verifying_any_string_never_panics(token in any::<String>()) {
            let _ = verify(&token, &secret(), 0);
        }

        #[test]
        fn any_changed_byte_is_refused(index in 0usize..400, byte in any::<u8>()) {
            let token = sign(&claims(u64::MAX), &secret());
            let mut bytes = token.into_bytes();
            let index = index % bytes.len();
            prop_assume!(bytes[index] != byte);
            bytes[index] = byte;
            let changed = String::from_utf8_lossy(&bytes).into_owned();
            // base64 refuses non-canonical trailing bits, so no two
            // spellings of one token exist.
            prop_assert!(verify(&changed, &secret(), 0).is_err(), "{changed}");
        }
    }
}
