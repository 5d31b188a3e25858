//! Duplex's WebSocket server.
//!
//! A raw accept loop ([`server::run`]) hands each TCP connection to its own
//! task ([`connection`]), which performs the handshake and then feeds frames
//! to a [`Component`]: Ratchet's `MessageComponentInterface` as a Rust
//! trait. The chat ([`Chat`]) is one component; [`OriginCheck`] wraps a
//! component to refuse foreign origins, as Ratchet's decorator of that name
//! does.
//!
//! Rooms live in an [`Engine`]: in this process ([`engine::MemoryEngine`],
//! the default) or in Redis ([`engine::RedisEngine`]), where any number of
//! instances act as one server.
//!
//! Data flows one way: socket → connection → component → engine → local
//! room → outboxes → sockets.

pub mod admin;
mod budget;
mod buffers;
pub mod chat;
pub mod component;
mod connection;
mod connection_id;
pub mod engine;
mod handshake;
mod log_limit;
pub mod metrics;
pub mod origin;
pub mod outbox;
pub mod server;
pub mod settings;
mod untrusted;

pub use chat::Chat;
pub use component::{Component, Connection, ConnectionError, Rejection};
pub use engine::Engine;
pub use origin::OriginCheck;
pub use settings::Settings;

use log::error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Serves the chat on `listener` with `settings` until `shutdown` is
/// cancelled, then waits for the engine's tasks. Tests run it on port 0.
pub async fn serve_chat(listener: TcpListener, settings: Settings, shutdown: CancellationToken) {
    serve(listener, None, settings, shutdown).await;
}

/// [`serve_chat`], with the admin pages (see [`admin`]) on `admin`. This
/// is what the binary runs.
pub async fn serve_chat_with_admin(
    listener: TcpListener,
    admin: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) {
    serve(listener, Some(admin), settings, shutdown).await;
}

async fn serve(
    listener: TcpListener,
    admin: Option<TcpListener>,
    settings: Settings,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    let metrics = metrics::Metrics::new();
    let engine = match Engine::start(&settings, &shutdown, &tracker) {
        Ok(engine) => engine,
        Err(e) => {
            error!("cannot start the {:?} engine: {e}", settings.engine);
            return;
        }
    };
    let secret = match settings.token_secret() {
        Ok(secret) => secret,
        Err(e) => {
            error!("{e}");
            return;
        }
    };
    // The admin port outlives the accept loop: while connections drain,
    // `/readyz` answers 503 (not accepting) instead of refusing to connect.
    let admin_stop = CancellationToken::new();
    if let Some(listener) = admin {
        let admin = admin::Admin::new(engine.clone(), std::sync::Arc::clone(&metrics));
        tracker.spawn(admin::probe_engine(
            std::sync::Arc::clone(&admin),
            shutdown.clone(),
        ));
        tracker.spawn(admin::serve(listener, admin, admin_stop.clone()));
    }
    let chat = Chat::new(engine, secret, &settings, std::sync::Arc::clone(&metrics));
    let component = OriginCheck::new(chat, &settings.allowed_origins);
    server::run(listener, settings, component, shutdown, metrics).await;
    admin_stop.cancel();
    // Connections are closed, so every room has let its members go; what
    // remains stops on `shutdown`.
    tracker.close();
    tracker.wait().await;
}
