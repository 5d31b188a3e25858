//! `cargo xtask dev [--scale N]`: the servers in one terminal, their output
//! prefixed, all stopped together. With `--scale N`, a Redis and N
//! ws-server instances sharing it, so that two browser tabs can chat through
//! different instances.
//!
//! Neither server has a default secret: each run generates a fresh token
//! secret and API key, hands them to every server through the environment
//! (`DUPLEX_WS_SECRET`, `DUPLEX_APP_SECRET`, `DUPLEX_APP_API_KEY`), and
//! prints how to sign in as the operator and call the API.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::future::{join_all, select_all};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::system;

/// The credentials of one dev run: generated at start, gone at its end.
#[derive(Debug, Clone)]
struct Credentials {
    /// The token secret both servers share.
    secret: String,
    /// The operator's API key.
    api_key: String,
}

impl Credentials {
    fn generate() -> Self {
        Self {
            secret: protocol::Secret::generate(),
            api_key: protocol::Secret::generate(),
        }
    }
}

/// The most ws-server instances `--scale` starts: enough to see messages
/// cross instances, few enough for a laptop.
pub const MAX_SCALE: u8 = 8;

/// The first ws-server's port; further instances take the ports after the
/// app-server's.
const WS_FIRST_PORT: u16 = 5000;
/// The app-server's port, which no ws-server instance may take.
const APP_PORT: u16 = 5001;
/// The first ws-server's admin port (its default), which no other
/// instance's WebSocket port may take; further instances' admin ports are
/// their WebSocket port plus [`ADMIN_OFFSET`].
const FIRST_ADMIN_PORT: u16 = 5003;
const ADMIN_OFFSET: u16 = 100;
/// Where `--scale` runs Redis: its usual port, loopback only.
const REDIS_PORT: u16 = 6379;
/// How long a process with a `ready_port` may take to accept connections
/// before the next ones, which connect to it at start, are started anyway.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the servers and runs `scale` ws-server instances (one: the plain
/// memory engine; more: a Redis they share) and the app-server, until Ctrl-C
/// or until one of them exits.
pub fn run(scale: u8) -> Result<(), String> {
    if scale > 1 {
        system::ensure_redis()?;
    }
    system::cargo(&["build", "-p", "ws-server", "-p", "app-server"])?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| system::root().join("target"), Into::into)
        .join("debug");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?
        .block_on(supervise(&target, scale, &Credentials::generate()))
}

/// One process `dev` runs.
#[derive(Debug)]
struct Spec {
    /// Names it in messages and prefixes its output lines (`[ws1] ...`).
    prefix: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// A loopback port it accepts connections on once ready: it must be
    /// free beforehand, and later processes start only once it accepts.
    ready_port: Option<u16>,
}

impl Spec {
    fn new(prefix: &str, program: PathBuf) -> Self {
        Self {
            prefix: prefix.to_owned(),
            program,
            args: Vec::new(),
            env: Vec::new(),
            ready_port: None,
        }
    }

    fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_owned(), value.into()));
        self
    }
}

/// The ports of `scale` ws-server instances: 5000, then 5002, 5004, 5005,
/// ... (5001 is the app-server's, 5003 the first instance's admin port).
fn ws_ports(scale: u8) -> Vec<u16> {
    std::iter::once(WS_FIRST_PORT)
        .chain((WS_FIRST_PORT..).filter(|port| *port > APP_PORT && *port != FIRST_ADMIN_PORT))
        .take(usize::from(scale))
        .collect()
}

/// The admin ports of the instances on `ws_ports`: 5003 for the first (its
/// default), the WebSocket port plus 100 for the others.
fn admin_ports(ws_ports: &[u16]) -> Vec<u16> {
    ws_ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            if i == 0 {
                FIRST_ADMIN_PORT
            } else {
                port + ADMIN_OFFSET
            }
        })
        .collect()
}

/// The URL a browser uses to reach the ws-server on `port`.
fn ws_url(port: u16) -> String {
    format!("ws://localhost:{port}/ws")
}

