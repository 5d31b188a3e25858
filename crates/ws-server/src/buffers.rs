//! What one connection holds in memory, and the bounds on it.
//!
//! tungstenite's defaults suit a few busy connections: a 128 KiB read
//! buffer allocated up front, a 128 KiB write buffer, and no limit on how
//! far the write buffer may grow. At ten thousand mostly idle chat
//! connections, the read buffers alone would be 1.25 GiB. Here the read
//! buffer is 1 KiB (a larger frame grows it while it is read; frames are at
//! most `max_frame_bytes`), the write buffer coalesces up to 4 KiB of small
//! frames per write, and a message larger than [`FRAGMENT_BYTES`] goes out
//! as fragments, so that tungstenite's write buffer never holds more than
//! one fragment beyond its 4 KiB and can be bounded for real.
//!
//! A client that stops reading holds at most its outbox (see `outbox`:
//! twice `outbox_max_bytes` plus two frames) plus
//! [`MAX_WRITE_BUFFER_BYTES`] here.

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::settings::Settings;

/// tungstenite's read buffer per connection, allocated when the connection
/// opens.
pub(crate) const READ_BUFFER_BYTES: usize = 1024;

/// Small frames are gathered up to this many bytes before a write to the
/// socket (a flush writes whatever is gathered).
pub(crate) const WRITE_BUFFER_BYTES: usize = 4 * 1024;

/// The largest payload of one outgoing frame; a larger message is sent as
/// a text (or binary) frame and continuation frames, which every WebSocket
/// client reassembles (RFC 6455, 5.4).
pub(crate) const FRAGMENT_BYTES: usize = 4 * 1024;

/// Room in the write buffer for the control frames tungstenite adds on its
/// own (a pong, the answer to a close: 2 to 14 header bytes and at most
/// 125 bytes of payload each).
const CONTROL_FRAME_ROOM: usize = 1024;

/// The most tungstenite's write buffer holds: what was gathered, one
/// fragment and its header, and a control frame. Never reached while the
/// writer waits for each flush; a write past it fails instead of growing.
pub(crate) const MAX_WRITE_BUFFER_BYTES: usize =
    WRITE_BUFFER_BYTES + FRAGMENT_BYTES + CONTROL_FRAME_ROOM;

// The writer waits for a flush whenever tungstenite could not write
// everything, so at most the gathered bytes, one fragment with its 14-byte
// header and one control frame are ever buffered.
const _: () =
    assert!(WRITE_BUFFER_BYTES + (FRAGMENT_BYTES + 14) + (125 + 14) <= MAX_WRITE_BUFFER_BYTES);

/// The WebSocket settings of every connection.
pub(crate) fn websocket_config(settings: &Settings) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(Some(settings.max_frame_bytes))
        .max_frame_size(Some(settings.max_frame_bytes))
}

/// `message` as it goes on the wire: itself, or, when its payload is over
/// [`FRAGMENT_BYTES`], a first frame and continuation frames that share
/// its bytes (no copy).
pub(crate) fn fragments(message: Message) -> Fragments {
    match message {
        Message::Text(text) if text.len() > FRAGMENT_BYTES => Fragments::Split {
            payload: Bytes::from(text),
            opcode: OpCode::Data(Data::Text),
        },
        Message::Binary(data) if data.len() > FRAGMENT_BYTES => Fragments::Split {
            payload: data,
            opcode: OpCode::Data(Data::Binary),
        },
        other => Fragments::Whole(Some(other)),
    }
}

/// The frames of one message; see [`fragments`].
#[derive(Debug)]
pub(crate) enum Fragments {
    /// A message small enough to go as it is.
    Whole(Option<Message>),
    /// What is left of a large message, and the opcode of its next frame.
    Split { payload: Bytes, opcode: OpCode },
}

impl Iterator for Fragments {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        match self {
            Self::Whole(message) => message.take(),
            Self::Split { payload, opcode } if !payload.is_empty() => {
                let fragment = payload.split_to(payload.len().min(FRAGMENT_BYTES));
                let frame = Frame::message(fragment, *opcode, payload.is_empty());
                *opcode = OpCode::Data(Data::Continue);
                Some(Message::Frame(frame))
            }
            Self::Split { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_messages_go_as_they_are() {
        let message = Message::text("x".repeat(FRAGMENT_BYTES));
        assert_eq!(fragments(message.clone()).collect::<Vec<_>>(), [message]);
        let ping = Message::Ping(Bytes::from_static(b"p"));
        assert_eq!(fragments(ping.clone()).collect::<Vec<_>>(), [ping]);
    }

    #[test]
    fn a_large_message_becomes_a_first_frame_and_continuations_with_the_same_bytes() {
        let text = "é".repeat(FRAGMENT_BYTES); // two bytes each
        let frames: Vec<_> = fragments(Message::text(text.clone())).collect();
        assert_eq!(frames.len(), 2);
        let mut joined = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let Message::Frame(frame) = frame else {
                panic!("{frame:?}")
            };
            let header = frame.header();
            let expected = if i == 0 { Data::Text } else { Data::Continue };
            assert_eq!(header.opcode, OpCode::Data(expected));
            assert_eq!(header.is_final, i == frames.len() - 1);
            assert!(frame.payload().len() <= FRAGMENT_BYTES);
            joined.extend_from_slice(frame.payload());
        }
        assert_eq!(joined, text.as_bytes());
    }
}
