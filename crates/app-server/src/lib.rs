//! Duplex's web application server.
//!
//! Serves the pages (askama templates from the workspace's `templates/`)
//! and the static files in `public/`. The chat page's JavaScript connects
//! to the ws-server, another origin, at the URL given in the settings (with
//! several ws-server instances, each page gets the next of their URLs).

pub mod api;
pub mod api_key;
pub mod body_timeout;
pub mod dashboard;
pub mod error;
pub mod fleet;
pub mod identity;
pub mod metrics;
pub mod operator;
pub mod pages;
pub mod public_origin;
pub mod publisher;
pub mod routes;
pub mod settings;
pub mod site;
pub mod tokens;
pub mod ws_urls;

pub use publisher::Publisher;
pub use settings::Settings;
pub use site::Site;
pub use ws_urls::WsUrls;

use actix_web::{App, HttpServer, dev::Server, middleware::Logger};

/// Builds the HTTP server on an already bound `listener` and starts the
/// service connection to the ws-server; the caller awaits the returned
/// [`Server`] and stops it through its handle ([`serve`] adds Ctrl-C and
/// SIGTERM). Must be called within a Tokio (or actix) runtime.
///
/// The server's timeouts come from the settings: `client_request_timeout`
/// for a request's head, `keep_alive` between requests,
/// `client_disconnect_timeout` for a closing connection, and
/// `body_timeout` (in [`body_timeout`]) for the bodies of forms and API
/// requests.
///
/// # Errors
/// When a setting cannot work (see [`Settings::check`]: a URL pages would
/// get is not a WebSocket URL, no valid secret, ...), or the listener cannot
/// be used.
pub fn server(listener: std::net::TcpListener, settings: Settings) -> std::io::Result<Server> {
    build(listener, settings).map(|(server, _, _)| server)
}

/// [`server`], run until Ctrl-C or SIGTERM. Stopping ends the dashboards'
/// event streams first (they would hold the graceful stop open), then waits
/// for requests in flight (a second signal cuts that short), then closes
/// the service connection with a closing handshake, so that the ws-server
/// sees the app-server go away rather than a reset. What the binary runs.
/// (Stopping a [`server`] through its handle waits for open dashboards'
/// streams up to the graceful timeout, 3 s.)
///
/// # Errors
/// As [`server`], or when the server fails.
pub async fn serve(listener: std::net::TcpListener, settings: Settings) -> std::io::Result<()> {
    let (server, publisher, fleet) = build(listener, settings)?;
    let handle = server.handle();
    let on_signal = tokio::spawn(async move {
        shutdown_signal().await;
        log::info!("shutdown requested");
        fleet.stop();
        // A second signal stops at once, without waiting for requests.
        tokio::select! {
            () = handle.stop(true) => {}
            () = shutdown_signal() => {
                log::info!("stopping now");
                handle.stop(false).await;
            }
        }
    });
    let stopped = server.await;
    on_signal.abort();
    publisher.shutdown().await;
    stopped
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (what `docker stop` sends).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// How long a graceful stop waits for requests in flight: with the service
/// connection's closing handshake (at most 1 s) inside the 5 s `cargo xtask
/// dev` allows, and the 10 s `docker stop` allows, before they kill.
const SHUTDOWN_TIMEOUT_SECS: u64 = 3;

fn build(
    listener: std::net::TcpListener,
    settings: Settings,
) -> std::io::Result<(Server, Publisher, fleet::Fleet)> {
    // Built once here, outside the worker factory, so that every worker
    // shares one rotation over the URLs and one service connection.
    let site = Site::new(&settings).map_err(std::io::Error::other)?;
    let ws_urls = WsUrls::new(&settings).map_err(std::io::Error::other)?;
    let publisher = Publisher::start(settings.ws_service_url.clone(), site.secret.clone());
    let fleet = fleet::Fleet::start(settings.ws_admin_urls.clone());
    let metrics = actix_web::web::Data::new(metrics::AppMetrics::new(publisher.clone()));
    // The log line holds the request line, which never carries a token
    // (tokens travel in bodies and headers only), and no header.
    let handles = (publisher.clone(), fleet.clone());
    let server = HttpServer::new(move || {
        App::new()
            // Probes ask every few seconds; their lines would drown the
            // rest (they are still counted in the metrics).
            .wrap(
                Logger::new("%a \"%r\" %s %b %Dms")
                    .exclude("/healthz")
                    .exclude("/readyz"),
            )
            .configure(|cfg| {
                routes::configure(cfg, &site, &publisher, &ws_urls, &fleet, &metrics);
            })
    })
    .client_request_timeout(settings.client_request_timeout)
    .client_disconnect_timeout(settings.client_disconnect_timeout)
    .keep_alive(settings.keep_alive)
    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
    // `serve` handles the signals, to end the event streams first.
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((server, handles.0, handles.1))
}
