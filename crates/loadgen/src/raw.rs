//! A bare WebSocket client for the readers of a fan-out, which must not be
//! the bottleneck: one read takes everything the socket holds into one
//! buffer, and frames are handed on as slices of it, never copied,
//! allocated or checked as UTF-8 one by one.
//!
//! Under tokio-tungstenite the readers cost the generator about 1.5 µs of
//! CPU per delivery at 600,000 deliveries/s (stream polling, a `Bytes` per
//! frame, a wake-up check per frame), close to the server's 1.65 µs; here,
//! 1.27 µs. tungstenite still does what it does well here: it parses
//! each frame's header ([`FrameHeader::parse`]) and formats the few frames
//! a reader sends (the join, pongs, the close).
//!
//! What a reader needs and no more: the opening handshake (client side of
//! RFC 6455, section 4.1, the answer's `Sec-WebSocket-Accept` checked),
//! text frames, fragmented messages reassembled, pings answered, the close
//! frame's code. Frames from a server are never masked (section 5.1).

use std::io::Cursor;
use std::net::SocketAddr;
use std::ops::ControlFlow;

use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Bytes;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

/// What a connection starts with: enough for a handshake and a burst of
/// small frames, and little for tens of thousands of idle readers.
const INITIAL_BUFFER_BYTES: usize = 4 * 1024;

/// What a busy connection grows to: a read that fills the buffer doubles
/// it, up to this.
const MAX_BUFFER_BYTES: usize = 64 * 1024;

/// The largest message accepted (a `joined` with a long history and many
/// members is far smaller).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The longest response head accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// The most of a refusal quoted in an error.
const QUOTE_CHARS: usize = 160;

/// Why a raw connection failed.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// The socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The server did not switch protocols.
    #[error("refused: {0}")]
    Refused(String),
    /// The server broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// How a [`RawWs::read`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Everything read was handed on; read again.
    Continue,
    /// The callback asked to stop; later frames stay buffered.
    Stopped,
    /// The server sent a close frame, with its code if it had one.
    Closed(Option<u16>),
    /// The socket ended without a close frame.
    Ended,
}

/// One open connection.
#[derive(Debug)]
pub struct RawWs {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// Unparsed bytes are `buffer[start..end]`.
    start: usize,
    end: usize,
    /// A fragmented message being reassembled.
    message: Vec<u8>,
    /// True between a message's first fragment and its last.
    in_message: bool,
    /// Frames to send after the current batch (pongs).
    outgoing: Vec<u8>,
}

impl RawWs {
    /// Opens a WebSocket over `stream` at `path` for `host` (the `Host`
    /// header), with `headers` (`Name: value` lines) added.
    ///
    /// # Errors
    /// A socket error, a refusal (anything but 101, quoted), or an answer
    /// that does not prove the server read the key.
    pub async fn connect(
        mut stream: TcpStream,
        host: &str,
        path: &str,
        headers: &[String],
    ) -> Result<Self, RawError> {
        let key = generate_key();
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
        );
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await?;

