//! The text every benchmark message carries, and how a reader finds it in
//! a frame without decoding the frame.
//!
//! A payload is `p=PUBLISHER s=SEQUENCE t=SENT_NS ` padded with `x` to the
//! requested size, e.g. `p=3 s=123 t=456789 xxxx`. It is ASCII without
//! quotes or backslashes, so it appears verbatim inside the JSON string of
//! a Duplex `message` frame and a reader can cut it out by a byte search:
//! readers must not be the bottleneck, and decoding a whole JSON object per
//! delivery would make them one.

use std::fmt::Write as _;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use crate::client::Mode;

/// What a live Duplex message frame starts with (`protocol::encoded` puts
/// the type tag first).
const MESSAGE_PREFIX: &str = r#"{"type":"message","#;

/// What precedes the text's value. Earlier fields (`id`, `room`, `user`,
/// `name`) cannot hold a quote unescaped, so the first match is the field.
const TEXT_FIELD: &str = r#","text":""#;

/// Finds [`TEXT_FIELD`]; built once, since building a searcher per frame
/// cost more than the search.
static TEXT_FIELD_FINDER: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(TEXT_FIELD.as_bytes()));

/// The byte payloads are padded with.
const PADDING: char = 'x';

/// The smallest payload that holds every field with room to spare.
pub const MIN_PAYLOAD_BYTES: usize = 24;

/// The longest text the Duplex protocol accepts, in characters (ASCII here,
/// so bytes).
pub const MAX_DUPLEX_PAYLOAD_BYTES: usize = 2000;

/// The fields a payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload {
    /// Who sent it: a publisher's or a connection's index in its scenario.
    pub publisher: u32,
    /// The publisher's count of messages before this one.
    pub sequence: u64,
    /// When it was sent, in [`crate::clock::Clock`] nanoseconds.
    pub sent_ns: u64,
}

impl Payload {
    /// Writes the payload into `out` (cleared first), padded to `size`
    /// bytes. A `size` smaller than the fields gives the fields unpadded.
    pub fn encode_into(&self, size: usize, out: &mut String) {
        out.clear();
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "p={} s={} t={} ",
            self.publisher, self.sequence, self.sent_ns
        );
        while out.len() < size {
            out.push(PADDING);
        }
    }

    /// The payload as a new string, padded to `size` bytes.
    #[must_use]
    pub fn encode(&self, size: usize) -> String {
        let mut out = String::with_capacity(size.max(MIN_PAYLOAD_BYTES));
        self.encode_into(size, &mut out);
        out
    }

    /// Reads a payload made by [`Payload::encode`]; `None` for any other
    /// text (a message of someone else's, a damaged one).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::parse_bytes(text.as_bytes())
    }

    /// [`Payload::parse`] on bytes: a payload is ASCII, so a reader need
    /// not check a frame's UTF-8 to find one.
    #[must_use]
    pub fn parse_bytes(text: &[u8]) -> Option<Self> {
        let rest = text.strip_prefix(b"p=")?;
        let (publisher, rest) = split_number(rest)?;
        let rest = rest.strip_prefix(b" s=")?;
        let (sequence, rest) = split_number(rest)?;
        let rest = rest.strip_prefix(b" t=")?;
        let (sent_ns, rest) = split_number(rest)?;
        if !(rest.is_empty() || rest.starts_with(b" ")) {
            return None;
        }
        Some(Self {
            publisher: u32::try_from(publisher).ok()?,
            sequence,
            sent_ns,
        })
    }
}

/// The leading decimal number of `text` (at least one digit, no overflow)
/// and what follows it. By hand: on the hot path, `str::parse` and its
/// checks cost more than the digits.
fn split_number(text: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0_u64;
    let mut digits = 0;
    for &byte in text {
        if !byte.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
        digits += 1;
    }
    if digits == 0 {
        return None;
    }
    Some((value, text.get(digits..)?))
}

