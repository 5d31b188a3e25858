//! The chat: the [`Component`] that turns protocol messages into hub actions.

use log::debug;
use protocol::{ClientMessage, ErrorCode, PROTOCOL_VERSION, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

use crate::component::{Component, Connection, ConnectionError};
use crate::hub::Hub;

/// The chat application: join, post, leave.
#[derive(Debug, Clone, Default)]
pub struct Chat {
    hub: Hub,
}

impl Chat {
    /// A chat over `hub`.
    #[must_use]
    pub fn new(hub: Hub) -> Self {
        Self { hub }
    }

    /// The chat's rooms.
    #[must_use]
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Carries out one decoded message; returns the reply for the sender,
    /// if it gets one of its own.
    fn apply(&self, conn: &Connection, message: ClientMessage) -> Option<ServerMessage> {
        match message {
            ClientMessage::Join { room, name } => {
                self.hub.join(conn, room.clone(), name.clone());
                Some(ServerMessage::Joined { room, name })
            }
            ClientMessage::Leave { room } => Some(match self.hub.leave(conn.id(), &room) {
                Ok(()) => ServerMessage::Left { room },
                Err(e) => ServerMessage::error(ErrorCode::NotJoined, e.to_string()),
            }),
            // On success the poster's own copy of the message, queued by the
            // hub with everyone else's, is its acknowledgement.
            ClientMessage::Post { room, text } => self
                .hub
                .post(conn.id(), room, text)
                .err()
                .map(|e| ServerMessage::error(ErrorCode::NotJoined, e.to_string())),
        }
    }
}

impl Component for Chat {
    async fn on_open(&self, conn: &Connection) {
        let _ = conn.send_message(&ServerMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            connection_id: conn.id(),
        });
    }

    async fn on_message(&self, conn: &Connection, message: Message) {
        let reply = match message {
            Message::Text(text) => match ClientMessage::decode(&text) {
                Ok(message) => self.apply(conn, message),
                Err(e) => Some(ServerMessage::error(e.code, e.message)),
            },
            Message::Binary(_) => Some(ServerMessage::error(
                ErrorCode::BinaryNotSupported,
                "binary frames are not supported; send JSON text frames",
            )),
            _ => None,
        };
        if let Some(reply) = reply {
            let _ = conn.send_message(&reply);
        }
    }

    async fn on_close(&self, conn: &Connection) {
        self.hub.disconnect(conn.id());
    }

    async fn on_error(&self, conn: &Connection, error: &ConnectionError) {
        debug!("connection {}: {error}", conn.id());
    }
}
