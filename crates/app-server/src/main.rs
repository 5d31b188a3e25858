//! The `app-server` binary: settings, logging, bind, serve until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use app_server::Settings;
use clap::Parser;
use log::{error, info};

/// Duplex's web application server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// A settings file (TOML); environment variables `DUPLEX_APP_*` override it.
    #[arg(long, env = "DUPLEX_APP_CONFIG")]
    config: Option<PathBuf>,
}

#[actix_web::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let settings = match Settings::load(args.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            error!("invalid settings: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match std::net::TcpListener::bind(settings.addr()) {
        Ok(listener) => listener,
        Err(e) => {
            error!("cannot listen on {}: {e}", settings.addr());
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().unwrap_or_else(|_| settings.addr());
    info!(
        "app-server listening on http://{local} (pages connect to {}, static files from {})",
        settings.page_ws_urls().join(", "),
        settings.public_dir.display()
    );
    match app_server::server(listener, settings) {
        Ok(server) => match server.await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!("server failed: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            error!("cannot start: {e}");
            ExitCode::FAILURE
        }
    }
}
