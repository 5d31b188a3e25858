//! The chat: the [`Component`] that turns protocol messages into engine
//! requests, for connections that proved who they are with a token.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use log::debug;
use protocol::encoded::{HistoryHead, PING_FRAME};
use protocol::token::{self, TOKEN_SUBPROTOCOL_PREFIX, TokenError};
use protocol::{
    Claims, ClientFrame, ClientMessage, ClientRef, CloseCode, ErrorCode, PROTOCOL_VERSION,
    RoomName, Secret, ServerMessage,
};
use tokio_tungstenite::tungstenite::handshake::server::Request;
use tokio_tungstenite::tungstenite::http::{Extensions, header};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::budget::{Budget, Verdict};
use crate::component::{Component, Connection, ConnectionError, Rejection};
use crate::engine::{Draft, Engine, EngineError, Join};
use crate::metrics::Metrics;
use crate::settings::{JOIN_COST, Settings};
use crate::untrusted::Untrusted;

/// One connection as the chat knows it: who it is (its token's claims),
/// the rooms it is in, and its request budget. Set during the handshake and
/// kept in the connection's extensions: only that connection's callbacks
/// touch it, and they never overlap, so its lock is never contended.
#[derive(Debug)]
struct Session {
    claims: Claims,
    rooms: Mutex<BTreeSet<RoomName>>,
    budget: Budget,
}

impl Session {
    fn of(conn: &Connection) -> Option<Arc<Self>> {
        conn.extensions().get::<Arc<Self>>().cloned()
    }

    fn rooms(&self) -> MutexGuard<'_, BTreeSet<RoomName>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The token a handshake presents: `Authorization: Bearer TOKEN` from
/// scripts and servers, or a `Sec-WebSocket-Protocol` value
/// `duplex.token.TOKEN` from browsers, which cannot set headers on a
/// WebSocket.
fn presented_token(request: &Request) -> Result<&str, TokenError> {
    if let Some(authorization) = request.headers().get(header::AUTHORIZATION) {
        let value = authorization.to_str().map_err(|_| TokenError::Malformed)?;
        let (scheme, token) = value.split_once(' ').ok_or(TokenError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(TokenError::Malformed);
        }
        return Ok(token.trim());
    }
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|offered| offered.trim().strip_prefix(TOKEN_SUBPROTOCOL_PREFIX))
        .ok_or(TokenError::Missing)
}

/// The chat application: rooms with presence and history; members join,
/// post and leave; services and operators also publish and list rooms.
#[derive(Debug, Clone)]
pub struct Chat {
    engine: Engine,
    /// Checks connection tokens.
    secret: Secret,
    /// The limits that apply per connection.
    settings: Arc<Settings>,
    /// Where engine failures are counted.
    metrics: Arc<Metrics>,
}

impl Chat {
    /// A chat over `engine`, accepting connections whose token `secret`
    /// signed, with the per-connection limits of `settings`; engine
    /// failures are counted in `metrics`.
    #[must_use]
    pub fn new(engine: Engine, secret: Secret, settings: &Settings, metrics: Arc<Metrics>) -> Self {
        Self {
            engine,
            secret,
            settings: Arc::new(settings.clone()),
            metrics,
        }
    }

    /// The error frame for `error`, counted as an engine failure of
    /// `operation` when the engine's store was unreachable.
    fn engine_error(
        &self,
        operation: &'static str,
        error: &EngineError,
        reference: Option<ClientRef>,
    ) -> ServerMessage {
        if matches!(error, EngineError::Unavailable(_)) {
            self.metrics.engine_error(operation);
        }
        ServerMessage::error(error.code(), error.to_string(), reference)
    }

