//! The HTTP phase of a connection (RFC 6455, section 4.2), done by hand.
//!
//! tungstenite's `accept_hdr` writes nothing back to a request it cannot
//! parse or does not like: the client sees a closed socket and no reason.
//! Here the request head is read with a bound on its size, checked, and
//! always answered: a refusal is a complete HTTP/1.1 response with a short
//! text body and `Connection: close`, written and flushed before the socket
//! is closed; an acceptance is the `101` written here, after which the
//! socket and whatever the client sent behind its request go to the
//! WebSocket layer.
//!
//! What each refusal looks like is listed in `docs/outcomes.md`.

use std::io;
use std::time::Duration;

use base64::Engine as _;
use protocol::SUBPROTOCOL;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::handshake::server::Request;
use tokio_tungstenite::tungstenite::http::{
    HeaderName, HeaderValue, Method, StatusCode, Uri, Version, header,
};

use crate::component::Rejection;

/// The longest request head read, in bytes. Browsers send 500 bytes to a
/// few KiB (cookies); anything longer gets 431 rather than memory.
pub(crate) const MAX_HEAD_BYTES: usize = 8 * 1024;

/// The most header fields a request head may have; more get 431.
const MAX_HEADERS: usize = 64;

/// The buffer of the first read, in bytes: a typical upgrade fits, a larger
/// head grows it up to [`MAX_HEAD_BYTES`].
const FIRST_READ_BYTES: usize = 2 * 1024;

/// How long writing an answer may take, and then how long input is read
/// and thrown away after a refusal. A socket closed with unread input
/// sends a reset, which can destroy the answer before the client reads it;
/// reading until the client closes (or this time runs out) avoids that.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// The most bytes thrown away after a refusal before closing anyway.
const LINGER_BYTES: u64 = 64 * 1024;

/// A request head, read and parsed.
#[derive(Debug)]
pub(crate) struct Head {
    /// The request, as the component's `on_handshake` sees it.
    pub request: Request,
    /// Bytes the client sent after the head: the start of its first
    /// frames, which must not be lost.
    pub rest: Vec<u8>,
}

/// A refusal, as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// Why, in a few words: the response body, and the log line.
    pub reason: String,
    /// Header fields the status calls for (`Allow` with 405, `Upgrade` or
    /// `Sec-WebSocket-Version` with 426).
    pub headers: &'static [(&'static str, &'static str)],
}

impl Refusal {
    /// A refusal with `status`, `reason` and no extra header field.
    pub(crate) fn new(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
            headers: &[],
        }
    }

    fn with_headers(mut self, headers: &'static [(&'static str, &'static str)]) -> Self {
        self.headers = headers;
        self
    }

    /// The whole response: status line, header fields, body.
    fn to_bytes(&self) -> Vec<u8> {
        // A component may name any number; what is not an error status
        // would read as success (or, for 101, as an upgrade), so it is sent
        // as 403.
        let status = StatusCode::from_u16(self.status)
            .ok()
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or(StatusCode::FORBIDDEN);
        let body = format!("{}\n", self.reason);
        let mut response = format!(
            "HTTP/1.1 {} {}\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             X-Content-Type-Options: nosniff\r\n\
             Content-Length: {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error"),
            body.len(),
        );
        let mut connection_close = true;
        for (name, value) in self.headers {
            if name.eq_ignore_ascii_case("connection") {
                connection_close = false;
            }
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        if connection_close {
            response.push_str("Connection: close\r\n");
        }
        response.push_str("\r\n");
        response.push_str(&body);
        response.into_bytes()
    }
}

impl From<Rejection> for Refusal {
    fn from(rejection: Rejection) -> Self {
        Self::new(rejection.status, rejection.reason)
    }
}

/// Why the HTTP phase ended without an upgrade.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The request is refused with this answer.
    Refused(Refusal),
    /// The client closed, or the socket failed, before its request was
    /// complete: there is nobody to answer.
    Gone(io::Error),
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl From<Rejection> for Failure {
    fn from(rejection: Rejection) -> Self {
        Self::Refused(rejection.into())
    }
}

