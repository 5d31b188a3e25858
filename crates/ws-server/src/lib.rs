//! Duplex's WebSocket server.
//!
//! A raw accept loop ([`server::run`]) hands each TCP connection to its own
//! task ([`connection`]), which performs the handshake and then feeds frames
//! to a [`Component`]: Ratchet's `MessageComponentInterface` as a Rust
//! trait. The chat ([`Chat`]) is one component; [`OriginCheck`] wraps a
//! component to refuse foreign origins, as Ratchet's decorator of that name
//! does.
//!
//! Data flows one way: socket → connection → component → hub → outboxes →
//! sockets.

pub mod chat;
pub mod component;
mod connection;
pub mod hub;
pub mod origin;
pub mod server;
pub mod settings;

pub use chat::Chat;
pub use component::{Component, Connection, ConnectionError, Rejection};
pub use hub::Hub;
pub use origin::OriginCheck;
pub use settings::Settings;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves the chat on `listener` with `settings` until `shutdown` is
/// cancelled. This is what the binary runs; tests run it on port 0.
pub async fn serve_chat(listener: TcpListener, settings: Settings, shutdown: CancellationToken) {
    let chat = Chat::new(Hub::new(settings.history_size), &settings.service_secret);
    let component = OriginCheck::new(chat, &settings.allowed_origins);
    server::run(listener, settings, component, shutdown).await;
}