/// What to run, in start order. One instance: the ws-server and the
/// app-server on their defaults, as without `--scale`. More: Redis first,
/// then each ws-server on the Redis engine, then the app-server handing
/// pages their URLs in turn.
fn plan(target: &Path, scale: u8, credentials: &Credentials) -> Vec<Spec> {
    let ws = |prefix: &str| {
        Spec::new(prefix, target.join("ws-server"))
            .env("DUPLEX_WS_SECRET", credentials.secret.clone())
    };
    let app_server = Spec::new("app", target.join("app-server"))
        .env("DUPLEX_APP_SECRET", credentials.secret.clone())
        .env("DUPLEX_APP_API_KEY", credentials.api_key.clone());
    if scale <= 1 {
        return vec![ws("ws "), app_server];
    }
    let mut redis = Spec::new("redis", PathBuf::from("redis-server"));
    // No persistence: a dev run's history should not outlive it.
    redis.args = [
        "--save",
        "",
        "--appendonly",
        "no",
        "--port",
        &REDIS_PORT.to_string(),
        "--bind",
        "127.0.0.1",
    ]
    .map(str::to_owned)
    .into();
    redis.ready_port = Some(REDIS_PORT);
    let redis_url = format!("redis://127.0.0.1:{REDIS_PORT}");
    let ports = ws_ports(scale);
    let admin = admin_ports(&ports);
    let mut specs = vec![redis];
    for (n, (port, admin)) in (1..).zip(ports.iter().zip(&admin)) {
        specs.push(
            ws(&format!("ws{n}"))
                .env("DUPLEX_WS_ENGINE", "redis")
                .env("DUPLEX_WS_REDIS_URL", redis_url.clone())
                .env("DUPLEX_WS_PORT", port.to_string())
                .env("DUPLEX_WS_ADMIN_PORT", admin.to_string()),
        );
    }
    let urls: Vec<String> = ports.iter().map(|port| ws_url(*port)).collect();
    let admin_urls: Vec<String> = admin
        .iter()
        .map(|port| format!("http://127.0.0.1:{port}"))
        .collect();
    specs.push(
        app_server
            .env("DUPLEX_APP_WS_URLS", urls.join(","))
            .env("DUPLEX_APP_WS_ADMIN_URLS", admin_urls.join(",")),
    );
    specs
}

async fn supervise(target: &Path, scale: u8, credentials: &Credentials) -> Result<(), String> {
    // Names and children apart, so that the wait below borrows only the
    // children and a name can still be looked up while it runs.
    let mut names = Vec::new();
    let mut children = Vec::new();
    if let Err(e) = start_all(plan(target, scale, credentials), &mut names, &mut children).await {
        stop_all(&mut children).await;
        return Err(e);
    }
    banner(scale, credentials);

    let exits = children.iter_mut().map(|child| Box::pin(child.wait()));
    let outcome = tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(()),
        // Never empty: `plan` returns at least two processes.
        (status, index, _) = select_all(exits) => Err(format!(
            "{} exited ({})",
            names.get(index).map_or("a server", String::as_str),
            describe(status)
        )),
    };
    // Ctrl-C in a terminal reaches the children too; stop them in any case
    // and wait, so that none outlives this command.
    stop_all(&mut children).await;
    outcome
}

/// Starts `specs` in order, each once the one before is ready, pushing
/// each one's name and child; on an error the caller stops those started.
async fn start_all(
    specs: Vec<Spec>,
    names: &mut Vec<String>,
    children: &mut Vec<Child>,
) -> Result<(), String> {
    for spec in specs {
        if let Some(port) = spec.ready_port
            && accepts(port).await
        {
            return Err(format!(
                "something already listens on 127.0.0.1:{port}, where {} should run \
                 (Debian's redis-server service? `sudo service redis-server stop`)",
                spec.prefix
            ));
        }
        let mut child = start(&spec)?;
        let ready = match spec.ready_port {
            Some(port) => wait_until_ready(&mut child, port).await,
            None => Ok(()),
        };
        children.push(child);
        names.push(spec.prefix.clone());
        ready.map_err(|e| format!("{} {e}", spec.prefix))?;
    }
    Ok(())
}

