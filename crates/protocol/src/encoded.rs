//! Frames assembled from pieces that were serialized once.
//!
//! A chat message is serialized once, when it is stored: that JSON object is
//! a history entry (an element of `joined.history`) and, with the `type` tag
//! put in front, the live `message` frame. A join or a recovery splices the
//! stored entries into its `joined` frame instead of serializing them again,
//! so the work done while a room's order is held is a copy, not an encoding.
//!
//! The splicing relies on two facts of serde_json's output, both pinned in
//! the tests below: fields come out in declaration order, and a `"` inside a
//! string value is always escaped, so a marker that starts with `,"` or
//! `{"` can only be a real field boundary.

use crate::{ChatMessage, ClientRef, DisplayName, Epoch, Member, RoomName, ServerMessage};

/// What a live `message` frame starts with, before the message's own fields.
const MESSAGE_TAG: &str = r#"{"type":"message","#;

/// Where the empty history sits in an encoded `joined` frame.
const EMPTY_HISTORY: &str = r#","history":[]"#;

/// The `ping` frame, the same bytes every time: a static string, so a
/// heartbeat costs no encoding and no allocation.
pub const PING_FRAME: &str = r#"{"type":"ping"}"#;

/// Where the offset sits in an encoded chat message whose offset is 0.
const ZERO_OFFSET: &str = r#","offset":0,"#;

/// A chat message's JSON object (a history entry), serialized once.
#[must_use]
pub fn encode_entry(message: &ChatMessage) -> String {
    // Cannot fail: strings, integers and bools only.
    serde_json::to_string(message).unwrap_or_else(|_| String::from("{}"))
}

/// The live `message` frame for a history entry made by [`encode_entry`]:
/// the same fields with the `type` tag in front.
#[must_use]
pub fn message_frame(entry: &str) -> String {
    let fields = entry.strip_prefix('{').unwrap_or(entry);
    let mut frame = String::with_capacity(MESSAGE_TAG.len() + fields.len());
    frame.push_str(MESSAGE_TAG);
    frame.push_str(fields);
    frame
}

/// A chat message's entry cut around its offset: `prefix + offset + suffix`
/// is [`encode_entry`] of the message with that offset. This lets a store
/// that assigns offsets itself (a Redis script) finish the entry without
/// decoding it.
#[must_use]
pub fn entry_around_offset(message: &ChatMessage) -> (String, String) {
    let entry = encode_entry(&ChatMessage {
        offset: 0,
        ..message.clone()
    });
    // The fields before `offset` (`id`, `room`) have quote-free alphabets,
    // so the first match is the field itself.
    match entry.find(ZERO_OFFSET) {
        Some(at) => {
            let digit = at + ZERO_OFFSET.len() - 2;
            (entry[..digit].to_owned(), entry[digit + 1..].to_owned())
        }
        None => (entry, String::new()),
    }
}

/// A `joined` frame but for its history, which [`JoinedHead::encode`]
/// splices in from stored entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedHead {
    /// The room joined.
    pub room: RoomName,
    /// The name the client shows in it.
    pub name: DisplayName,
    /// The room history's epoch.
    pub epoch: Epoch,
    /// The offset of the room's latest message delivered to this client.
    pub offset: u64,
    /// Whether the history is exactly what the client missed.
    pub recovered: bool,
    /// The users present, sorted by name.
    pub members: Vec<Member>,
    /// The `ref` of the `join`, if it had one.
    pub reference: Option<ClientRef>,
}

impl JoinedHead {
    /// The whole `joined` frame, with `entries` (made by [`encode_entry`],
    /// oldest first) as its history.
    #[must_use]
    pub fn encode<'a>(self, entries: impl IntoIterator<Item = &'a str>) -> String {
        let head = ServerMessage::Joined {
            room: self.room,
            name: self.name,
            epoch: self.epoch,
            offset: self.offset,
            recovered: self.recovered,
            members: self.members,
            history: Vec::new(),
            reference: self.reference,
        }
        .to_json();
        let Some(at) = head.find(EMPTY_HISTORY) else {
            return head;
        };
        let before = &head[..at + EMPTY_HISTORY.len() - 1];
        let after = &head[at + EMPTY_HISTORY.len() - 1..];
        let mut frame = String::with_capacity(head.len() + 256);
        frame.push_str(before);
        for (i, entry) in entries.into_iter().enumerate() {
            if i > 0 {
                frame.push(',');
            }
            frame.push_str(entry);
        }
        frame.push_str(after);
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MessageId, MessageText, UserId};

    fn message(offset: u64, text: &str) -> ChatMessage {
        ChatMessage {
            id: MessageId::generate(),
            room: RoomName::new("r-1").unwrap_or_else(|e| panic!("{e}")),
            offset,
            user: UserId::new("u1").unwrap_or_else(|e| panic!("{e}")),
            name: DisplayName::new("Ada").unwrap_or_else(|e| panic!("{e}")),
            // Text that holds every marker the splicing looks for.
            text: MessageText::new(format!(
                r#"{text} ,"offset":0, "history":[] {{"type":"message","#
            ))
            .unwrap_or_else(|e| panic!("{e}")),
            ts: 1,
            announcement: false,
            reference: ClientRef::new("c1").ok(),
        }
    }

    #[test]
    fn the_live_frame_is_what_serde_makes_of_the_message_variant() {
        let m = message(7, "hi");
        assert_eq!(
            message_frame(&encode_entry(&m)),
            ServerMessage::Message(m).to_json()
        );
    }

    #[test]
    fn an_entry_cut_around_its_offset_rejoins_with_any_offset() {
        let m = message(0, "x");
        let (prefix, suffix) = entry_around_offset(&m);
        for offset in [1_u64, 42, u64::MAX] {
            let rejoined = format!("{prefix}{offset}{suffix}");
            assert_eq!(
                rejoined,
                encode_entry(&ChatMessage {
                    offset,
                    ..m.clone()
                })
            );
        }
    }

    #[test]
    fn a_spliced_joined_frame_is_what_serde_makes_of_it() {
        let history = vec![message(1, "a"), message(2, "b")];
        let entries: Vec<String> = history.iter().map(encode_entry).collect();
        let head = JoinedHead {
            room: RoomName::new("r-1").unwrap_or_else(|e| panic!("{e}")),
            name: DisplayName::new("Ada").unwrap_or_else(|e| panic!("{e}")),
            epoch: Epoch::generate(),
            offset: 2,
            recovered: true,
            members: vec![Member {
                user: UserId::new("u1").unwrap_or_else(|e| panic!("{e}")),
                name: DisplayName::new("A").unwrap_or_else(|e| panic!("{e}")),
            }],
            reference: ClientRef::new("j1").ok(),
        };
        for (n, history) in [(0, vec![]), (2, history)] {
            let expected = ServerMessage::Joined {
                room: head.room.clone(),
                name: head.name.clone(),
                epoch: head.epoch.clone(),
                offset: head.offset,
                recovered: head.recovered,
                members: head.members.clone(),
                history,
                reference: head.reference.clone(),
            }
            .to_json();
            let spliced = head.clone().encode(entries[..n].iter().map(String::as_str));
            assert_eq!(spliced, expected);
        }
    }

    #[test]
    fn the_ping_frame_is_what_serde_makes_of_ping() {
        assert_eq!(PING_FRAME, ServerMessage::Ping.to_json());
    }
}
