//! Frames assembled from pieces that were serialized once.
//!
//! A chat message is serialized once, when it is stored: that JSON object is
//! a history entry (an element of `joined.history` and `history.messages`)
//! and, with the `type` tag put in front, the live `message` frame. A join,
//! a recovery or a `history` request splices the stored entries into its
//! frame instead of serializing them again, so the work done while a
//! room's order is held is a copy, not an encoding.
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

/// Where the empty list of messages sits in an encoded `history` frame.
const EMPTY_MESSAGES: &str = r#","messages":[]"#;

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
    /// Whether the room keeps messages older than the first entry (with
    /// no entry: any message up to `offset`).
    pub has_earlier: bool,
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
            has_earlier: self.has_earlier,
            reference: self.reference,
        }
        .to_json();
        splice(&head, EMPTY_HISTORY, entries)
    }
}

/// A `history` frame (the answer to a `history` request) but for its
/// messages, which [`HistoryHead::encode`] splices in from stored entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryHead {
    /// The room.
    pub room: RoomName,
    /// The epoch the entries belong to.
    pub epoch: Epoch,
    /// Whether the room keeps messages older than the first entry.
    pub has_earlier: bool,
    /// The `ref` of the request, if it had one.
    pub reference: Option<ClientRef>,
}

impl HistoryHead {
    /// The whole `history` frame, with `entries` (made by
    /// [`encode_entry`], oldest first) as its messages.
    #[must_use]
    pub fn encode<'a>(self, entries: impl IntoIterator<Item = &'a str>) -> String {
        let head = ServerMessage::History {
            room: self.room,
            epoch: self.epoch,
            messages: Vec::new(),
            has_earlier: self.has_earlier,
            reference: self.reference,
        }
        .to_json();
        splice(&head, EMPTY_MESSAGES, entries)
    }
}

/// `head`, an encoded frame whose one list of entries is empty and sits
/// at `marker` (`,"NAME":[]`), with `entries` put in that list. A `"`
/// inside a string value is always escaped, so the marker can only match
/// the field itself.
fn splice<'a>(head: &str, marker: &str, entries: impl IntoIterator<Item = &'a str>) -> String {
    let Some(at) = head.find(marker) else {
        return head.to_owned();
    };
    let before = &head[..at + marker.len() - 1];
    let after = &head[at + marker.len() - 1..];
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
            has_earlier: true,
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
                has_earlier: head.has_earlier,
                reference: head.reference.clone(),
            }
            .to_json();
            let spliced = head.clone().encode(entries[..n].iter().map(String::as_str));
            assert_eq!(spliced, expected);
        }
    }

    #[test]
    fn has_earlier_follows_the_spliced_history() {
        let entry = encode_entry(&message(3, "c"));
        let head = JoinedHead {
            room: RoomName::new("r-1").unwrap_or_else(|e| panic!("{e}")),
            name: DisplayName::new("Ada").unwrap_or_else(|e| panic!("{e}")),
            epoch: Epoch::new("e1").unwrap_or_else(|e| panic!("{e}")),
            offset: 3,
            recovered: false,
            members: vec![],
            has_earlier: true,
            reference: None,
        };
        assert_eq!(
            head.encode([entry.as_str()]),
            format!(
                r#"{{"type":"joined","room":"r-1","name":"Ada","epoch":"e1","offset":3,"recovered":false,"members":[],"history":[{entry}],"has_earlier":true}}"#
            )
        );
    }

    #[test]
    fn a_spliced_history_frame_is_what_serde_makes_of_it() {
        let messages = [message(4, "d"), message(5, "e")];
        let entries: Vec<String> = messages.iter().map(encode_entry).collect();
        for (has_earlier, reference) in [(true, ClientRef::new("h1").ok()), (false, None)] {
            let head = HistoryHead {
                room: RoomName::new("r-1").unwrap_or_else(|e| panic!("{e}")),
                epoch: Epoch::generate(),
                has_earlier,
                reference,
            };
            for n in [0, 1, 2] {
                let expected = ServerMessage::History {
                    room: head.room.clone(),
                    epoch: head.epoch.clone(),
                    messages: messages[..n].to_vec(),
                    has_earlier: head.has_earlier,
                    reference: head.reference.clone(),
                }
                .to_json();
                let spliced = head.clone().encode(entries[..n].iter().map(String::as_str));
                assert_eq!(spliced, expected);
            }
        }
    }

    #[test]
    fn the_ping_frame_is_what_serde_makes_of_ping() {
        assert_eq!(PING_FRAME, ServerMessage::Ping.to_json());
    }
}