        let mut ws = Self {
            stream,
            buffer: vec![0; INITIAL_BUFFER_BYTES],
            start: 0,
            end: 0,
            message: Vec::new(),
            in_message: false,
            outgoing: Vec::new(),
        };
        let head_end = loop {
            if let Some(at) = memmem::find(&ws.buffer[..ws.end], b"\r\n\r\n") {
                break at + 4;
            }
            if ws.end >= MAX_HEAD_BYTES {
                return Err(RawError::Protocol("response head too long".to_owned()));
            }
            if !ws.fill().await? {
                return Err(RawError::Refused(
                    "closed before the response head".to_owned(),
                ));
            }
        };
        check_answer(&ws.buffer[..head_end], &derive_accept_key(key.as_bytes()))?;
        // What follows the head is the first frames.
        ws.start = head_end;
        Ok(ws)
    }

    /// This side's address.
    #[must_use]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.stream.local_addr().ok()
    }

    /// The server's address.
    #[must_use]
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream.peer_addr().ok()
    }

    /// Sends `text` as one masked text frame.
    ///
    /// # Errors
    /// A socket error.
    pub async fn send_text(&mut self, text: &str) -> Result<(), RawError> {
        self.send(Frame::message(
            Bytes::copy_from_slice(text.as_bytes()),
            OpCode::Data(Data::Text),
            true,
        ))
        .await
    }

    /// Sends a close frame (no code) and shuts the sending side.
    ///
    /// # Errors
    /// A socket error.
    pub async fn close(&mut self) -> Result<(), RawError> {
        self.send(Frame::close(None)).await?;
        self.stream.shutdown().await?;
        Ok(())
    }

    async fn send(&mut self, mut frame: Frame) -> Result<(), RawError> {
        // A pong cut short by a cancelled read goes out whole first.
        self.flush_outgoing().await?;
        frame.header_mut().mask = Some(generate_mask());
        let mut bytes = Vec::with_capacity(frame.len());
        frame
            .format(&mut bytes)
            .map_err(|e| RawError::Protocol(e.to_string()))?;
        self.stream.write_all(&bytes).await?;
        Ok(())
    }

    /// Hands every complete text (or binary) message already buffered to
    /// `on_message`; only when none was buffered, reads the socket once and
    /// hands on what came. So the messages of one call arrived together,
    /// and one clock reading serves them. `on_message` may stop the batch:
    /// the frames after the one it stopped at stay buffered for the next
    /// call. Safe to cancel (in `select!`): nothing read or parsed is lost.
    ///
    /// # Errors
    /// A socket error, or a frame no server may send.
    pub async fn read(
        &mut self,
        mut on_message: impl FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<Step, RawError> {
        let mut handed = false;
        let step = self.parse_buffered(&mut |message| {
            handed = true;
            on_message(message)
        })?;
        if step != Step::Continue || handed {
            return Ok(step);
        }
        self.flush_outgoing().await?;
        if !self.fill().await? {
            return Ok(Step::Ended);
        }
        let step = self.parse_buffered(&mut on_message)?;
        self.flush_outgoing().await?;
        Ok(step)
    }

    /// Reads until a message starting with `prefix`, which is the last one
    /// taken; `Err` if one starting with `refusal` comes first (quoted).
    ///
    /// # Errors
    /// A socket error, a refusal, or the connection ending first.
    pub async fn wait_for(&mut self, prefix: &[u8], refusal: &[u8]) -> Result<(), RawError> {
        let mut refused = None;
        loop {
            let step = self
                .read(|message| {
                    if message.starts_with(prefix) {
                        ControlFlow::Break(())
                    } else {
                        if message.starts_with(refusal) {
                            refused.get_or_insert_with(|| quote(message));
                        }
                        ControlFlow::Continue(())
                    }
                })
                .await?;
            if let Some(refused) = refused {
                return Err(RawError::Refused(refused));
            }
            match step {
                Step::Continue => {}
                Step::Stopped => return Ok(()),
                Step::Closed(code) => {
                    return Err(RawError::Refused(format!(
                        "closed ({}) while waiting",
                        code.map_or("no code".to_owned(), |c| c.to_string())
                    )));
                }
                Step::Ended => {
                    return Err(RawError::Refused("connection ended while waiting".into()));
                }
            }
        }
    }

    /// Reads once into the free end of the buffer, first moving unparsed
    /// bytes to its front, growing it when a read filled it; `false` at
    /// the end of the stream.
    async fn fill(&mut self) -> Result<bool, RawError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buffer.len() {
            // Full of one partial frame: `parse_buffered` sized the buffer
            // for it, so only a head larger than the buffer gets here.
            self.buffer
                .resize((self.buffer.len() * 2).max(INITIAL_BUFFER_BYTES), 0);
        }
        let read = self.stream.read(&mut self.buffer[self.end..]).await?;
        self.end += read;
        // A busy connection reads in larger bites.
        if self.end == self.buffer.len() && self.buffer.len() < MAX_BUFFER_BYTES {
            self.buffer.resize(self.buffer.len() * 2, 0);
        }
        Ok(read > 0)
    }

    /// Writes the queued pongs, dropping each byte as it is written: a
    /// cancelled call leaves the rest to the next, and never repeats one.
    async fn flush_outgoing(&mut self) -> Result<(), RawError> {
        while !self.outgoing.is_empty() {
            let written = self.stream.write(&self.outgoing).await?;
            if written == 0 {
                return Err(RawError::Io(std::io::ErrorKind::WriteZero.into()));
            }
            self.outgoing.drain(..written);
        }
        Ok(())
    }

    /// Parses the complete frames buffered, handing messages on.
    fn parse_buffered(
        &mut self,
        on_message: &mut impl FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<Step, RawError> {
        loop {
            let unparsed = &self.buffer[self.start..self.end];
            let mut cursor = Cursor::new(unparsed);
            let Some((header, length)) = FrameHeader::parse(&mut cursor)
                .map_err(|e| RawError::Protocol(format!("frame header: {e}")))?
            else {
                return Ok(Step::Continue);
            };
            let length = usize::try_from(length)
                .ok()
                .filter(|&l| l <= MAX_MESSAGE_BYTES)
                .ok_or_else(|| RawError::Protocol("frame too large".to_owned()))?;
            let header_len = usize::try_from(cursor.position()).unwrap_or(usize::MAX);
            let Some(payload) = unparsed.get(header_len..header_len.saturating_add(length)) else {
                // Not all here yet: make room for the whole frame.
                let needed = header_len + length;
                if needed > self.buffer.len() {
                    self.buffer.resize(needed, 0);
                }
                return Ok(Step::Continue);
            };
            let frame_end = self.start + header_len + length;
            if header.mask.is_some() {
                return Err(RawError::Protocol("masked frame from a server".to_owned()));
            }
            let flow = match header.opcode {
                OpCode::Data(Data::Text | Data::Binary) if header.is_final && !self.in_message => {
                    on_message(payload)
                }
                OpCode::Data(Data::Text | Data::Binary) => {
                    if self.in_message {
                        return Err(RawError::Protocol("new message inside another".into()));
                    }
                    self.in_message = true;
                    self.message.clear();
                    self.message.extend_from_slice(payload);
                    ControlFlow::Continue(())
                }
                OpCode::Data(Data::Continue) => {
                    if !self.in_message {
                        return Err(RawError::Protocol("continuation without a start".into()));
                    }
                    if self.message.len() + payload.len() > MAX_MESSAGE_BYTES {
                        return Err(RawError::Protocol("message too large".to_owned()));
                    }
                    self.message.extend_from_slice(payload);
                    if header.is_final {
                        self.in_message = false;
                        let flow = on_message(&self.message);
                        self.message = Vec::new();
                        flow
                    } else {
                        ControlFlow::Continue(())
                    }
                }
                OpCode::Control(Control::Ping) => {
                    let mut pong = Frame::pong(Bytes::copy_from_slice(payload));
                    pong.header_mut().mask = Some(generate_mask());
                    pong.format(&mut self.outgoing)
                        .map_err(|e| RawError::Protocol(e.to_string()))?;
                    ControlFlow::Continue(())
                }
                OpCode::Control(Control::Close) => {
                    let code = payload
                        .get(..2)
                        .map(|code| u16::from_be_bytes([code[0], code[1]]));
                    self.start = frame_end;
                    return Ok(Step::Closed(code));
                }
                OpCode::Control(Control::Pong) => ControlFlow::Continue(()),
                other => return Err(RawError::Protocol(format!("opcode {other}"))),
            };
            self.start = frame_end;
            if flow.is_break() {
                return Ok(Step::Stopped);
            }
        }
    }
}

