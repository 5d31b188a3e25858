//! Refusing browsers from unknown origins, as Ratchet's `OriginCheck` does.

use std::future::Future;

use tokio_tungstenite::tungstenite::http::{Extensions, header};
use tokio_tungstenite::tungstenite::{Message, handshake::server::Request};

use crate::component::{Component, Connection, ConnectionError, Rejection};

/// Wraps a component and refuses, with HTTP 403, every upgrade whose `Origin`
/// header is not in the allowlist; all other callbacks pass through.
///
/// Browsers always send `Origin` on WebSocket upgrades and pages cannot
/// forge it, so this stops other sites' pages from using a visitor's
/// browser to connect (cross-site WebSocket hijacking). Requests without
/// `Origin` come from non-browser clients, which could send any value
/// anyway, so they pass.
#[derive(Debug)]
pub struct OriginCheck<C> {
    inner: C,
    /// Normalized allowed origins; empty when `*` allows every origin.
    allowed: Vec<String>,
    allow_any: bool,
}

/// Lowercases an origin and drops a trailing slash, so that settings written
/// as `http://LocalHost:5001/` match what browsers send.
fn normalize(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl<C: Component> OriginCheck<C> {
    /// Wraps `inner`, allowing `allowed` origins (`*` allows any).
    pub fn new(inner: C, allowed: &[String]) -> Self {
        Self {
            inner,
            allow_any: allowed.iter().any(|o| o.trim() == "*"),
            allowed: allowed.iter().map(|o| normalize(o)).collect(),
        }
    }

    /// The wrapped component.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

impl<C: Component> Component for OriginCheck<C> {
    fn on_handshake(
        &self,
        request: &Request,
        extensions: &mut Extensions,
    ) -> Result<(), Rejection> {
        if let Some(origin) = request.headers().get(header::ORIGIN)
            && !self.allow_any
        {
            let origin = origin.to_str().map(normalize).unwrap_or_default();
            if !self.allowed.contains(&origin) {
                return Err(Rejection::new(
                    403,
                    format!("origin {origin:?} is not allowed"),
                ));
            }
        }
        self.inner.on_handshake(request, extensions)
    }

    fn on_open(&self, conn: &Connection) -> impl Future<Output = ()> + Send {
        self.inner.on_open(conn)
    }

    fn on_message(&self, conn: &Connection, message: Message) -> impl Future<Output = ()> + Send {
        self.inner.on_message(conn, message)
    }

    fn on_close(&self, conn: &Connection) -> impl Future<Output = ()> + Send {
        self.inner.on_close(conn)
    }

    fn on_error(
        &self,
        conn: &Connection,
        error: &ConnectionError,
    ) -> impl Future<Output = ()> + Send {
        self.inner.on_error(conn, error)
    }

    fn heartbeat_frame(&self) -> Option<Message> {
        self.inner.heartbeat_frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Accept;
    impl Component for Accept {
        async fn on_open(&self, _: &Connection) {}
        async fn on_message(&self, _: &Connection, _: Message) {}
        async fn on_close(&self, _: &Connection) {}
        async fn on_error(&self, _: &Connection, _: &ConnectionError) {}
    }

    fn request(origin: Option<&str>) -> Request {
        let mut builder = Request::builder().uri("/ws");
        if let Some(origin) = origin {
            builder = builder.header(header::ORIGIN, origin);
        }
        builder.body(()).unwrap_or_default()
    }

    fn check(allowed: &[&str], origin: Option<&str>) -> Result<(), u16> {
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        OriginCheck::new(Accept, &allowed)
            .on_handshake(&request(origin), &mut Extensions::new())
            .map_err(|r| r.status)
    }

    #[test]
    fn allowed_origins_pass_case_and_slash_insensitively() {
        let allowed = ["http://localhost:5001/", "http://127.0.0.1:5001"];
        assert_eq!(check(&allowed, Some("http://localhost:5001")), Ok(()));
        assert_eq!(check(&allowed, Some("http://LOCALHOST:5001")), Ok(()));
        assert_eq!(check(&allowed, Some("http://127.0.0.1:5001")), Ok(()));
    }

    #[test]
    fn other_origins_get_403() {
        let allowed = ["http://localhost:5001"];
        assert_eq!(check(&allowed, Some("http://evil.example")), Err(403));
        assert_eq!(check(&allowed, Some("http://localhost:5002")), Err(403));
        assert_eq!(check(&allowed, Some("https://localhost:5001")), Err(403));
        assert_eq!(check(&allowed, Some("null")), Err(403));
        assert_eq!(check(&[], Some("http://localhost:5001")), Err(403));
    }

    #[test]
    fn star_allows_any_origin_and_missing_origin_passes() {
        assert_eq!(check(&["*"], Some("http://evil.example")), Ok(()));
        assert_eq!(check(&["http://localhost:5001"], None), Ok(()));
    }
}
