//! Measures what one idle connection costs the ws-server in resident memory
//! (Linux only: it reads `VmRSS` from `/proc/self/status`).
//!
//! The chat server runs in this process (memory engine, otherwise default
//! settings, heartbeats pushed out of the way so that no client is closed
//! while it is measured). A second process, this same binary with
//! `--clients`, opens N connections with a hand-written upgrade request,
//! reads each one's `101` and `welcome` frame, and then holds them, idle.
//! The server process reads its own `VmRSS` before and after and prints
//! the difference per connection. Kernel socket buffers are not part of a
//! process's RSS, so the figure is what the server's heap and stacks hold.
//!
//! `cargo run --release -p ws-server --example conn_memory -- [N]` (default
//! 5000). Both processes need N file descriptors (`ulimit -n`).

use std::error::Error;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use ws_server::Settings;

/// How long the server is left alone before each reading, so that tasks
/// settle and freed memory is reused rather than counted.
const SETTLE: Duration = Duration::from_secs(2);

/// The connections opened when no N is given.
const DEFAULT_CONNECTIONS: usize = 5000;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, addr, n, secret] if flag == "--clients" => clients(addr, n.parse()?, secret),
        [n] => server(n.parse()?),
        [] => server(DEFAULT_CONNECTIONS),
        _ => Err("usage: conn_memory [N]".into()),
    }
}

/// Runs the server, starts the client process, and reports.
fn server(n: usize) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let secret = protocol::Secret::generate();
        let settings = Settings {
            secret: secret.clone(),
            max_connections: n + 100,
            // Every client comes from 127.0.0.1 here.
            max_connections_per_ip: n + 100,
            heartbeat_interval: Duration::from_secs(3600),
            client_timeout: Duration::from_secs(7200),
            port: 0,
            ..Settings::default()
        };
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(ws_server::serve_chat(listener, settings, shutdown.clone()));

        tokio::time::sleep(SETTLE).await;
        let before = vm_rss_kib()?;
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["--clients", &addr.to_string(), &n.to_string(), &secret])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        match lines.next_line().await? {
            Some(line) if line == "ready" => {}
            other => return Err(format!("the clients failed: {other:?}").into()),
        }
        tokio::time::sleep(SETTLE).await;
        let after = vm_rss_kib()?;

        // Closing the clients' stdin tells them to exit.
        drop(child.stdin.take());
        child.wait().await?;
        shutdown.cancel();
        server.await?;

        let per_connection = (after.saturating_sub(before)) as f64 / n as f64;
        println!("connections: {n}");
        println!("VmRSS before: {before} KiB, after: {after} KiB");
        println!("per idle connection: {per_connection:.1} KiB");
        Ok(())
    })
}

/// Opens `n` connections to `addr`, each with a member token signed with
/// `secret`, says `ready`, and holds them until stdin closes.
fn clients(addr: &str, n: usize, secret: &str) -> Result<()> {
    let secret = protocol::Secret::new(secret)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut held = Vec::with_capacity(n);
        for i in 0..n {
            let claims = protocol::Claims::new(
                protocol::UserId::new(format!("u{i}"))?,
                protocol::DisplayName::new(format!("User {i}"))?,
                protocol::Role::Member,
                3600,
            );
            let token = protocol::token::sign(&claims, &secret);
            held.push(open(addr, i, &token).await?);
        }
        let mut stdout = std::io::stdout();
        writeln!(stdout, "ready")?;
        stdout.flush()?;
        // Blocks this thread, and so the client runtime: nothing more is
        // read or written on the held connections.
        let mut rest = Vec::new();
        std::io::stdin().read_to_end(&mut rest)?;
        drop(held);
        Ok(())
    })
}

/// Completes one upgrade and reads up to the end of the `welcome` frame.
async fn open(addr: &str, i: usize, token: &str) -> Result<TcpStream> {
    let mut tcp = TcpStream::connect(addr).await?;
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut seen = Vec::new();
    let mut buf = [0_u8; 1024];
    loop {
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Err(format!("connection {i} closed during the handshake: {seen:?}").into());
        }
        seen.extend_from_slice(&buf[..n]);
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            if !seen.starts_with(b"HTTP/1.1 101") {
                return Err(
                    format!("connection {i} refused: {}", String::from_utf8_lossy(&seen)).into(),
                );
            }
            // The welcome is one short unmasked text frame: two header
            // bytes and a payload under 126 bytes.
            let frame = &seen[end + 4..];
            if frame.len() >= 2 && frame.len() >= 2 + usize::from(frame[1] & 0x7f) {
                return Ok(tcp);
            }
        }
    }
}

/// This process's resident set size, in KiB.
fn vm_rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS in /proc/self/status")?;
    let kib = line
        .split_whitespace()
        .nth(1)
        .ok_or("malformed VmRSS line")?;
    Ok(kib.parse()?)
}