/// Reads one request head from `stream`, at most [`MAX_HEAD_BYTES`].
///
/// # Errors
/// [`Failure::Gone`] when the stream ends first; [`Failure::Refused`] with
/// 400 for a head that is not HTTP/1.x, 431 for one too long.
pub(crate) async fn read_head(stream: &mut TcpStream) -> Result<Head, Failure> {
    let mut buf = Vec::with_capacity(FIRST_READ_BYTES);
    loop {
        let before = buf.len();
        let room = MAX_HEAD_BYTES - before;
        let read = (&mut *stream)
            .take(room as u64)
            .read_buf(&mut buf)
            .await
            .map_err(Failure::Gone)?;
        // `room` is never zero here: a full buffer is refused below.
        if read == 0 {
            return Err(Failure::Gone(io::ErrorKind::UnexpectedEof.into()));
        }
        // Parsing only once the head can be complete keeps a client that
        // sends a byte at a time from making the server parse 8 KiB
        // thousands of times; the first read is parsed at once so that
        // what is not HTTP at all is refused without waiting.
        if (before == 0 || ends_head(&buf[before.saturating_sub(3)..]))
            && let Some((request, len)) = parse(&buf)?
        {
            let rest = buf.split_off(len);
            return Ok(Head { request, rest });
        }
        if buf.len() == MAX_HEAD_BYTES {
            return Err(Refusal::new(
                431,
                format!("the request head is longer than {MAX_HEAD_BYTES} bytes"),
            )
            .into());
        }
    }
}

/// Whether `bytes` hold the blank line that ends a head (`\n\r\n`, or
/// `\n\n`, which HTTP parsers accept as well).
fn ends_head(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == b"\n\n") || bytes.windows(3).any(|w| w == b"\n\r\n")
}

/// Parses `buf` as a request head: `None` while it is incomplete, else the
/// request and the head's length.
fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal::new(
                431,
                format!("the request has more than {MAX_HEADERS} header fields"),
            ));
        }
        Err(e) => return Err(Refusal::new(400, format!("malformed HTTP request: {e}"))),
    };
    let malformed = |what: &str| Refusal::new(400, format!("malformed HTTP request: {what}"));
    let mut request = Request::new(());
    *request.method_mut() = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes())
        .map_err(|_| malformed("invalid method"))?;
    *request.uri_mut() = Uri::try_from(parsed.path.unwrap_or_default())
        .map_err(|_| malformed("invalid request target"))?;
    *request.version_mut() = match parsed.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    for field in parsed.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| malformed("invalid header name"))?;
        let value =
            HeaderValue::from_bytes(field.value).map_err(|_| malformed("invalid header value"))?;
        request.headers_mut().append(name, value);
    }
    Ok(Some((request, len)))
}

/// Checks what RFC 6455 requires of an upgrade request, in this order:
/// GET (else 405), HTTP/1.1 (400), a Host (400), `Upgrade: websocket`
/// (else 426 naming it), `Connection: upgrade` (400), version 13 (else
/// 426 naming it), a valid key (400). Returns the key.
///
/// A request without `Upgrade: websocket` is a plain HTTP request (a
/// browser or a health check visiting the URL): 426 tells it which
/// protocol this endpoint speaks. One that asks for WebSocket but lacks
/// the `Connection` token is a broken upgrade: 400.
pub(crate) fn check_upgrade(request: &Request) -> Result<&HeaderValue, Refusal> {
    if request.method() != Method::GET {
        return Err(
            Refusal::new(405, "WebSocket upgrades use GET").with_headers(&[("Allow", "GET")])
        );
    }
    if request.version() != Version::HTTP_11 {
        return Err(Refusal::new(400, "WebSocket upgrades need HTTP/1.1"));
    }
    // Exactly one, as RFC 9112 (3.2) requires: two could be read one way
    // here and another way by a proxy in front.
    if only_value(request, &header::HOST).is_none() {
        return Err(Refusal::new(
            400,
            "the request needs exactly one Host header field",
        ));
    }
    if !has_token(request, &header::UPGRADE, "websocket") {
        return Err(Refusal::new(426, "this endpoint speaks WebSocket only")
            .with_headers(&[("Upgrade", "websocket"), ("Connection", "Upgrade, close")]));
    }
    if !has_token(request, &header::CONNECTION, "upgrade") {
        return Err(Refusal::new(
            400,
            "a WebSocket upgrade needs the upgrade token in its Connection header field",
        ));
    }
    let version = only_value(request, &header::SEC_WEBSOCKET_VERSION);
    if version.is_none_or(|v| v.as_bytes().trim_ascii() != b"13") {
        return Err(Refusal::new(426, "this server speaks WebSocket version 13")
            .with_headers(&[("Sec-WebSocket-Version", "13")]));
    }
    let key = only_value(request, &header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| Refusal::new(400, "the request needs exactly one Sec-WebSocket-Key"))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(key.as_bytes().trim_ascii());
    if decoded.map_or(true, |bytes| bytes.len() != 16) {
        return Err(Refusal::new(
            400,
            "Sec-WebSocket-Key must be the base64 encoding of 16 bytes",
        ));
    }
    Ok(key)
}

