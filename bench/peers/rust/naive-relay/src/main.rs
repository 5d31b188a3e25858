//! Runs the naive relay on 127.0.0.1:$PORT (default 5100) until SIGTERM or
//! SIGINT.

use std::error::Error;

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

const DEFAULT_PORT: u16 = 5100;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let port = match std::env::var("PORT") {
        Ok(port) => port.parse()?,
        Err(_) => DEFAULT_PORT,
    };
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    naive_relay::run(listener, async {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
    .await;
    Ok(())
}
