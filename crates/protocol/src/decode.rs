//! Decoding client frames, with a precise reason for every refusal.
//!
//! Decoding runs in steps so that each failure gets its own [`ErrorCode`]:
//! parse JSON (`invalid_json`); read `ref` (`invalid_ref`), so that every
//! later error can echo it; read the `type` tag (`invalid_message`,
//! `unknown_type`); read the fields as plain JSON types (`invalid_message`);
//! then validate each field (`invalid_room`, `invalid_name`, `invalid_text`,
//! `text_too_long`; a `history` limit out of range is `invalid_message`).

use serde::Deserialize;
use serde_json::Value;

use crate::{
    ClientFrame, ClientMessage, ClientRef, DisplayName, Epoch, ErrorCode, MessageText, Position,
    RoomName, ValidationError,
};

/// A client frame that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    /// The machine-readable reason, sent as the error frame's `code`.
    pub code: ErrorCode,
    /// The human-readable reason, sent as the error frame's `message`.
    pub message: String,
    /// The frame's `ref`, when it had a valid one.
    pub reference: Option<ClientRef>,
}

impl DecodeError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reference: None,
        }
    }
}

/// The shape of a client message before its fields are validated.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WireClientMessage {
    Join {
        room: String,
        #[serde(default)]
        since: Option<WirePosition>,
    },
    Leave {
        room: String,
    },
    Post {
        room: String,
        text: String,
    },
    Publish {
        room: String,
        name: String,
        text: String,
    },
    ListRooms {
        #[serde(default)]
        after: Option<String>,
    },
    History {
        room: String,
        before: u64,
        /// Read wider than it is kept, so that a limit out of range is
        /// refused with the range rather than with serde's words.
        #[serde(default)]
        limit: Option<u64>,
    },
}

#[derive(Deserialize)]
pub(crate) struct WirePosition {
    epoch: String,
    offset: u64,
}

fn room(value: String) -> Result<RoomName, DecodeError> {
    RoomName::new(value).map_err(|e| DecodeError::new(ErrorCode::InvalidRoom, e.to_string()))
}

fn name(value: String) -> Result<DisplayName, DecodeError> {
    DisplayName::new(value).map_err(|e| DecodeError::new(ErrorCode::InvalidName, e.to_string()))
}

fn text(value: String) -> Result<MessageText, DecodeError> {
    MessageText::new(value).map_err(|e| {
        let code = match e {
            ValidationError::TooLong { .. } => ErrorCode::TextTooLong,
            _ => ErrorCode::InvalidText,
        };
        DecodeError::new(code, e.to_string())
    })
}

fn position(value: WirePosition) -> Result<Position, DecodeError> {
    let epoch = Epoch::new(value.epoch)
        .map_err(|e| DecodeError::new(ErrorCode::InvalidMessage, format!("since.epoch: {e}")))?;
    Ok(Position {
        epoch,
        offset: value.offset,
    })
}

fn limit(value: u64) -> Result<u32, DecodeError> {
    let max = ClientMessage::HISTORY_MAX_LIMIT;
    u32::try_from(value)
        .ok()
        .filter(|limit| (1..=max).contains(limit))
        .ok_or_else(|| {
            DecodeError::new(
                ErrorCode::InvalidMessage,
                format!("limit must be 1 to {max} (got {value})"),
            )
        })
}

impl TryFrom<WireClientMessage> for ClientMessage {
    type Error = DecodeError;

    fn try_from(wire: WireClientMessage) -> Result<Self, Self::Error> {
        Ok(match wire {
            WireClientMessage::Join { room: r, since } => Self::Join {
                room: room(r)?,
                since: since.map(position).transpose()?,
            },
            WireClientMessage::Leave { room: r } => Self::Leave { room: room(r)? },
            WireClientMessage::Post { room: r, text: t } => Self::Post {
                room: room(r)?,
                text: text(t)?,
            },
            WireClientMessage::Publish {
                room: r,
                name: n,
                text: t,
            } => Self::Publish {
                room: room(r)?,
                name: name(n)?,
                text: text(t)?,
            },
            WireClientMessage::ListRooms { after } => Self::ListRooms {
                after: after.map(room).transpose()?,
            },
            WireClientMessage::History {
                room: r,
                before,
                limit: l,
            } => Self::History {
                room: room(r)?,
                before,
                limit: l.map(limit).transpose()?,
            },
        })
    }
}

impl ClientFrame {
    /// Decodes one client text frame.
    ///
    /// # Errors
    /// A [`DecodeError`] whose code says which rule the frame broke (see
    /// [`ErrorCode`] and `docs/protocol.md`), carrying the frame's `ref`
    /// when that much could be read.
    pub fn decode(frame: &str) -> Result<Self, DecodeError> {
        let value: Value = serde_json::from_str(frame)
            .map_err(|e| DecodeError::new(ErrorCode::InvalidJson, format!("not JSON: {e}")))?;
        Self::decode_value(value)
    }

    fn decode_value(value: Value) -> Result<Self, DecodeError> {
        let Some(object) = value.as_object() else {
            return Err(DecodeError::new(
                ErrorCode::InvalidMessage,
                "a message must be a JSON object",
            ));
        };
        let reference = match object.get("ref") {
            None | Some(Value::Null) => None,
            Some(Value::String(r)) => Some(
                ClientRef::new(r.as_str())
                    .map_err(|e| DecodeError::new(ErrorCode::InvalidRef, e.to_string()))?,
            ),
            Some(_) => {
                return Err(DecodeError::new(
                    ErrorCode::InvalidRef,
                    "field `ref` must be a string",
                ));
            }
        };
        let with_ref = |mut e: DecodeError| {
            e.reference.clone_from(&reference);
            e
        };
        match object.get("type") {
            Some(Value::String(kind)) if ClientMessage::TYPES.contains(&kind.as_str()) => {}
            Some(Value::String(kind)) => {
                return Err(with_ref(DecodeError::new(
                    ErrorCode::UnknownType,
                    format!(
                        "unknown message type {kind:?}; expected one of {}",
                        ClientMessage::TYPES.join(", ")
                    ),
                )));
            }
            Some(_) => {
                return Err(with_ref(DecodeError::new(
                    ErrorCode::InvalidMessage,
                    "field `type` must be a string",
                )));
            }
            None => {
                return Err(with_ref(DecodeError::new(
                    ErrorCode::InvalidMessage,
                    "missing field `type`",
                )));
            }
        }
        let wire: WireClientMessage = serde_json::from_value(value)
            .map_err(|e| with_ref(DecodeError::new(ErrorCode::InvalidMessage, e.to_string())))?;
        let message = ClientMessage::try_from(wire).map_err(with_ref)?;
        Ok(Self { reference, message })
    }
}

impl<'de> Deserialize<'de> for ClientFrame {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::decode_value(value).map_err(serde::de::Error::custom)
    }
}