/// Checks an answer head: status 101 and the accept key.
fn check_answer(head: &[u8], accept: &str) -> Result<(), RawError> {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 101") {
        return Err(RawError::Refused(quote(status.as_bytes())));
    }
    let accepted = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("sec-websocket-accept") && value.trim() == accept
        })
    });
    if accepted {
        Ok(())
    } else {
        Err(RawError::Protocol(
            "the answer's Sec-WebSocket-Accept does not match the key".to_owned(),
        ))
    }
}

/// A fresh masking key per frame (RFC 6455, section 5.3), from std's
/// randomly keyed hasher: no random-number crate for four bytes.
fn generate_mask() -> [u8; 4] {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    let [a, b, c, d, ..] = hasher.finish().to_le_bytes();
    [a, b, c, d]
}

fn quote(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .take(QUOTE_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::Message;

    use super::*;

    /// A tungstenite server that reads the client's first message, sends
    /// `frames` as they are (a `Message::Frame` is written raw, so a test
    /// can fragment), pings, reads the answer, then closes with 4000;
    /// returns what it read from the client.
    async fn server(frames: Vec<Message>) -> (SocketAddr, tokio::task::JoinHandle<Vec<Message>>) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
            let mut ws = tokio_tungstenite::accept_async(tcp)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let mut seen = Vec::new();
            // The client speaks first: its join.
            if let Some(Ok(message)) = ws.next().await {
                seen.push(message);
            }
            for frame in frames {
                let _ = ws.feed(frame).await;
            }
            let _ = ws.send(Message::Ping(Bytes::from_static(b"hi"))).await;
            if let Some(Ok(message)) = ws.next().await {
                seen.push(message);
            }
            let _ = ws
                .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: 4000.into(),
                    reason: "slow".into(),
                }))
                .await;
            seen
        });
        (addr, task)
    }

    async fn client(addr: SocketAddr, headers: &[String]) -> RawWs {
        let tcp = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        RawWs::connect(tcp, "localhost", "/ws", headers)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn fragment(text: &str, opcode: OpCode, last: bool) -> Message {
        Message::Frame(Frame::message(
            Bytes::copy_from_slice(text.as_bytes()),
            opcode,
            last,
        ))
    }

    #[tokio::test]
    async fn reads_messages_in_place_answers_pings_and_sees_the_close_code() {
        // A 10,000-byte frame spans reads of the 4 KiB first buffer; a
        // 70,000-byte one takes a 64-bit length.
        let long = "y".repeat(10_000);
        let longer = "z".repeat(70_000);
        let frames = vec![
            Message::text("one"),
            Message::text(long.clone()),
            Message::text(longer.clone()),
            Message::text("three"),
        ];
        let (addr, server) = server(frames).await;
        let mut ws = client(addr, &["X-Test: 1".to_owned()]).await;
        ws.send_text("join").await.unwrap_or_else(|e| panic!("{e}"));
        let mut got = Vec::new();
        let end = loop {
            match ws
                .read(|m| {
                    got.push(String::from_utf8_lossy(m).into_owned());
                    ControlFlow::Continue(())
                })
                .await
            {
                Ok(Step::Continue) => {}
                other => break other,
            }
        };
        assert_eq!(got, ["one".to_owned(), long, longer, "three".to_owned()]);
        assert!(matches!(end, Ok(Step::Closed(Some(4000)))), "{end:?}");
        let seen = server.await.unwrap_or_default();
        assert_eq!(
            seen,
            [
                Message::text("join"),
                Message::Pong(Bytes::from_static(b"hi"))
            ]
        );
    }

    #[tokio::test]
    async fn fragments_are_reassembled_around_a_ping() {
        let frames = vec![
            fragment("frag", OpCode::Data(Data::Text), false),
            Message::Ping(Bytes::from_static(b"mid")),
            fragment("men", OpCode::Data(Data::Continue), false),
            fragment("ted", OpCode::Data(Data::Continue), true),
            Message::text("after"),
        ];
        let (addr, server) = server(frames).await;
        let mut ws = client(addr, &[]).await;
        ws.send_text("join").await.unwrap_or_else(|e| panic!("{e}"));
        let mut got = Vec::new();
        while let Ok(Step::Continue) = ws
            .read(|m| {
                got.push(String::from_utf8_lossy(m).into_owned());
                ControlFlow::Continue(())
            })
            .await
        {}
        assert_eq!(got, ["fragmented", "after"]);
        let seen = server.await.unwrap_or_default();
        // The ping between fragments was answered first.
        assert_eq!(
            seen.get(1),
            Some(&Message::Pong(Bytes::from_static(b"mid")))
        );
    }

    #[tokio::test]
    async fn a_message_inside_another_is_a_protocol_error() {
        let frames = vec![
            fragment("a", OpCode::Data(Data::Text), false),
            fragment("b", OpCode::Data(Data::Text), true),
        ];
        let (addr, _server) = server(frames).await;
        let mut ws = client(addr, &[]).await;
        ws.send_text("join").await.unwrap_or_else(|e| panic!("{e}"));
        let end = loop {
            match ws.read(|_| ControlFlow::Continue(())).await {
                Ok(Step::Continue) => {}
                other => break other,
            }
        };
        assert!(matches!(end, Err(RawError::Protocol(_))), "{end:?}");
    }

    #[tokio::test]
    async fn waiting_stops_at_the_message_and_keeps_the_rest() {
        let frames = vec![
            Message::text("a"),
            Message::text("joined"),
            Message::text("b"),
        ];
        let (addr, _server) = server(frames).await;
        let mut ws = client(addr, &[]).await;
        ws.send_text("join").await.unwrap_or_else(|e| panic!("{e}"));
        ws.wait_for(b"joined", b"error")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut next = None;
        let step = ws
            .read(|m| {
                next = Some(m.to_vec());
                ControlFlow::Break(())
            })
            .await;
        assert_eq!(step.ok(), Some(Step::Stopped));
        assert_eq!(next.as_deref(), Some(&b"b"[..]));
    }

    #[tokio::test]
    async fn a_refused_handshake_is_quoted() {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(async move {
            if let Ok((mut tcp, _)) = listener.accept().await {
                let mut head = [0; 1024];
                let _ = tcp.read(&mut head).await;
                let _ = tcp
                    .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let tcp = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let refused = RawWs::connect(tcp, "localhost", "/ws", &[]).await;
        assert!(
            matches!(&refused, Err(RawError::Refused(r)) if r == "HTTP/1.1 401 Unauthorized"),
            "{refused:?}"
        );
    }
}
