//! Duplex's web application server.
//!
//! Serves the pages (askama templates from the workspace's `templates/`)
//! and the static files in `public/`. The chat page's JavaScript connects
//! to the ws-server, another origin, at the URL given in the settings.

pub mod error;
pub mod pages;
pub mod routes;
pub mod settings;

pub use settings::Settings;

use actix_web::{App, HttpServer, dev::Server, middleware::Logger};

/// Builds the HTTP server on an already bound `listener`; the caller awaits
/// the returned [`Server`] (it stops on Ctrl-C and SIGTERM) or stops it
/// through its handle.
///
/// # Errors
/// When `settings.ws_url` is not a WebSocket URL, or the listener cannot
/// be used.
pub fn server(listener: std::net::TcpListener, settings: Settings) -> std::io::Result<Server> {
    // Check the settings once here, so that workers never meet a bad one.
    settings.ws_origin().map_err(std::io::Error::other)?;
    let server = HttpServer::new(move || {
        App::new()
            .wrap(Logger::new("%a \"%r\" %s %b %Dms"))
            .configure(|cfg| {
                // Checked above; configure cannot fail for these settings.
                let _ = routes::configure(cfg, &settings);
            })
    })
    .listen(listener)?
    .run();
    Ok(server)
}
