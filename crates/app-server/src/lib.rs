//! Duplex's web application server.
//!
//! Serves the pages (askama templates from the workspace's `templates/`)
//! and the static files in `public/`. The chat page's JavaScript connects
//! to the ws-server, another origin, at the URL given in the settings (with
//! several ws-server instances, each page gets the next of their URLs).

pub mod api;
pub mod error;
pub mod pages;
pub mod publisher;
pub mod routes;
pub mod settings;
pub mod ws_urls;

pub use publisher::Publisher;
pub use settings::Settings;
pub use ws_urls::WsUrls;

use actix_web::{App, HttpServer, dev::Server, middleware::Logger};

/// Builds the HTTP server on an already bound `listener` and starts the
/// service connection to the ws-server; the caller awaits the returned
/// [`Server`] (it stops on Ctrl-C and SIGTERM) or stops it through its
/// handle. Must be called within a Tokio (or actix) runtime.
///
/// # Errors
/// When a URL pages would get (`settings.ws_url`, or each of
/// `settings.ws_urls`) is not a WebSocket URL, or the listener cannot be
/// used.
pub fn server(listener: std::net::TcpListener, settings: Settings) -> std::io::Result<Server> {
    // Built once here, outside the worker factory, so that every worker
    // shares one rotation over the URLs.
    let ws_urls = WsUrls::new(&settings).map_err(std::io::Error::other)?;
    let publisher = Publisher::start(
        settings.ws_service_url.clone(),
        settings.service_secret.clone(),
    );
    let server = HttpServer::new(move || {
        App::new()
            .wrap(Logger::new("%a \"%r\" %s %b %Dms"))
            .configure(|cfg| routes::configure(cfg, &settings, &publisher, &ws_urls))
    })
    .listen(listener)?
    .run();
    Ok(server)
}
