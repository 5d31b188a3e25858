//! The HTTP phase on the wire: every malformed or refused upgrade gets a
//! complete HTTP answer before the connection closes, and an accepted one
//! a `101` that loses nothing the client sent after it.

mod transport;

use std::time::Duration;

use protocol::SUBPROTOCOL;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use transport::{
    ACCEPT, KEY, REFUSE_HEADER, TEXT, client_frame, exchange, read_frame, read_head, start,
    upgrade_request,
};

/// A request that must be refused: what it is, its bytes, the status, and
/// a header field (name, token) the answer must carry.
struct Refused {
    what: &'static str,
    request: String,
    status: u16,
    header: Option<(&'static str, &'static str)>,
}

fn refused_requests() -> Vec<Refused> {
    let upgrade = upgrade_request("");
    let without = |line: &str| upgrade.replace(line, "");
    [
        (
            "POST",
            upgrade.replace("GET", "POST"),
            405,
            Some(("Allow", "GET")),
        ),
        (
            "a plain GET",
            "GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
            426,
            Some(("Upgrade", "websocket")),
        ),
        (
            "no Connection: upgrade",
            upgrade.replace("Connection: Upgrade", "Connection: keep-alive"),
            400,
            None,
        ),
        (
            "no key",
            without(&format!("Sec-WebSocket-Key: {KEY}\r\n")),
            400,
            None,
        ),
        (
            "a key that is not base64",
            upgrade.replace(KEY, "not a key!"),
            400,
            None,
        ),
        (
            "a key of 15 bytes",
            upgrade.replace(KEY, "dGhlIHNhbXBsZSBub25j"),
            400,
            None,
        ),
        (
            "version 8",
            upgrade.replace("Version: 13", "Version: 8"),
            426,
            Some(("Sec-WebSocket-Version", "13")),
        ),
        (
            "no version",
            without("Sec-WebSocket-Version: 13\r\n"),
            426,
            Some(("Sec-WebSocket-Version", "13")),
        ),
        (
            "HTTP/1.0",
            upgrade.replace("HTTP/1.1", "HTTP/1.0"),
            400,
            None,
        ),
        ("no Host", without("Host: localhost\r\n"), 400, None),
        (
            "two Host fields",
            upgrade_request("Host: elsewhere\r\n"),
            400,
            None,
        ),
        (
            "another path",
            upgrade.replace("/ws", "/elsewhere"),
            404,
            None,
        ),
        (
            "the component's refusal",
            upgrade_request(&format!("{REFUSE_HEADER}: yes\r\n")),
            403,
            None,
        ),
        (
            "only other subprotocols",
            upgrade_request("Sec-WebSocket-Protocol: mqtt, duplex.token.SECRET\r\n"),
            400,
            None,
        ),
        (
            "not HTTP",
            "\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}\u{0}\u{1}\u{fc}\u{3}\u{3}".to_owned(),
            400,
            None,
        ),
        (
            "a head over 8 KiB",
            upgrade_request(&format!("X-Padding: {}\r\n", "p".repeat(16 * 1024))),
            431,
            None,
        ),
        (
            "66 header fields",
            upgrade_request(&"X-Many: 1\r\n".repeat(60)),
            431,
            None,
        ),
    ]
    .into_iter()
    .map(|(what, request, status, header)| Refused {
        what,
        request,
        status,
        header,
    })
    .collect()
}

#[tokio::test]
async fn every_refusal_is_a_complete_http_answer_that_closes_the_connection() {
    let (server, events) = start(|_| {}).await;
    for Refused {
        what,
        request,
        status,
        header,
    } in refused_requests()
    {
        let response = exchange(server.addr, request.as_bytes()).await;
        assert_eq!(response.status, status, "{what}: {}", response.raw);
        assert!(
            response.has_token("Connection", "close"),
            "{what}: {}",
            response.raw
        );
        assert_eq!(
            response.header("Content-Type"),
            Some("text/plain; charset=utf-8"),
            "{what}"
        );
        assert_eq!(
            response.header("Content-Length"),
            Some(response.body.len().to_string().as_str()),
            "{what}: the body is all there"
        );
        assert!(response.body.trim().len() > 5, "{what}: a reason is given");
        if let Some((name, token)) = header {
            assert!(response.has_token(name, token), "{what}: {}", response.raw);
        }
        assert!(!response.raw.contains("SECRET"), "{what}: {}", response.raw);
    }
    assert!(
        events.all().is_empty(),
        "no refused client reaches the component"
    );
}

#[tokio::test]
async fn the_component_refusal_carries_its_status_and_reason() {
    let (server, _) = start(|_| {}).await;
    let request = upgrade_request(&format!("{REFUSE_HEADER}: yes\r\n"));
    let response = exchange(server.addr, request.as_bytes()).await;
    assert_eq!(response.status, 403);
    assert_eq!(response.body, "the test component refuses\n");
}

#[tokio::test]
async fn the_101_carries_the_accept_key_and_selects_only_the_duplex_subprotocol() {
    let (server, _) = start(|_| {}).await;
    let mut tcp = TcpStream::connect(server.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let offer = format!("Sec-WebSocket-Protocol: duplex.token.SECRET, {SUBPROTOCOL}, chat\r\n");
    tcp.write_all(upgrade_request(&offer).as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let response = read_head(&mut tcp).await;
    assert_eq!(response.status, 101, "{}", response.raw);
    assert_eq!(response.header("Sec-WebSocket-Accept"), Some(ACCEPT));
    assert!(response.has_token("Upgrade", "websocket"));
    assert!(response.has_token("Connection", "upgrade"));
    let selected: Vec<_> = response
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Sec-WebSocket-Protocol"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(selected, [SUBPROTOCOL]);
    assert!(!response.raw.contains("SECRET"));

    let plain = transport::open(server.addr).await;
    drop(plain);
    let mut tcp = TcpStream::connect(server.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tcp.write_all(upgrade_request("").as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let response = read_head(&mut tcp).await;
    assert_eq!(response.header("Sec-WebSocket-Protocol"), None);
}

#[tokio::test]
async fn frames_sent_right_behind_the_request_are_not_lost() {
    let (server, events) = start(|_| {}).await;
    let mut tcp = TcpStream::connect(server.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut bytes = upgrade_request("").into_bytes();
    bytes.extend(client_frame(TEXT, b"first"));
    bytes.extend(client_frame(TEXT, b"second"));
    tcp.write_all(&bytes)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read_head(&mut tcp).await.status, 101);
    assert_eq!(read_frame(&mut tcp).await.payload, b"first");
    assert_eq!(read_frame(&mut tcp).await.payload, b"second");
    let events = events
        .wait_for(|e| {
            e.iter()
                .filter(|e| matches!(e, transport::Event::Message(..)))
                .count()
                == 2
        })
        .await;
    assert!(matches!(events[0], transport::Event::Open(_)));
}

#[tokio::test(start_paused = true)]
async fn a_request_that_never_ends_gets_408_once_the_handshake_timeout_is_over() {
    let timeout = Duration::from_secs(3);
    let (server, _) = start(|s| s.handshake_timeout = timeout).await;
    let started = tokio::time::Instant::now();
    let response = exchange(server.addr, b"GET /ws HTTP/1.1\r\nHost: localhost\r\n").await;
    assert_eq!(response.status, 408, "{}", response.raw);
    // Paused time moves only when every task waits, so the answer came
    // exactly when the server's timer fired, not a moment before.
    assert_eq!(started.elapsed(), timeout);
}
