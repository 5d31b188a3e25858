//! The `ws-server` binary: settings, logging, bind, serve, stop on Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use log::{error, info};
use tokio_util::sync::CancellationToken;
use ws_server::Settings;

/// Duplex's WebSocket server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// A settings file (TOML); environment variables `DUPLEX_WS_*` override it.
    #[arg(long, env = "DUPLEX_WS_CONFIG")]
    config: Option<PathBuf>,
    /// Print the effective settings (defaults, then the file, then the
    /// environment) as JSON, the secret and any Redis password masked, and
    /// exit without binding.
    #[arg(long)]
    print_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    logging::init(Settings::log_format(args.config.as_deref()));
    let settings = match Settings::load(args.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            error!("invalid settings: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.print_config {
        println!("{:#}", settings.masked());
        return ExitCode::SUCCESS;
    }
    // The settings choose the runtime, so it is built here rather than by
    // `#[tokio::main]`.
    let one_core = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    // On one core, worker threads only add cross-thread wake-ups and
    // atomics: a current-thread runtime served a third more round trips there (see
    // docs/architecture.md, "The runtime").
    let threads = match settings.worker_threads {
        0 if one_core => 1,
        n => n,
    };
    let runtime = match threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    };
    match runtime {
        Ok(runtime) => runtime.block_on(run(settings)),
        Err(e) => {
            error!("cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(settings.addr()).await {
        Ok(listener) => listener,
        Err(e) => {
            error!("cannot listen on {}: {e}", settings.addr());
            return ExitCode::FAILURE;
        }
    };
    let admin = match tokio::net::TcpListener::bind(settings.admin_addr()).await {
        Ok(admin) => admin,
        Err(e) => {
            error!(
                "cannot listen on {} for the admin port: {e}; set admin_port (DUPLEX_WS_ADMIN_PORT) to a free port",
                settings.admin_addr()
            );
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().unwrap_or_else(|_| settings.addr());
    let admin_local = admin.local_addr().unwrap_or_else(|_| settings.admin_addr());
    info!(
        "ws-server listening on ws://{local}{} (allowed origins: {})",
        settings.path,
        settings.allowed_origins.join(", ")
    );
    info!("admin port on http://{admin_local} (/healthz, /readyz, /metrics, /stats)");

    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutdown requested");
        on_signal.cancel();
    });
    ws_server::serve_chat_with_admin(listener, admin, settings, shutdown).await;
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (what `docker stop` sends).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
