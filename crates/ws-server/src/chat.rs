//! The chat: the [`Component`] that turns protocol messages into engine
//! requests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use log::debug;
use protocol::{
    ClientFrame, ClientMessage, DisplayName, ErrorCode, PROTOCOL_VERSION, RoomName, ServerMessage,
};
use subtle::ConstantTimeEq;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::Request;
use tokio_tungstenite::tungstenite::http::{Extensions, header};

use crate::component::{Component, Connection, ConnectionError, Rejection};
use crate::engine::{Draft, Engine, Join};

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

/// The rooms one connection is in, with the name it shows in each. Kept in
/// the connection's extensions: only that connection's callbacks touch it,
/// and they never overlap, so its lock is never contended and posts in
/// different rooms share no lock here.
#[derive(Debug, Clone, Default)]
struct Memberships(Arc<Mutex<BTreeMap<RoomName, DisplayName>>>);

impl Memberships {
    fn of(conn: &Connection) -> Self {
        conn.extensions().get::<Self>().cloned().unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<RoomName, DisplayName>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The chat application: rooms with presence and history; members join,
/// post and leave; services publish and list rooms.
#[derive(Debug, Clone)]
pub struct Chat {
    engine: Engine,
    /// The `Authorization: Bearer` secret of service connections; `None`
    /// when they are disabled.
    service_secret: Option<String>,
    /// Rooms one connection may be in at once.
    max_rooms_per_connection: usize,
}

impl Chat {
    /// A chat over `engine`, accepting service connections that present
    /// `service_secret` (none when it is empty), letting each connection
    /// into at most `max_rooms_per_connection` rooms.
    #[must_use]
    pub fn new(engine: Engine, service_secret: &str, max_rooms_per_connection: usize) -> Self {
        Self {
            engine,
            service_secret: Some(service_secret.to_owned()).filter(|s| !s.is_empty()),
            max_rooms_per_connection,
        }
    }

    /// The chat's room engine.
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Carries out one decoded frame; returns the reply for the sender, if
    /// it gets one of its own (`joined` is queued by the engine, in order
    /// with the room's other frames).
    async fn apply(&self, conn: &Connection, frame: ClientFrame) -> Option<ServerMessage> {
        let reference = frame.reference;
        let is_service = conn.extensions().get::<Role>() == Some(&Role::Service);
        let memberships = Memberships::of(conn);
        let not_joined = |room: &RoomName, r| {
            ServerMessage::error(
                ErrorCode::NotJoined,
                format!("you have not joined room {:?}", room.as_str()),
                r,
            )
        };
        match frame.message {
            ClientMessage::Join { room, name, since } => {
                let (is_member, count) = {
                    let rooms = memberships.lock();
                    (rooms.contains_key(&room), rooms.len())
                };
                if !is_member && count >= self.max_rooms_per_connection {
                    return Some(ServerMessage::error(
                        ErrorCode::TooManyRooms,
                        format!(
                            "a connection may be in at most {} rooms; leave one first",
                            self.max_rooms_per_connection
                        ),
                        reference,
                    ));
                }
                let join = Join {
                    conn,
                    room: &room,
                    name: &name,
                    since: since.as_ref(),
                    reference: reference.clone(),
                };
                match self.engine.join(join).await {
                    Ok(()) => {
                        memberships.lock().insert(room, name);
                        None
                    }
                    Err(e) => Some(ServerMessage::error(e.code(), e.to_string(), reference)),
                }
            }
            ClientMessage::Leave { room } => {
                if memberships.lock().remove(&room).is_none() {
                    return Some(not_joined(&room, reference));
                }
                self.engine.leave(conn.id(), &room).await;
                Some(ServerMessage::Left { room, reference })
            }
            ClientMessage::Post { room, text } => {
                let Some(name) = memberships.lock().get(&room).cloned() else {
                    return Some(not_joined(&room, reference));
                };
                let draft = Draft {
                    room,
                    name,
                    text,
                    announcement: false,
                    reference,
                };
                self.store(draft).await
            }
            ClientMessage::Publish { .. } | ClientMessage::ListRooms if !is_service => {
                Some(ServerMessage::error(
                    ErrorCode::Forbidden,
                    "only service connections may publish or list rooms",
                    reference,
                ))
            }
            ClientMessage::Publish { room, name, text } => {
                let draft = Draft {
                    room,
                    name,
                    text,
                    announcement: true,
                    reference,
                };
                self.store(draft).await
            }
            ClientMessage::ListRooms => Some(match self.engine.rooms().await {
                Ok(rooms) => ServerMessage::Rooms { rooms, reference },
                Err(e) => ServerMessage::error(e.code(), e.to_string(), reference),
            }),
        }
    }

    /// Stores a post or an announcement. Everyone in the room, the poster
    /// included, gets the message itself; a `ref` asks for an explicit
    /// acknowledgement too, and gets the error if nothing was stored.
    async fn store(&self, draft: Draft) -> Option<ServerMessage> {
        let reference = draft.reference.clone();
        let room = draft.room.clone();
        match self.engine.publish(draft).await {
            Ok(stored) => reference.map(|reference| ServerMessage::Ack {
                reference,
                room,
                id: stored.id,
                offset: stored.offset,
            }),
            Err(e) => Some(ServerMessage::error(e.code(), e.to_string(), reference)),
        }
    }
}

impl Component for Chat {
    fn on_handshake(
        &self,
        request: &Request,
        extensions: &mut Extensions,
    ) -> Result<(), Rejection> {
        extensions.insert(Memberships::default());
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
                Ok(frame) => self.apply(conn, frame).await,
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
        let rooms = std::mem::take(&mut *Memberships::of(conn).lock());
        for room in rooms.keys() {
            self.engine.leave(conn.id(), room).await;
        }
    }

    async fn on_error(&self, conn: &Connection, error: &ConnectionError) {
        debug!("connection {}: {error}", conn.id());
    }
}