/// The subprotocol to select: [`SUBPROTOCOL`] when the client offers it,
/// none when it offers nothing.
///
/// Only [`SUBPROTOCOL`] is ever written back. Browsers can pass nothing but
/// subprotocols with an upgrade, so they carry other values there too (a
/// token, `duplex.token.…`); echoing one would hand it to whatever reads
/// the response, and naming it in a refusal would write it into logs.
///
/// # Errors
/// 400 when subprotocols are offered and [`SUBPROTOCOL`] is not one of them.
pub(crate) fn select_subprotocol(request: &Request) -> Result<Option<&'static str>, Refusal> {
    let mut offered = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .peekable();
    if offered.peek().is_none() {
        return Ok(None);
    }
    if offered.any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|p| p.trim_ascii() == SUBPROTOCOL.as_bytes())
    }) {
        return Ok(Some(SUBPROTOCOL));
    }
    Err(Refusal::new(
        400,
        format!("none of the offered subprotocols is {SUBPROTOCOL}"),
    ))
}

/// Writes the `101 Switching Protocols` for `key`, selecting `subprotocol`.
///
/// # Errors
/// When the socket cannot be written.
pub(crate) async fn accept(
    stream: &mut TcpStream,
    key: &HeaderValue,
    subprotocol: Option<&str>,
) -> io::Result<()> {
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes().trim_ascii()),
    );
    if let Some(subprotocol) = subprotocol {
        response.push_str(&format!("Sec-WebSocket-Protocol: {subprotocol}\r\n"));
    }
    response.push_str("\r\n");
    stream.write_all(response.as_bytes()).await?;
    stream.flush().await
}

/// Writes `refusal`, ends the write side, and reads what the client still
/// sends until it closes, all within [`ANSWER_TIMEOUT`]; the caller then
/// drops the socket.
pub(crate) async fn refuse(stream: &mut TcpStream, refusal: &Refusal) {
    let answer = async {
        stream.write_all(&refusal.to_bytes()).await?;
        stream.flush().await?;
        stream.shutdown().await?;
        let mut sink = tokio::io::sink();
        tokio::io::copy(&mut (&mut *stream).take(LINGER_BYTES), &mut sink).await
    };
    let _ = tokio::time::timeout(ANSWER_TIMEOUT, answer).await;
}

/// How long a connection over its address's limit is kept: long enough for
/// its 429 to be written and its request to be read away (so that closing
/// sends no reset that could destroy the answer), short enough that a
/// flood of such connections cannot pile up open sockets.
pub(crate) const OVER_LIMIT_LINGER: Duration = Duration::from_millis(250);

/// [`refuse`] at once, without waiting for the request, within
/// [`OVER_LIMIT_LINGER`]: for a connection over its address's limit, which
/// must cost no more than its accept.
pub(crate) async fn refuse_now(stream: &mut TcpStream, refusal: &Refusal) {
    let answer = async {
        stream.write_all(&refusal.to_bytes()).await?;
        stream.flush().await?;
        stream.shutdown().await?;
        let mut sink = tokio::io::sink();
        tokio::io::copy(&mut (&mut *stream).take(LINGER_BYTES), &mut sink).await
    };
    let _ = tokio::time::timeout(OVER_LIMIT_LINGER, answer).await;
}