/// Starts `spec` with its output forwarded behind its prefix.
fn start(spec: &Spec) -> Result<Child, String> {
    let mut child = Command::new(&spec.program)
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(system::root())
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", spec.program.display()))?;
    forward(child.stdout.take(), &spec.prefix);
    forward(child.stderr.take(), &spec.prefix);
    Ok(child)
}

/// Whether something accepts connections on loopback `port`.
async fn accepts(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

/// Waits until `child` accepts connections on `port`. Fails when it exits
/// first; after [`READY_TIMEOUT`] the next processes are started anyway and
/// report for themselves.
async fn wait_until_ready(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited ({status})"));
        }
        if accepts(port).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn banner(scale: u8, credentials: &Credentials) {
    println!();
    if scale <= 1 {
        println!("  Duplex is starting. Open http://localhost:{APP_PORT} in a browser,");
        println!("  and http://127.0.0.1:{APP_PORT} in another window: a second origin.");
        println!("  Press Ctrl-C to stop both servers.");
    } else {
        let urls: Vec<String> = ws_ports(scale).into_iter().map(ws_url).collect();
        println!(
            "  Duplex is starting: {scale} ws-servers sharing Redis on 127.0.0.1:{REDIS_PORT},"
        );
        println!("  at {}.", urls.join(", "));
        println!("  Open http://localhost:{APP_PORT}/rooms/lobby?name=Ada in one tab and");
        println!("  http://localhost:{APP_PORT}/rooms/lobby?name=Grace in another: the app-server");
        println!("  hands each page the next ws-server in turn, so the two tabs land on");
        println!("  different instances and chat through Redis.");
        println!("  Press Ctrl-C to stop everything.");
    }
    println!();
    for line in operator_lines(&credentials.api_key, &credentials.secret) {
        println!("  {line}");
    }
    println!();
}

/// How to act as the operator in this run: the sign-in page and the key,
/// and a call of the publishing API.
fn operator_lines(api_key: &str, secret: &str) -> Vec<String> {
    vec![
        "Secret and API key are new for this run (nothing is stored).".to_owned(),
        format!("Operator sign-in: http://localhost:{APP_PORT}/operator with the API key"),
        format!("  {api_key}"),
        format!("then the live dashboard: http://localhost:{APP_PORT}/dashboard"),
        "Publish through the API:".to_owned(),
        format!(
            "  curl -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' \\"
        ),
        format!(
            "    -d '{{\"text\": \"hello from curl\"}}' http://localhost:{APP_PORT}/api/rooms/lobby/messages"
        ),
        "A token for another client (Authorization: Bearer TOKEN):".to_owned(),
        format!(
            "  DUPLEX_APP_SECRET={secret} cargo run -q -p app-server -- token --user u1 --name Ada --ttl 1h"
        ),
    ]
}

fn describe(status: std::io::Result<std::process::ExitStatus>) -> String {
    status.map_or_else(|e| e.to_string(), |s| s.to_string())
}

/// Stops every child at once and waits for all.
async fn stop_all(children: &mut [Child]) {
    join_all(children.iter_mut().map(stop)).await;
}

/// Asks a child to stop (SIGTERM on Unix, like `docker stop`) and waits.
async fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(STOP_TIMEOUT, child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}

/// Copies each line of `stream` to our stdout behind `[prefix]`.
fn forward(stream: Option<impl AsyncRead + Unpin + Send + 'static>, prefix: &str) {
    let Some(stream) = stream else { return };
    let prefix = prefix.to_owned();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            println!("[{prefix}] {line}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_ports_skip_the_app_servers_port() {
        assert_eq!(ws_ports(1), [5000]);
        assert_eq!(ws_ports(4), [5000, 5002, 5004, 5005]);
    }

    #[test]
    fn no_admin_port_is_another_instances_websocket_port() {
        let ports = ws_ports(MAX_SCALE);
        let admin = admin_ports(&ports);
        assert_eq!(admin[..2], [5003, 5102]);
        for port in &admin {
            assert!(!ports.contains(port) && *port != APP_PORT, "{port}");
        }
    }

    #[test]
    fn one_instance_is_the_plain_pair() {
        let prefixes: Vec<String> = plan(Path::new("t"), 1, &Credentials::generate())
            .into_iter()
            .map(|spec| spec.prefix)
            .collect();
        assert_eq!(prefixes, ["ws ", "app"]);
    }

    #[test]
    fn scaling_starts_redis_then_instances_then_the_app_server() {
        let specs = plan(Path::new("t"), 2, &Credentials::generate());
        let prefixes: Vec<&str> = specs.iter().map(|spec| spec.prefix.as_str()).collect();
        assert_eq!(prefixes, ["redis", "ws1", "ws2", "app"]);
        let env = |spec: &Spec, key: &str| {
            spec.env
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let ws2 = &specs[2];
        assert_eq!(env(ws2, "DUPLEX_WS_ENGINE").as_deref(), Some("redis"));
        assert_eq!(env(ws2, "DUPLEX_WS_PORT").as_deref(), Some("5002"));
        assert_eq!(env(ws2, "DUPLEX_WS_ADMIN_PORT").as_deref(), Some("5102"));
        assert_eq!(
            env(&specs[3], "DUPLEX_APP_WS_ADMIN_URLS").as_deref(),
            Some("http://127.0.0.1:5003,http://127.0.0.1:5102")
        );
        assert_eq!(
            env(ws2, "DUPLEX_WS_REDIS_URL").as_deref(),
            Some("redis://127.0.0.1:6379")
        );
        assert_eq!(
            env(&specs[3], "DUPLEX_APP_WS_URLS").as_deref(),
            Some("ws://localhost:5000/ws,ws://localhost:5002/ws")
        );
        assert!(specs[0].args.windows(2).any(|w| w == ["--save", ""]));
    }

    fn env_of(spec: &Spec, key: &str) -> Option<String> {
        spec.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    #[test]
    fn every_server_gets_the_runs_secret_and_the_app_server_its_api_key() {
        let credentials = Credentials::generate();
        for scale in [1, 3] {
            let specs = plan(Path::new("t"), scale, &credentials);
            for spec in specs.iter().filter(|s| s.prefix.starts_with("ws")) {
                assert_eq!(
                    env_of(spec, "DUPLEX_WS_SECRET").as_deref(),
                    Some(credentials.secret.as_str())
                );
            }
            let app = specs
                .iter()
                .find(|s| s.prefix == "app")
                .unwrap_or_else(|| panic!("app"));
            assert_eq!(
                env_of(app, "DUPLEX_APP_SECRET").as_deref(),
                Some(credentials.secret.as_str())
            );
            assert_eq!(
                env_of(app, "DUPLEX_APP_API_KEY").as_deref(),
                Some(credentials.api_key.as_str())
            );
        }
        let again = Credentials::generate();
        assert_ne!(again.secret, credentials.secret);
        assert_ne!(again.api_key, credentials.api_key);
    }

    #[test]
    fn the_banner_says_how_to_sign_in_and_call_the_api() {
        let lines = operator_lines("KEY", "SECRET").join("\n");
        assert!(lines.contains("http://localhost:5001/operator"), "{lines}");
        assert!(lines.contains("http://localhost:5001/dashboard"), "{lines}");
        assert!(lines.contains("Authorization: Bearer KEY"), "{lines}");
        assert!(lines.contains("/api/rooms/lobby/messages"), "{lines}");
        assert!(
            lines.contains("DUPLEX_APP_SECRET=SECRET cargo run -q -p app-server -- token"),
            "{lines}"
        );
    }
}
