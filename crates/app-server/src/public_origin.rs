//! The origin browsers reach this server by (`public_origin`): which `Host`
//! headers it answers, which `Origin` a form may come from, and whether
//! cookies must be `Secure`.
//!
//! Answering only its own host keeps the server from serving pages under
//! a name an attacker points at it (DNS rebinding: a page on another site
//! whose name resolves to this server could otherwise read its answers as
//! same-origin). The cross-site check of forms compares `Origin` with this
//! setting, never with `Host` or `X-Forwarded-*`, which the client writes.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::AppError;
use crate::site::Site;

/// Paths answered whatever the `Host`: probes (a load balancer's, Docker's)
/// and Prometheus address the server by its IP address or container name;
/// the health answers hold nothing a page could misuse, and `/metrics`
/// needs the API key.
const ANY_HOST_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The names of this machine's loopback interface that browsers use
/// interchangeably in development: `public_origin` naming one allows both.
const LOOPBACK_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// `public_origin`, parsed: a scheme, one or two host names, a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicOrigin {
    /// `http` or `https`.
    scheme: &'static str,
    /// The host names accepted, lowercase: the configured one, plus the
    /// other loopback name when it is one of [`LOOPBACK_NAMES`].
    names: Vec<String>,
    /// The port, explicit or the scheme's default.
    port: u16,
    /// The origin as configured, normalized (lowercase, no trailing `/`).
    text: String,
}

impl PublicOrigin {
    /// Parses `http(s)://host[:port]` (a trailing `/` is allowed); `None`
    /// for anything else, a path or credentials included.
    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim().trim_end_matches('/').to_ascii_lowercase();
        let (scheme, rest) = if let Some(rest) = value.strip_prefix("https://") {
            ("https", rest)
        } else {
            ("http", value.strip_prefix("http://")?)
        };
        let (name, port) = split_authority(rest)?;
        let port = port.unwrap_or(default_port(scheme));
        let names = if LOOPBACK_NAMES.contains(&name) {
            LOOPBACK_NAMES.map(str::to_owned).to_vec()
        } else {
            vec![name.to_owned()]
        };
        Some(Self {
            scheme,
            names,
            port,
            text: value.clone(),
        })
    }

    /// Whether cookies must be `Secure`: the origin is `https`.
    #[must_use]
    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }

    /// The origin as configured.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether a `Host` header (`host[:port]`) names this server.
    #[must_use]
    pub fn accepts_host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        split_authority(&host).is_some_and(|(name, port)| {
            self.names.iter().any(|n| n == name)
                && port.unwrap_or(default_port(self.scheme)) == self.port
        })
    }

    /// Whether an `Origin` header (`scheme://host[:port]`) is this server's
    /// own origin (or, for a loopback origin, the other loopback name's).
    #[must_use]
    pub fn accepts_origin(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        origin
            .strip_prefix(self.scheme)
            .and_then(|rest| rest.strip_prefix("://"))
            .is_some_and(|authority| self.accepts_host(authority))
    }
}

impl PublicOrigin {
    /// Refuses a form posted from another site's page (cross-site request
    /// forgery): `Origin`, when present, must be this origin; without it,
    /// `Sec-Fetch-Site` must be `same-origin` or `none` (typed in or
    /// bookmarked). A request with neither comes from no browser page (a
    /// script, curl) and carries no cookie it was not given on purpose.
    ///
    /// # Errors
    /// [`AppError::CrossSite`] when the request came from another site.
    pub fn check_same_origin(&self, request: &HttpRequest) -> Result<(), AppError> {
        let headers = request.headers();
        let allowed = match (headers.get(header::ORIGIN), headers.get(FETCH_SITE)) {
            (Some(origin), _) => origin.to_str().is_ok_and(|o| self.accepts_origin(o)),
            (None, Some(site)) => site.to_str().is_ok_and(|s| {
                s.eq_ignore_ascii_case("same-origin") || s.eq_ignore_ascii_case("none")
            }),
            (None, None) => true,
        };
        if allowed {
            Ok(())
        } else {
            Err(AppError::CrossSite)
        }
    }
}