/// The chat text a received frame carries, if it carries one: the `text`
/// of a Duplex `message` frame, or the whole frame from a relay. Other
/// Duplex frames (`joined`, presence, errors) give `None`.
#[must_use]
pub fn text_of(frame: &str, mode: Mode) -> Option<&str> {
    // Cut at ASCII quotes (or not at all), so still UTF-8.
    let text = text_in(frame.as_bytes(), mode)?;
    std::str::from_utf8(text).ok()
}

/// [`text_of`] on a frame's bytes, unchecked as UTF-8.
#[must_use]
pub fn text_in(frame: &[u8], mode: Mode) -> Option<&[u8]> {
    match mode {
        Mode::Relay => Some(frame),
        Mode::Duplex => {
            if !frame.starts_with(MESSAGE_PREFIX.as_bytes()) {
                return None;
            }
            let start = TEXT_FIELD_FINDER.find(frame)? + TEXT_FIELD.len();
            let rest = frame.get(start..)?;
            // Our payloads hold no quote or backslash, so the first quote
            // ends the value; a text with escapes is not ours and fails
            // to parse later.
            let end = memchr::memchr(b'"', rest)?;
            rest.get(..end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: Payload = Payload {
        publisher: 3,
        sequence: 123,
        sent_ns: 456_789,
    };

    #[test]
    fn encoding_pads_to_the_requested_size() {
        let text = SAMPLE.encode(64);
        assert_eq!(text.len(), 64);
        assert!(text.starts_with("p=3 s=123 t=456789 xxxx"), "{text}");
    }

    #[test]
    fn a_size_below_the_fields_keeps_every_field() {
        let text = SAMPLE.encode(4);
        assert_eq!(text, "p=3 s=123 t=456789 ");
        assert_eq!(Payload::parse(&text), Some(SAMPLE));
    }

    #[test]
    fn parsing_reverses_encoding_at_the_extremes() {
        let extreme = Payload {
            publisher: u32::MAX,
            sequence: u64::MAX,
            sent_ns: u64::MAX,
        };
        for payload in [SAMPLE, extreme] {
            assert_eq!(Payload::parse(&payload.encode(64)), Some(payload));
            assert_eq!(Payload::parse(&payload.encode(0)), Some(payload));
        }
    }

    #[test]
    fn parsing_refuses_other_texts() {
        for text in [
            "",
            "hello",
            "p=3",
            "p=3 s=1",
            "p= s=1 t=2",
            "p=3 s=1 t=2x",
            "p=99999999999 s=1 t=2",
            "p=1 s=184467440737095516160 t=2",
            "s=1 p=3 t=2",
            "p=-1 s=1 t=2",
        ] {
            assert_eq!(Payload::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn the_text_of_a_duplex_message_is_found_in_place() {
        let payload = SAMPLE.encode(32);
        let frame = format!(
            r#"{{"type":"message","id":"0192f5e0-8c1a-7cc0-b1c3-5a7f6c2d9e10","room":"bench","offset":42,"user":"u1","name":"text","text":"{payload}","ts":1764236400000}}"#
        );
        assert_eq!(text_of(&frame, Mode::Duplex), Some(payload.as_str()));
        assert_eq!(
            text_of(&frame, Mode::Duplex).and_then(Payload::parse),
            Some(SAMPLE)
        );
    }

    #[test]
    fn other_duplex_frames_carry_no_text() {
        for frame in [
            r#"{"type":"joined","room":"bench","history":[{"text":"p=1 s=0 t=1 "}]}"#,
            r#"{"type":"member_joined","room":"bench","user":"u2","name":"Bob"}"#,
            r#"{"type":"message","room":"bench""#,
        ] {
            assert_eq!(text_of(frame, Mode::Duplex), None, "{frame}");
        }
    }

    #[test]
    fn a_relay_frame_is_the_text_itself() {
        assert_eq!(text_of("p=1 s=2 t=3 ", Mode::Relay), Some("p=1 s=2 t=3 "));
    }
}