/// Whether any `name` field holds `token` in its comma-separated list,
/// ignoring case.
fn has_token(request: &Request, name: &HeaderName, token: &str) -> bool {
    request.headers().get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// The value of `name` if the request has exactly one such field.
fn only_value<'r>(request: &'r Request, name: &HeaderName) -> Option<&'r HeaderValue> {
    let mut values = request.headers().get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                           Connection: keep-alive, Upgrade\r\n\
                           Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                           Sec-WebSocket-Version: 13\r\n";

    fn request(head: &str) -> Request {
        match parse(format!("{head}\r\n").as_bytes()) {
            Ok(Some((request, _))) => request,
            other => panic!("{head:?} does not parse: {other:?}"),
        }
    }

    fn status(head: &str) -> u16 {
        check_upgrade(&request(head)).map_or_else(|r| r.status, |_| 101)
    }

    #[test]
    fn a_complete_upgrade_passes_and_its_key_is_returned() {
        let request = request(UPGRADE);
        let key = check_upgrade(&request).map(HeaderValue::as_bytes);
        assert_eq!(key, Ok(&b"dGhlIHNhbXBsZSBub25jZQ=="[..]));
    }

    #[test]
    fn each_missing_piece_gets_its_status() {
        assert_eq!(status(&UPGRADE.replace("GET", "POST")), 405);
        assert_eq!(status(&UPGRADE.replace("HTTP/1.1", "HTTP/1.0")), 400);
        assert_eq!(status(&UPGRADE.replace("Host: x\r\n", "")), 400);
        assert_eq!(
            status(&UPGRADE.replace("Upgrade: websocket", "Upgrade: h2c")),
            426
        );
        assert_eq!(
            status(&UPGRADE.replace("keep-alive, Upgrade", "keep-alive")),
            400
        );
        assert_eq!(status(&UPGRADE.replace("Version: 13", "Version: 8")), 426);
        assert_eq!(
            status(&UPGRADE.replace("Sec-WebSocket-Version: 13\r\n", "")),
            426
        );
        assert_eq!(
            status(&UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "abc")),
            400
        );
        // Fifteen bytes, and sixteen without padding.
        assert_eq!(
            status(&UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25j")),
            400
        );
        assert_eq!(
            status(&UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ")),
            400
        );
        assert_eq!(
            status(&format!(
                "{UPGRADE}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            )),
            400
        );
    }

    #[test]
    fn header_names_and_tokens_ignore_case() {
        let shouting = UPGRADE
            .replace("Upgrade: websocket", "UPGRADE: WebSocket")
            .replace("Connection:", "connection:");
        assert_eq!(status(&shouting), 101);
    }

    #[test]
    fn only_the_duplex_subprotocol_is_ever_selected() {
        let offer = |value: &str| {
            select_subprotocol(&request(&format!(
                "{UPGRADE}Sec-WebSocket-Protocol: {value}\r\n"
            )))
        };
        assert_eq!(select_subprotocol(&request(UPGRADE)), Ok(None));
        assert_eq!(
            offer(&format!("duplex.token.SECRET, {SUBPROTOCOL}")),
            Ok(Some(SUBPROTOCOL))
        );
        let refused = offer("duplex.token.SECRET, mqtt");
        assert_eq!(refused.as_ref().map_err(|r| r.status), Err(400));
        assert!(refused.is_err_and(|r| !r.reason.contains("SECRET")));
        // Offers spread over several header fields count too.
        let two_fields = request(&format!(
            "{UPGRADE}Sec-WebSocket-Protocol: duplex.token.SECRET\r\n\
             Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n"
        ));
        assert_eq!(select_subprotocol(&two_fields), Ok(Some(SUBPROTOCOL)));
    }

    #[test]
    fn an_incomplete_head_asks_for_more_and_garbage_is_refused() {
        assert!(matches!(
            parse(b"GET /ws HTTP/1.1\r\nHost: x\r\n"),
            Ok(None)
        ));
        let garbage = parse(b"\x16\x03\x01\x02\x00");
        assert!(matches!(garbage, Err(Refusal { status: 400, .. })));
    }

    #[test]
    fn a_refusal_is_a_complete_response_that_closes() {
        let refusal =
            Refusal::new(405, "WebSocket upgrades use GET").with_headers(&[("Allow", "GET")]);
        let text = String::from_utf8(refusal.to_bytes()).unwrap_or_default();
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nAllow: GET\r\n"));
        assert!(text.contains("\r\nConnection: close\r\n"));
        assert!(text.contains("\r\nContent-Length: 27\r\n"));
        assert!(text.ends_with("\r\n\r\nWebSocket upgrades use GET\n"));
        let upgrade_is_not_a_refusal = Refusal::new(101, "no");
        let text = String::from_utf8(upgrade_is_not_a_refusal.to_bytes()).unwrap_or_default();
        assert!(text.starts_with("HTTP/1.1 403 "), "{text}");
    }

    #[test]
    fn the_end_of_a_head_is_found_across_reads() {
        assert!(ends_head(b"\r\n\r\n"));
        assert!(ends_head(b"\n\n"));
        assert!(!ends_head(b"\r\n\r"));
    }
}