/// The Fetch Metadata header that says which site started a request.
const FETCH_SITE: &str = "sec-fetch-site";

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// Splits `host[:port]` (the host may be a bracketed IPv6 address); `None`
/// when the host is empty or holds a character no host name has, or the
/// port is not a number.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (name, rest) = authority.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(port) => (name, Some(port)),
            None if rest.is_empty() => (name, None),
            None => return None,
        }
    } else {
        match authority.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        }
    };
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b));
    if !valid_name {
        return None;
    }
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok()?),
        None => None,
    };
    Some((name, port))
}

/// Middleware: answers 421 Misdirected Request to a request whose `Host`
/// (or HTTP/2 authority) is not the public origin's, except on
/// [`ANY_HOST_PATHS`]. Needs `web::Data<Site>` in the app data.
///
/// # Errors
/// Only those of the wrapped service.
pub async fn refuse_misdirected(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let accepted = ANY_HOST_PATHS.contains(&request.path()) || {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        match (request.app_data::<web::Data<Site>>(), host) {
            (Some(site), Some(host)) => site.origin.accepts_host(host),
            _ => false,
        }
    };
    if accepted {
        return Ok(next.call(request).await?.map_into_boxed_body());
    }
    let response = HttpResponse::build(StatusCode::MISDIRECTED_REQUEST)
        .content_type(ContentType::plaintext())
        .body("421 Misdirected Request: this server does not answer for that host.\n");
    Ok(request.into_response(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(value: &str) -> PublicOrigin {
        PublicOrigin::parse(value).unwrap_or_else(|| panic!("{value}"))
    }

    #[test]
    fn only_scheme_host_and_port_parse() {
        for ok in [
            "http://localhost:5001",
            "https://chat.example",
            "https://chat.example/",
            "HTTPS://Chat.Example:8443",
            "http://[::1]:5001",
        ] {
            assert!(PublicOrigin::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "localhost:5001",
            "ws://localhost:5001",
            "http://",
            "http://a/path",
            "http://user@a",
            "http://a:port",
            "http://a:70000",
            "http://a b",
        ] {
            assert!(PublicOrigin::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_host_must_match_name_and_port() {
        let o = origin("https://chat.example");
        assert!(o.accepts_host("chat.example"));
        assert!(o.accepts_host("CHAT.example:443"));
        assert!(!o.accepts_host("chat.example:8443"));
        assert!(!o.accepts_host("evil.example"));
        assert!(!o.accepts_host("chat.example.evil.example"));
        assert!(!o.accepts_host("localhost"));
        assert!(!o.accepts_host(""));
    }

    #[test]
    fn a_loopback_origin_accepts_both_loopback_names_on_its_port() {
        let o = origin("http://localhost:5001");
        assert!(o.accepts_host("localhost:5001"));
        assert!(o.accepts_host("127.0.0.1:5001"));
        assert!(!o.accepts_host("127.0.0.1:5002"));
        assert!(!o.accepts_host("localhost"));
        assert!(!o.accepts_host("example.com:5001"));
        assert!(o.accepts_origin("http://127.0.0.1:5001"));
        assert!(!o.accepts_origin("https://localhost:5001"));
    }

    #[test]
    fn the_origin_must_match_scheme_host_and_port() {
        let o = origin("https://chat.example");
        assert!(o.accepts_origin("https://chat.example"));
        assert!(!o.accepts_origin("http://chat.example"));
        assert!(!o.accepts_origin("https://chat.example:8443"));
        assert!(!o.accepts_origin("https://evil.example"));
        assert!(!o.accepts_origin("null"));
        assert!(o.is_https());
        assert!(!origin("http://localhost:5001").is_https());
    }
}
