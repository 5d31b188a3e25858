//! The chat: the [`Component`] that turns protocol messages into hub actions.

use log::debug;
use protocol::{ClientFrame, ClientMessage, ErrorCode, PROTOCOL_VERSION, ServerMessage};
use subtle::ConstantTimeEq;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::Request;
use tokio_tungstenite::tungstenite::http::{Extensions, header};

use crate::component::{Component, Connection, ConnectionError, Rejection};
use crate::hub::Hub;

/// What a connection may do. Set during the handshake, kept in the
/// connection's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A browser or other end user: join, post, leave.
    Member,
    /// A trusted server (the app-server): may also `publish` into any room
    /// and `list_rooms`.
    Service,
}

/// The chat application: rooms with presence and history; members join,
/// post and leave; services publish and list rooms.
#[derive(Debug, Clone)]
pub struct Chat {
    hub: Hub,
    /// The `Authorization: Bearer` secret of service connections; `None`
    /// when they are disabled.
    service_secret: Option<String>,
}

impl Chat {
    /// A chat over `hub`, accepting service connections that present
    /// `service_secret` (none when it is empty).
    #[must_use]
    pub fn new(hub: Hub, service_secret: &str) -> Self {
        Self {
            hub,
            service_secret: Some(service_secret.to_owned()).filter(|s| !s.is_empty()),
        }
    }

    /// The chat's rooms.
    #[must_use]
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Carries out one decoded frame; returns the reply for the sender, if
    /// it gets one of its own (some replies are queued by the hub, in order
    /// with the room's other frames).
    fn apply(&self, conn: &Connection, frame: ClientFrame) -> Option<ServerMessage> {
        let reference = frame.reference;
        let is_service = conn.extensions().get::<Role>() == Some(&Role::Service);
        let not_joined = |e: crate::hub::NotJoined, r| {
            ServerMessage::error(ErrorCode::NotJoined, e.to_string(), r)
        };
        match frame.message {
            ClientMessage::Join { room, name, since } => {
                self.hub.join(conn, room, name, since.as_ref(), reference);
                None
            }
            ClientMessage::Leave { room } => Some(match self.hub.leave(conn.id(), &room) {
                Ok(()) => ServerMessage::Left { room, reference },
                Err(e) => not_joined(e, reference),
            }),
            ClientMessage::Post { room, text } => {
                match self
                    .hub
                    .post(conn.id(), room.clone(), text, reference.clone())
                {
                    // Everyone, the poster included, got the message itself;
                    // a `ref` asks for an explicit acknowledgement too.
                    Ok(stored) => reference.map(|reference| ServerMessage::Ack {
                        reference,
                        room,
                        id: stored.id,
                        offset: stored.offset,
                    }),
                    Err(e) => Some(not_joined(e, reference)),
                }
            }
            ClientMessage::Publish { .. } | ClientMessage::ListRooms if !is_service => {
                Some(ServerMessage::error(
                    ErrorCode::Forbidden,
                    "only service connections may publish or list rooms",
                    reference,
                ))
            }
            ClientMessage::Publish { room, name, text } => {
                let stored = self
                    .hub
                    .publish(room.clone(), name, text, reference.clone());
                reference.map(|reference| ServerMessage::Ack {
                    reference,
                    room,
                    id: stored.id,
                    offset: stored.offset,
                })
            }
            ClientMessage::ListRooms => Some(ServerMessage::Rooms {
                rooms: self.hub.rooms(),
                reference,
            }),
        }
    }
}

impl Component for Chat {
    fn on_handshake(
        &self,
        request: &Request,
        extensions: &mut Extensions,
    ) -> Result<(), Rejection> {
        let Some(authorization) = request.headers().get(header::AUTHORIZATION) else {
            extensions.insert(Role::Member);
            return Ok(());
        };
        let presented = authorization
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let valid = self
            .service_secret
            .as_ref()
            .is_some_and(|secret| bool::from(secret.as_bytes().ct_eq(presented.as_bytes())));
        if !valid {
            return Err(Rejection::new(401, "invalid service credentials"));
        }
        extensions.insert(Role::Service);
        Ok(())
    }

    async fn on_open(&self, conn: &Connection) {
        let _ = conn.send_message(&ServerMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            connection_id: conn.id(),
        });
    }

    async fn on_message(&self, conn: &Connection, message: Message) {
        let reply = match message {
            Message::Text(text) => match ClientFrame::decode(&text) {
                Ok(frame) => self.apply(conn, frame),
                Err(e) => Some(ServerMessage::error(e.code, e.message, e.reference)),
            },
            Message::Binary(_) => Some(ServerMessage::error(
                ErrorCode::BinaryNotSupported,
                "binary frames are not supported; send JSON text frames",
                None,
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
