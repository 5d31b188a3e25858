//! What Duplex's tests and examples share: a `redis-server` of their own,
//! a bare HTTP GET ([`http::get`]), and the check of a binary's start-up
//! refusals ([`settings::assert_each_refused`]).
//!
//! Tests talk only to loopback and never depend on a Redis that happens to
//! be running: each starts its own on a free port, with no persistence, so
//! a kill loses its data exactly as a restarted empty Redis would. Failing
//! to start one panics with the line that installs it, as a test should.

pub mod http;
pub mod settings;

use std::process::Stdio;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long `redis-server` may take to say it is ready; it takes
/// milliseconds, this only turns a hang into a readable failure.
const READY_DEADLINE: Duration = Duration::from_secs(10);

/// Tries before giving up on finding a free port: one can be taken between
/// finding it free and Redis binding it.
const PORT_TRIES: usize = 5;

/// A `redis-server` on `127.0.0.1:port`; killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    /// The port it listens on.
    pub port: u16,
    /// `None` once killed.
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// Starts one on a free port and waits until it accepts connections.
    ///
    /// # Panics
    /// When `redis-server` cannot be run (the message says how to install
    /// it) or never gets ready.
    pub async fn start() -> Self {
        for _ in 0..PORT_TRIES {
            if let Some(server) = Self::start_on(free_port()).await {
                return server;
            }
        }
        panic!("could not start redis-server on a free port");
    }

    /// Starts one on `port` (say, again on the port of one that was
    /// killed); `None` if it exits before it is ready (the port was taken).
    ///
    /// # Panics
    /// When `redis-server` cannot be run.
    pub async fn start_on(port: u16) -> Option<Self> {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); install it: apt-get install -y redis-server")
            });
        let mut lines = BufReader::new(child.stdout.take()?).lines();
        let ready = tokio::time::timeout(READY_DEADLINE, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("Ready to accept connections") {
                    return true;
                }
            }
            false // it exited
        })
        .await
        .unwrap_or(false);
        if !ready {
            let _ = child.kill().await;
            return None;
        }
        // Keep draining its output, so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Self {
            port,
            child: Mutex::new(Some(child)),
        })
    }

    /// Its port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL, for `redis_url` settings and clients.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends `signal` (`STOP` freezes it: connections are accepted and
    /// nothing is answered; `CONT` thaws it).
    ///
    /// # Panics
    /// When it was killed, or `kill` fails.
    pub fn signal(&self, signal: &str) {
        let pid = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(Child::id)
            .unwrap_or_else(|| panic!("redis-server on {} is not running", self.port));
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "kill -{signal} {pid} failed"
        );
    }

    /// Kills it with SIGKILL and waits until it is gone: its data is lost.
    pub async fn kill(&self) {
        let child = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut child) = child {
            let _ = child.kill().await;
        }
    }

    /// A plain connection, for tests that look at or change what is stored.
    ///
    /// # Panics
    /// When it cannot be reached.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url())
            .unwrap_or_else(|e| panic!("bad Redis URL {}: {e}", self.url()));
        client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("cannot reach {}: {e}", self.url()))
    }
}

/// A loopback port nothing listens on right now.
///
/// # Panics
/// When no port can be bound at all.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"))
}
