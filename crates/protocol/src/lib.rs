//! The Duplex wire protocol.
//!
//! Every WebSocket text frame is one JSON object whose `type` field names the
//! message. Clients send [`ClientMessage`]s, the server answers with
//! [`ServerMessage`]s. The values inside are validated newtypes
//! ([`RoomName`], [`DisplayName`], [`MessageText`]): once a message is decoded,
//! its contents are known to be within the documented limits.
//!
//! Decoding a client frame goes through [`ClientFrame::decode`], which
//! classifies every failure into an [`ErrorCode`] that the server sends back
//! in an `error` frame.

pub mod admin;
mod close;
mod decode;
pub mod encoded;
mod error;
mod message;
mod names;
pub mod token;

pub use close::CloseCode;
pub use decode::DecodeError;
pub use error::ErrorCode;
pub use message::{
    ChatMessage, ClientFrame, ClientMessage, Member, MessageId, Position, RoomInfo, ServerMessage,
    now_millis,
};
pub use names::{
    ClientRef, DisplayName, Epoch, MessageText, NameKey, RoomName, UserId, ValidationError,
};
pub use token::{Claims, Role, Secret};

/// The protocol version this crate speaks, sent to every client in `welcome`.
pub const PROTOCOL_VERSION: u32 = 2;

/// The WebSocket subprotocol naming [`PROTOCOL_VERSION`]. A client may offer
/// it in `Sec-WebSocket-Protocol`; the server then selects it.
pub const SUBPROTOCOL: &str = "duplex.v2";
