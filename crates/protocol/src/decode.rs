//! Decoding client frames, with a precise reason for every refusal.
//!
//! Decoding runs in three steps so that each failure gets its own
//! [`ErrorCode`]: parse JSON (`invalid_json`), read the `type` tag
//! (`invalid_message`, `unknown_type`), read the fields as plain strings
//! (`invalid_message`), then validate each field (`invalid_room`,
//! `invalid_name`, `invalid_text`, `text_too_long`).

use serde::Deserialize;
use serde_json::Value;

use crate::{ClientMessage, DisplayName, ErrorCode, MessageText, RoomName, ValidationError};

/// A client frame that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct DecodeError {
    /// The machine-readable reason, sent as the error frame's `code`.
    pub code: ErrorCode,
    /// The human-readable reason, sent as the error frame's `message`.
    pub message: String,
}

impl DecodeError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The shape of a client frame before its fields are validated.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WireClientMessage {
    Join { room: String, name: String },
    Leave { room: String },
    Post { room: String, text: String },
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

impl TryFrom<WireClientMessage> for ClientMessage {
    type Error = DecodeError;

    fn try_from(wire: WireClientMessage) -> Result<Self, Self::Error> {
        Ok(match wire {
            WireClientMessage::Join { room: r, name: n } => Self::Join {
                room: room(r)?,
                name: name(n)?,
            },
            WireClientMessage::Leave { room: r } => Self::Leave { room: room(r)? },
            WireClientMessage::Post { room: r, text: t } => Self::Post {
                room: room(r)?,
                text: text(t)?,
            },
        })
    }
}

impl ClientMessage {
    /// Decodes one client text frame.
    ///
    /// # Errors
    /// A [`DecodeError`] whose code says which rule the frame broke: see
    /// [`ErrorCode`] and `docs/protocol.md`.
    pub fn decode(frame: &str) -> Result<Self, DecodeError> {
        let value: Value = serde_json::from_str(frame)
            .map_err(|e| DecodeError::new(ErrorCode::InvalidJson, format!("not JSON: {e}")))?;
        let Some(object) = value.as_object() else {
            return Err(DecodeError::new(
                ErrorCode::InvalidMessage,
                "a message must be a JSON object",
            ));
        };
        match object.get("type") {
            Some(Value::String(kind)) if Self::TYPES.contains(&kind.as_str()) => {}
            Some(Value::String(kind)) => {
                return Err(DecodeError::new(
                    ErrorCode::UnknownType,
                    format!(
                        "unknown message type {kind:?}; expected one of {}",
                        Self::TYPES.join(", ")
                    ),
                ));
            }
            Some(_) => {
                return Err(DecodeError::new(
                    ErrorCode::InvalidMessage,
                    "field `type` must be a string",
                ));
            }
            None => {
                return Err(DecodeError::new(
                    ErrorCode::InvalidMessage,
                    "missing field `type`",
                ));
            }
        }
        let wire: WireClientMessage = serde_json::from_value(value)
            .map_err(|e| DecodeError::new(ErrorCode::InvalidMessage, e.to_string()))?;
        Self::try_from(wire)
    }
}
