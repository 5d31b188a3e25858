//! The `app-server` binary: settings, logging, bind, serve until Ctrl-C;
//! or one of the credential commands (`token`, `gen-secret`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use app_server::Settings;
use clap::{Parser, Subcommand};
use log::{error, info};
use protocol::token::Role;
use protocol::{DisplayName, Secret, UserId};

/// Duplex's web application server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// A settings file (TOML); environment variables `DUPLEX_APP_*` override it.
    #[arg(long, env = "DUPLEX_APP_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Print the effective settings (defaults, then the file, then the
    /// environment) as JSON, the secret and the API key masked, and exit
    /// without binding.
    #[arg(long)]
    print_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the pages and the API (what runs without a command).
    Serve,
    /// Print a connection token signed with the configured secret, for a
    /// client that is not a browser page (a bot, a script, websocat).
    Token {
        /// The user id the token names (ASCII letters, digits, `-`, `_`).
        #[arg(long)]
        user: String,
        /// The display name the connection is shown under.
        #[arg(long)]
        name: String,
        /// How long the token is accepted for opening a connection, e.g.
        /// `10m`, `1h`, `7d`.
        #[arg(long, default_value = "1h", value_parser = humantime_serde::re::humantime::parse_duration)]
        ttl: Duration,
        /// What the connection may do.
        #[arg(long, default_value = "member")]
        role: Role,
    },
    /// Print a new random secret (64 hex digits), for `secret` or `api_key`.
    GenSecret {
        /// Write it to this file (mode 0600) instead, only if the file does
        /// not exist yet; an existing file is kept as it is.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_config {
        return match Settings::load(args.config.as_deref()) {
            Ok(settings) => {
                println!("{:#}", settings.masked());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("app-server: invalid settings: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let result = match args.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(args.config.as_deref()),
        Command::Token {
            user,
            name,
            ttl,
            role,
        } => token(args.config.as_deref(), &user, &name, ttl, role),
        Command::GenSecret { out } => gen_secret(out.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("app-server: {message}");
            ExitCode::FAILURE
        }
    }
}

fn token(
    config: Option<&Path>,
    user: &str,
    name: &str,
    ttl: Duration,
    role: Role,
) -> Result<(), String> {
    let settings = Settings::load(config).map_err(|e| format!("invalid settings: {e}"))?;
    let secret = settings.secret().map_err(|e| e.to_string())?;
    let user = UserId::new(user).map_err(|e| format!("--user: {e}"))?;
    let name = DisplayName::new(name).map_err(|e| format!("--name: {e}"))?;
    let minted = app_server::tokens::mint(&secret, user, name, role, ttl);
    println!("{}", minted.token);
    Ok(())
}

fn gen_secret(out: Option<&Path>) -> Result<(), String> {
    let secret = Secret::generate();
    let Some(path) = out else {
        println!("{secret}");
        return Ok(());
    };
    match app_server::settings::write_new_secret_file(path, &secret) {
        Ok(true) => eprintln!("app-server: wrote a new secret to {}", path.display()),
        Ok(false) => eprintln!("app-server: {} exists; kept as it is", path.display()),
        Err(e) => return Err(format!("cannot write {}: {e}", path.display())),
    }
    Ok(())
}

fn serve(config: Option<&Path>) -> Result<(), String> {
    logging::init(Settings::log_format(config));
    let settings = Settings::load(config).map_err(|e| {
        error!("invalid settings: {e}");
        "not started".to_owned()
    })?;
    actix_web::rt::System::new().block_on(run(settings))
}

async fn run(settings: Settings) -> Result<(), String> {
    let listener = std::net::TcpListener::bind(settings.addr()).map_err(|e| {
        error!("cannot listen on {}: {e}", settings.addr());
        "not started".to_owned()
    })?;
    let local = listener.local_addr().unwrap_or_else(|_| settings.addr());
    info!(
        "app-server listening on http://{local} for {} (pages connect to {}, static files from {})",
        settings.public_origin,
        settings.page_ws_urls().join(", "),
        settings.public_dir.display()
    );
    app_server::serve(listener, settings).await.map_err(|e| {
        error!("server failed: {e}");
        "stopped".to_owned()
    })
}