    /// The chat's room engine.
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Carries out one decoded frame; returns the reply for the sender, if
    /// it gets one of its own (`joined` is queued by the engine, in order
    /// with the room's other frames).
    async fn apply(
        &self,
        conn: &Connection,
        session: &Session,
        frame: ClientFrame,
    ) -> Option<ServerMessage> {
        let reference = frame.reference;
        let claims = &session.claims;
        let not_joined = |room: &RoomName, r| {
            ServerMessage::error(
                ErrorCode::NotJoined,
                format!("you have not joined room {:?}", room.as_str()),
                r,
            )
        };
        match frame.message {
            ClientMessage::Join { room, since } => {
                let (is_member, count) = {
                    let rooms = session.rooms();
                    (rooms.contains(&room), rooms.len())
                };
                let max = self.settings.max_rooms_per_connection;
                if !is_member && count >= max {
                    return Some(ServerMessage::error(
                        ErrorCode::TooManyRooms,
                        format!("a connection may be in at most {max} rooms; leave one first"),
                        reference,
                    ));
                }
                let join = Join {
                    conn,
                    room: &room,
                    user: &claims.user,
                    name: &claims.name,
                    since: since.as_ref(),
                    reference: reference.clone(),
                };
                match self.engine.join(join).await {
                    Ok(()) => {
                        debug!(
                            "connection {} joined {} as {} (user {})",
                            conn.id(),
                            Untrusted(room.as_str()),
                            Untrusted(claims.name.as_str()),
                            Untrusted(claims.user.as_str())
                        );
                        session.rooms().insert(room);
                        None
                    }
                    Err(e) => Some(self.engine_error("join", &e, reference)),
                }
            }
            ClientMessage::Leave { room } => {
                if !session.rooms().remove(&room) {
                    return Some(not_joined(&room, reference));
                }
                self.engine.leave(conn.id(), &room).await;
                debug!("connection {} left {}", conn.id(), Untrusted(room.as_str()));
                Some(ServerMessage::Left { room, reference })
            }
            ClientMessage::Post { room, text } => {
                if !session.rooms().contains(&room) {
                    return Some(not_joined(&room, reference));
                }
                let draft = Draft {
                    room,
                    user: claims.user.clone(),
                    name: claims.name.clone(),
                    text,
                    announcement: false,
                    reference,
                };
                self.store(draft).await
            }
            ClientMessage::Publish { .. } | ClientMessage::ListRooms { .. }
                if !claims.role.is_privileged() =>
            {
                Some(ServerMessage::error(
                    ErrorCode::Forbidden,
                    "only service and operator connections may publish or list rooms",
                    reference,
                ))
            }
            ClientMessage::Publish { room, name, text } => {
                let draft = Draft {
                    room,
                    user: claims.user.clone(),
                    name,
                    text,
                    announcement: true,
                    reference,
                };
                self.store(draft).await
            }
            ClientMessage::History {
                room,
                before,
                limit,
            } => {
                if !session.rooms().contains(&room) {
                    return Some(not_joined(&room, reference));
                }
                let limit = limit.unwrap_or(ClientMessage::HISTORY_DEFAULT_LIMIT);
                let limit = usize::try_from(limit).unwrap_or(usize::MAX);
                match self.engine.history(&room, before, limit).await {
                    Ok(page) => {
                        // Spliced from the stored entries, as a join's
                        // history is: no entry is decoded or encoded again.
                        let head = HistoryHead {
                            room,
                            epoch: page.epoch,
                            has_earlier: page.has_earlier,
                            reference,
                        };
                        let frame = head.encode(page.entries.iter().map(String::as_str));
                        let _ = conn.send_text(frame.into());
                        None
                    }
                    Err(e) => Some(self.engine_error("history", &e, reference)),
                }
            }
            ClientMessage::ListRooms { after } => {
                let page_size = self.settings.directory_page_size;
                Some(match self.engine.rooms(after.as_ref(), page_size).await {
                    Ok(page) => ServerMessage::Rooms {
                        rooms: page.rooms,
                        next: page.next,
                        reference,
                    },
                    Err(e) => self.engine_error("rooms", &e, reference),
                })
            }
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
            Err(e) => Some(self.engine_error("publish", &e, reference)),
        }
    }
}

