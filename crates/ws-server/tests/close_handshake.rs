//! The close handshake on the wire (RFC 6455, 5.5.1 and 7.4): a client's
//! close frame is answered with one before the server closes the TCP
//! connection, and a close frame the protocol does not allow is answered
//! with the code that says why.

mod transport;

use tokio::net::TcpStream;
use transport::{CLOSE, Event, expect_eof, open, read_frame, start, write_frame};

/// A close frame's payload: the code, then the reason.
fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

/// Who closes first, from the client's point of view.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Then {
    /// The server answers the client's close frame and closes: the client
    /// has nothing more to send.
    ServerAnswers,
    /// The client broke the protocol: the server closes on its own and
    /// waits for the client to answer its close frame.
    ClientAnswers,
}

/// Sends a close frame with `payload` on a fresh connection and returns
/// the payload of the server's close frame, after checking that the server
/// then closes the connection without sending anything else.
async fn answer_to(server: &transport::Server, payload: &[u8], then: Then) -> Vec<u8> {
    let mut tcp: TcpStream = open(server.addr).await;
    write_frame(&mut tcp, CLOSE, payload).await;
    let frame = read_frame(&mut tcp).await;
    assert_eq!(frame.opcode, CLOSE, "{frame:?}");
    assert!(frame.fin);
    if then == Then::ClientAnswers {
        write_frame(&mut tcp, CLOSE, &frame.payload[..2]).await;
    }
    expect_eof(&mut tcp).await;
    frame.payload
}

#[tokio::test]
async fn a_normal_close_is_answered_with_its_code_and_reason_before_the_connection_ends() {
    let (server, events) = start(|_| {}).await;
    let answer = answer_to(&server, &close_payload(1000, b"bye"), Then::ServerAnswers).await;
    assert_eq!(answer, close_payload(1000, b"bye"));
    let events = events.wait_for(|e| e.len() == 2).await;
    assert!(matches!(events[..], [Event::Open(a), Event::Close(b)] if a == b));
}

#[tokio::test]
async fn a_close_without_a_code_is_answered_with_an_empty_close_frame() {
    let (server, _) = start(|_| {}).await;
    assert_eq!(answer_to(&server, &[], Then::ServerAnswers).await, b"");
}

#[tokio::test]
async fn every_code_allowed_on_the_wire_is_echoed() {
    let (server, _) = start(|_| {}).await;
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        let answer = answer_to(&server, &close_payload(code, b""), Then::ServerAnswers).await;
        assert_eq!(answer, close_payload(code, b""), "code {code}");
    }
}

#[tokio::test]
async fn a_code_not_allowed_on_the_wire_is_answered_with_1002() {
    let (server, _) = start(|_| {}).await;
    for code in [
        0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        let answer = answer_to(&server, &close_payload(code, b"why"), Then::ServerAnswers).await;
        assert_eq!(
            answer.get(..2),
            Some(&1002_u16.to_be_bytes()[..]),
            "code {code}"
        );
    }
}

#[tokio::test]
async fn a_close_reason_that_is_not_utf8_is_answered_with_1007() {
    let (server, events) = start(|_| {}).await;
    let answer = answer_to(
        &server,
        &close_payload(1000, b"\xff\xfe"),
        Then::ClientAnswers,
    )
    .await;
    assert_eq!(answer.get(..2), Some(&1007_u16.to_be_bytes()[..]));
    let events = events.wait_for(|e| e.len() == 3).await;
    assert!(matches!(events[1], Event::Error(..)), "{events:?}");
}

#[tokio::test]
async fn a_malformed_close_frame_is_answered_with_1002() {
    let (server, _) = start(|_| {}).await;
    // A lone byte cannot hold a code.
    let answer = answer_to(&server, &[0x03], Then::ClientAnswers).await;
    assert_eq!(answer.get(..2), Some(&1002_u16.to_be_bytes()[..]));
}

#[tokio::test]
async fn broken_framing_is_closed_with_1002() {
    use tokio::io::AsyncWriteExt;
    let (server, _) = start(|_| {}).await;
    let unmasked_text = [0x81_u8, 0x02, b'h', b'i'];
    let fragmented_ping = {
        let mut frame = transport::client_frame(0x9, b"p");
        frame[0] &= 0x7f;
        frame
    };
    let reserved_opcode = transport::client_frame(0x3, b"?");
    for bytes in [unmasked_text.to_vec(), fragmented_ping, reserved_opcode] {
        let mut tcp = open(server.addr).await;
        tcp.write_all(&bytes)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let frame = read_frame(&mut tcp).await;
        assert_eq!(frame.opcode, CLOSE);
        assert_eq!(
            frame.payload.get(..2),
            Some(&1002_u16.to_be_bytes()[..]),
            "{bytes:?}"
        );
        write_frame(&mut tcp, CLOSE, &frame.payload[..2]).await;
        expect_eof(&mut tcp).await;
    }
}