impl Component for Chat {
    fn on_handshake(
        &self,
        request: &Request,
        extensions: &mut Extensions,
    ) -> Result<(), Rejection> {
        let claims = presented_token(request)
            .and_then(|presented| token::verify(presented, &self.secret, token::now_secs()))
            .map_err(|e| Rejection::new(401, e.to_string()))?;
        extensions.insert(Arc::new(Session {
            claims,
            rooms: Mutex::default(),
            budget: Budget::new(
                self.settings.max_frames_per_second,
                self.settings.frame_burst,
                self.settings.rate_limit_strikes,
            ),
        }));
        Ok(())
    }

    async fn on_open(&self, conn: &Connection) {
        let Some(session) = Session::of(conn) else {
            return;
        };
        let _ = conn.send_message(&ServerMessage::Welcome {
            protocol: PROTOCOL_VERSION,
            connection_id: conn.id(),
            user: session.claims.user.clone(),
            name: session.claims.name.clone(),
            ping_interval_ms: u64::try_from(self.settings.heartbeat_interval.as_millis())
                .unwrap_or(u64::MAX),
        });
    }

    async fn on_message(&self, conn: &Connection, message: Message) {
        let Some(session) = Session::of(conn) else {
            return;
        };
        let decoded = match message {
            Message::Text(text) => ClientFrame::decode(&text)
                .map_err(|e| ServerMessage::error(e.code, e.message, e.reference)),
            Message::Binary(_) => Err(ServerMessage::error(
                ErrorCode::BinaryNotSupported,
                "binary frames are not supported; send JSON text frames",
                None,
            )),
            _ => return,
        };
        // Every frame costs, refused ones too: answering them is work. A
        // join or a history request may send many messages back (see
        // JOIN_COST).
        let cost = match &decoded {
            Ok(ClientFrame {
                message: ClientMessage::Join { .. } | ClientMessage::History { .. },
                ..
            }) => JOIN_COST,
            _ => 1,
        };
        // Service and operator tokens are minted only with the secret, for
        // servers and people answerable for their traffic: the app-server's
        // one service connection carries every API caller's publishes.
        let verdict = if session.claims.role.is_privileged() {
            Verdict::Allowed
        } else {
            session.budget.spend(cost)
        };
        let reply = match verdict {
            Verdict::Allowed => match decoded {
                Ok(frame) => self.apply(conn, &session, frame).await,
                Err(refusal) => Some(refusal),
            },
            Verdict::Refused => Some(ServerMessage::error(
                ErrorCode::RateLimited,
                format!(
                    "too many requests: at most {} per second; slow down",
                    self.settings.max_frames_per_second
                ),
                decoded.ok().and_then(|frame| frame.reference),
            )),
            Verdict::Exhausted => {
                conn.close(
                    CloseCode::POLICY_VIOLATION,
                    "rate limit exceeded repeatedly",
                );
                None
            }
        };
        if let Some(reply) = reply {
            let _ = conn.send_message(&reply);
        }
    }

    async fn on_close(&self, conn: &Connection) {
        let Some(session) = Session::of(conn) else {
            return;
        };
        let rooms = std::mem::take(&mut *session.rooms());
        for room in &rooms {
            self.engine.leave(conn.id(), room).await;
            debug!(
                "connection {} left {} (closed)",
                conn.id(),
                Untrusted(room.as_str())
            );
        }
    }

    async fn on_error(&self, conn: &Connection, error: &ConnectionError) {
        debug!("connection {}: {error}", conn.id());
    }

    /// `{"type":"ping"}`: browsers cannot see the WebSocket ping, and a
    /// page that only reads would otherwise not notice a frozen server.
    fn heartbeat_frame(&self) -> Option<Message> {
        Some(Message::Text(Utf8Bytes::from_static(PING_FRAME)))
    }
}
