//! The ws-server's settings: built-in defaults, then an optional file, then
//! `DUPLEX_WS_*` environment variables, each layer overriding the last.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use protocol::Secret;
use serde::{Deserialize, Serialize};

use logging::LogFormat;

/// The prefix of every environment variable the ws-server reads, e.g.
/// `DUPLEX_WS_PORT=6000`.
pub const ENV_PREFIX: &str = "DUPLEX_WS";

/// Everything an operator can tune. See the settings table in the README.
///
/// `Debug` masks the secret and a Redis password, so that printing the
/// settings never leaks them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The address to listen on. `0.0.0.0` inside a container.
    pub bind: IpAddr,
    /// The TCP port to listen on; 0 lets the system pick one.
    pub port: u16,
    /// The address of the admin port (health, readiness, metrics, the
    /// dashboard's figures). Loopback by default: it is for the operator's
    /// tools, not for the public.
    pub admin_bind: IpAddr,
    /// The admin port; 0 lets the system pick one.
    pub admin_port: u16,
    /// The HTTP path WebSocket upgrades are accepted on; others get 404.
    pub path: String,
    /// Browser origins allowed to connect (`scheme://host[:port]`), or `*`
    /// for any. Requests without an `Origin` header (non-browser clients)
    /// are allowed: Origin checks exist to protect browsers.
    pub allowed_origins: Vec<String>,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Connections open at once from one client address (IPv6: one /64);
    /// one more gets HTTP 429. Behind a proxy every client has the proxy's
    /// address: raise this accordingly.
    pub max_connections_per_ip: usize,
    /// The largest WebSocket message accepted, in bytes. A larger one closes
    /// the connection with 1009 (message too big).
    pub max_frame_bytes: usize,
    /// Frames queued for one client before it counts as too slow and is
    /// closed with 4000 (slow consumer).
    pub outbox_capacity: usize,
    /// Bytes queued for one client before it counts as too slow (4000):
    /// a frame offered to an outbox holding this much or more closes the
    /// client. One large frame (a long history) still goes in below it.
    /// The batch being written no longer counts (`write_timeout` bounds
    /// it), so a client holds at most twice this plus two frames, plus
    /// tungstenite's 9 KiB write buffer and the kernel's socket buffers.
    pub outbox_max_bytes: usize,
    /// How long one write to a client's socket (at most tungstenite's 9 KiB
    /// write buffer) may take while frames wait; then it is closed as too
    /// slow (4000). A client reading under about 4.5 KiB/s while frames
    /// wait for it counts as stalled.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// How long a client has to send its upgrade request (the whole request
    /// head); a client still sending gets 408.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// How often the server pings each client.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// A client silent for this long (no frame, no pong) is closed with 4001.
    #[serde(with = "humantime_serde")]
    pub client_timeout: Duration,
    /// Messages kept per room, for late joiners and for recovery after a
    /// reconnect. 0 keeps none.
    pub history_size: usize,
    /// The most messages a fresh join (or one that cannot recover) is
    /// sent: the latest ones, of the `history_size` kept. Older ones reach
    /// a client that asks with `history`. A join that recovers gets every
    /// message it missed, however many. 0 sends none.
    pub join_history: usize,
    /// The secret shared with the app-server, which signs the connection
    /// tokens this server checks (at least 32 bytes). There is no default:
    /// the server refuses to start without it. `cargo xtask dev` generates
    /// one per run.
    pub secret: String,
    /// A file holding `secret` (surrounding whitespace ignored), read at
    /// start when `secret` is empty: how container secrets are passed.
    pub secret_file: Option<PathBuf>,
    /// Frames one connection may send per second, sustained (whatever they
    /// hold, refused ones too: answering them is work); each over budget
    /// gets `rate_limited`.
    pub max_frames_per_second: u32,
    /// Frames one connection may send at once, above the sustained rate. A
    /// join costs [`JOIN_COST`] of them, since it may send the room's
    /// history.
    pub frame_burst: u32,
    /// Requests refused with `rate_limited` in a row before the connection
    /// is closed with 1008 (policy violation): a client that ignores the
    /// error is abusing the server, not misjudging it.
    pub rate_limit_strikes: u32,
    /// Rooms per `rooms` page answering `list_rooms`.
    pub directory_page_size: usize,
    /// Where rooms live: `memory` (this process alone) or `redis` (any
    /// number of instances pointed at one Redis act as one server).
    pub engine: EngineKind,
    /// The Redis server of the `redis` engine.
    pub redis_url: String,
    /// Rooms one connection may be in at once; one more `join` gets
    /// `too_many_rooms`.
    pub max_rooms_per_connection: usize,
    /// Rooms this instance holds at once (with members, or idle and not yet
    /// dropped). When full, the longest-idle room is dropped early to make
    /// room; when none is idle, a new room gets `server_busy`.
    pub max_rooms: usize,
    /// A room with no members is dropped, history included, this long after
    /// its last member left or its last message was stored. A room opened
    /// again later starts a new epoch.
    #[serde(with = "humantime_serde")]
    pub room_idle_ttl: Duration,
    /// `redis` engine: how long an instance's presence entries outlive its
    /// last refresh (refreshed every third of this). The members of an
    /// instance that died without a word are gone, with `member_left`, within
    /// this plus a third.
    #[serde(with = "humantime_serde")]
    pub presence_ttl: Duration,
    /// Threads serving connections: 0 takes one per core this process may
    /// use (its CPU affinity counts), and with one core runs a
    /// current-thread runtime, as 1 always does (measurably cheaper on one
    /// core than a multi-thread runtime with one worker).
    pub worker_threads: usize,
    /// How log lines look: `text`, or `json` (one object per line).
    pub log_format: LogFormat,
}

/// Which engine holds the rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// In this process's memory: nothing to install; one instance.
    #[default]
    Memory,
    /// In Redis: several instances act as one.
    Redis,
}

/// The shortest `presence_ttl`: refreshes every third of it must not crowd
/// Redis, and a round trip must fit well inside it.
const MIN_PRESENCE_TTL: Duration = Duration::from_millis(300);

/// The most worker threads accepted: far past any core count, and short of
/// what makes the runtime fail to start.
const MAX_WORKER_THREADS: usize = 1024;

/// What stands for a secret in printed settings.
const MASK: &str = "***";

/// `url` with the password of its user info (`scheme://user:PASSWORD@host`)
/// replaced by [`MASK`].
fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:{MASK}@{host}"),
        None => format!("{scheme}://{MASK}@{host}"),
    }
}

/// Whether `origin` is `*` or an origin as browsers send it in `Origin`
/// (`http(s)://host[:port]`, the default port left out, an international
/// name in its ASCII form); if not, why.
fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let Ok(url) = url::Url::parse(origin) else {
        return Err("is not an origin".to_owned());
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err("needs an http:// or https:// scheme".to_owned());
    }
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err("has more than scheme, host and port".to_owned());
    }
    let sent = url.origin().ascii_serialization();
    if sent != origin.trim_end_matches('/').to_ascii_lowercase() {
        return Err(format!("is not written as browsers send it: {sent:?}"));
    }
    Ok(())
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Settings {}", self.masked())
    }
}

/// What a `join` or a `history` request costs from a connection's frame
/// budget: each may send many messages back (a join up to `join_history`,
/// or everything missed up to `history_size`; a history request up to
/// 100), so it weighs more than a post.
pub const JOIN_COST: u32 = 4;

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 5000,
            admin_bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            admin_port: 5003,
            path: "/ws".to_owned(),
            allowed_origins: vec![
                "http://localhost:5001".to_owned(),
                "http://127.0.0.1:5001".to_owned(),
            ],
            max_connections: 10_000,
            max_connections_per_ip: 128,
            max_frame_bytes: 64 * 1024,
            outbox_capacity: 4096,
            outbox_max_bytes: 256 * 1024,
            write_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(25),
            client_timeout: Duration::from_secs(60),
            history_size: 100,
            join_history: 50,
            secret: String::new(),
            secret_file: None,
            max_frames_per_second: 10,
            frame_burst: 20,
            rate_limit_strikes: 10,
            directory_page_size: 100,
            engine: EngineKind::Memory,
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            max_rooms_per_connection: 32,
            max_rooms: 10_000,
            room_idle_ttl: Duration::from_secs(300),
            presence_ttl: Duration::from_secs(15),
            worker_threads: 0,
            log_format: LogFormat::Text,
        }
    }
}

impl Settings {
    /// Loads the settings: defaults, then `file` if given, then the
    /// environment.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, or a value has the wrong type.
    pub fn load(file: Option<&Path>) -> Result<Self, config::ConfigError> {
        Self::load_from(file, config::Environment::with_prefix(ENV_PREFIX))
    }

    /// [`Settings::load`] with the environment source given, so tests can
    /// supply variables without touching the process environment.
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn load_from(
        file: Option<&Path>,
        env: config::Environment,
    ) -> Result<Self, config::ConfigError> {
        let mut settings: Self = Self::sources(file, env)?.try_deserialize()?;
        settings.read_secret_file()?;
        settings.validate()?;
        Ok(settings)
    }

    /// The log format the settings ask for (see [`logging::format_in`]).
    #[must_use]
    pub fn log_format(file: Option<&Path>) -> LogFormat {
        logging::format_in(Self::sources(
            file,
            config::Environment::with_prefix(ENV_PREFIX),
        ))
    }

    /// Defaults, then `file`, then `env`.
    fn sources(
        file: Option<&Path>,
        env: config::Environment,
    ) -> Result<config::Config, config::ConfigError> {
        let mut builder =
            config::Config::builder().add_source(config::Config::try_from(&Self::default())?);
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        builder
            .add_source(
                env.prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("allowed_origins"),
            )
            .build()
    }

    /// Fills `secret` from `secret_file` when only the file is given.
    fn read_secret_file(&mut self) -> Result<(), config::ConfigError> {
        if let (true, Some(file)) = (self.secret.trim().is_empty(), &self.secret_file) {
            self.secret = std::fs::read_to_string(file)
                .map_err(|e| {
                    config::ConfigError::Message(format!(
                        "secret_file {}: cannot read it: {e}",
                        file.display()
                    ))
                })?
                .trim()
                .to_owned();
        }
        Ok(())
    }

    /// The settings as JSON with the secret and a Redis password masked:
    /// what may be printed or logged.
    #[must_use]
    pub fn masked(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(fields) = value.as_object_mut() {
            if !self.secret.is_empty() {
                fields.insert("secret".to_owned(), MASK.into());
            }
            fields.insert("redis_url".to_owned(), self.redis_url_for_log().into());
        }
        value
    }

    /// `redis_url` with its password, if any, masked: for log lines.
    #[must_use]
    pub fn redis_url_for_log(&self) -> String {
        mask_password(&self.redis_url)
    }

    /// The token secret.
    ///
    /// # Errors
    /// When it is missing or too short, with the fix in the message.
    pub fn token_secret(&self) -> Result<Secret, config::ConfigError> {
        Secret::new(&self.secret).map_err(|e| {
            config::ConfigError::Message(format!(
                "secret: {e}; set DUPLEX_WS_SECRET (or DUPLEX_WS_SECRET_FILE) to the \
                 app-server's secret; `cargo run -p app-server -- gen-secret` makes one"
            ))
        })
    }

    /// Refuses values that would break every connection (a zero-sized
    /// outbox, a zero heartbeat) with a message naming the setting.
    fn validate(&self) -> Result<(), config::ConfigError> {
        let invalid = |what: &str| Err(config::ConfigError::Message(what.to_owned()));
        self.token_secret()?;
        if !self.path.starts_with('/') {
            return invalid("path must start with '/'");
        }
        for origin in self.allowed_origins.iter().map(|o| o.trim()) {
            if let Err(why) = check_origin(origin) {
                return invalid(&format!(
                    "allowed_origins: {origin:?} {why}; write each origin as browsers send it, \
                     scheme://host[:port] (e.g. http://localhost:5001), or * for any"
                ));
            }
        }
        if self.admin_port == self.port && self.port != 0 && self.admin_bind == self.bind {
            return invalid(&format!(
                "admin_port must differ from port (both are {}); the admin port serves plain HTTP",
                self.port
            ));
        }
        let positive = [
            ("max_connections", self.max_connections),
            ("max_connections_per_ip", self.max_connections_per_ip),
            ("max_frame_bytes", self.max_frame_bytes),
            ("outbox_capacity", self.outbox_capacity),
            ("outbox_max_bytes", self.outbox_max_bytes),
            ("max_rooms_per_connection", self.max_rooms_per_connection),
            ("max_rooms", self.max_rooms),
            ("directory_page_size", self.directory_page_size),
            (
                "max_frames_per_second",
                usize::try_from(self.max_frames_per_second).unwrap_or(1),
            ),
            (
                "rate_limit_strikes",
                usize::try_from(self.rate_limit_strikes).unwrap_or(1),
            ),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return invalid(&format!("{name} must be at least 1"));
        }
        let durations = [
            ("handshake_timeout", self.handshake_timeout),
            ("write_timeout", self.write_timeout),
            ("heartbeat_interval", self.heartbeat_interval),
            ("client_timeout", self.client_timeout),
            ("room_idle_ttl", self.room_idle_ttl),
        ];
        if let Some((name, _)) = durations.iter().find(|(_, d)| d.is_zero()) {
            return invalid(&format!("{name} must be longer than zero"));
        }
        if self.worker_threads > MAX_WORKER_THREADS {
            return invalid(&format!(
                "worker_threads must be at most {MAX_WORKER_THREADS} (0 takes one per core)"
            ));
        }
        if self.frame_burst < JOIN_COST {
            return invalid(&format!(
                "frame_burst must be at least {JOIN_COST}, what one join costs"
            ));
        }
        if self.presence_ttl < MIN_PRESENCE_TTL {
            return invalid(&format!(
                "presence_ttl must be at least {MIN_PRESENCE_TTL:?}: instances refresh it every third"
            ));
        }
        if self.engine == EngineKind::Redis
            && let Err(e) = redis::Client::open(self.redis_url.as_str())
        {
            return invalid(&format!(
                "redis_url {:?} is not a Redis URL (redis://host:port): {e}",
                self.redis_url_for_log()
            ));
        }
        Ok(())
    }

    /// The socket address to bind.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// The admin port's socket address.
    #[must_use]
    pub fn admin_addr(&self) -> SocketAddr {
        SocketAddr::new(self.admin_bind, self.admin_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    /// `vars` plus a valid secret unless they set one.
    fn env(vars: &[(&str, &str)]) -> config::Environment {
        let has_secret = vars.iter().any(|(k, _)| k.starts_with("DUPLEX_WS_SECRET"));
        let secret = [("DUPLEX_WS_SECRET", SECRET)];
        let map: HashMap<String, String> = vars
            .iter()
            .chain(secret.iter().filter(|_| !has_secret))
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        config::Environment::with_prefix(ENV_PREFIX).source(Some(map))
    }

    #[test]
    fn defaults_apply_without_file_or_environment() -> Result<(), config::ConfigError> {
        let expected = Settings {
            secret: SECRET.to_owned(),
            ..Settings::default()
        };
        assert_eq!(Settings::load_from(None, env(&[]))?, expected);
        Ok(())
    }

    #[test]
    fn printing_the_settings_masks_the_secret_and_a_redis_password() {
        let settings = Settings {
            secret: SECRET.to_owned(),
            redis_url: "redis://app:hunter2@cache:6379/0".to_owned(),
            ..Settings::default()
        };
        let printed = format!("{settings:?}");
        assert!(!printed.contains(SECRET), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("redis://app:***@cache:6379/0"),
            "{printed}"
        );
        assert_eq!(mask_password("redis://:pw@h:1"), "redis://:***@h:1");
        assert_eq!(mask_password("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn no_secret_no_start() {
        for secret in ["", "too-short"] {
            let result = Settings::load_from(None, env(&[("DUPLEX_WS_SECRET", secret)]));
            let message = result.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains("DUPLEX_WS_SECRET"), "{message}");
        }
    }

    #[test]
    fn the_secret_may_come_from_a_file() -> Result<(), Box<dyn std::error::Error>> {
        let file = std::env::temp_dir().join(format!("duplex-ws-secret-{}", std::process::id()));
        std::fs::write(&file, format!("{SECRET}\n"))?;
        let path = file.to_string_lossy().into_owned();
        let settings = Settings::load_from(None, env(&[("DUPLEX_WS_SECRET_FILE", &path)]));
        std::fs::remove_file(&file)?;
        assert_eq!(settings?.secret, SECRET);
        let missing = Settings::load_from(
            None,
            env(&[("DUPLEX_WS_SECRET_FILE", "/nonexistent/secret")]),
        );
        let message = missing.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("secret_file"), "{message}");
        Ok(())
    }

    #[test]
    fn environment_overrides_scalars_lists_and_durations() -> Result<(), config::ConfigError> {
        let settings = Settings::load_from(
            None,
            env(&[
                ("DUPLEX_WS_PORT", "6000"),
                ("DUPLEX_WS_BIND", "0.0.0.0"),
                (
                    "DUPLEX_WS_ALLOWED_ORIGINS",
                    "https://a.example,https://b.example",
                ),
                ("DUPLEX_WS_HEARTBEAT_INTERVAL", "5s"),
                ("DUPLEX_WS_MAX_FRAME_BYTES", "1024"),
                ("DUPLEX_WS_JOIN_HISTORY", "20"),
            ]),
        )?;
        assert_eq!(settings.join_history, 20);
        assert_eq!(settings.port, 6000);
        assert_eq!(settings.bind, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(
            settings.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(settings.heartbeat_interval, Duration::from_secs(5));
        assert_eq!(settings.max_frame_bytes, 1024);
        Ok(())
    }

    #[test]
    fn file_overrides_defaults_and_environment_overrides_file()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("duplex-ws-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("ws.toml");
        std::fs::write(
            &file,
            "port = 7000\npath = \"/socket\"\nclient_timeout = \"2m\"\n",
        )?;
        let settings = Settings::load_from(Some(&file), env(&[("DUPLEX_WS_PORT", "7001")]))?;
        std::fs::remove_dir_all(&dir)?;
        assert_eq!(settings.port, 7001);
        assert_eq!(settings.path, "/socket");
        assert_eq!(settings.client_timeout, Duration::from_secs(120));
        Ok(())
    }

    #[test]
    fn a_missing_explicit_file_is_an_error() {
        let missing = Path::new("/nonexistent/duplex-ws.toml");
        assert!(Settings::load_from(Some(missing), env(&[])).is_err());
    }

    #[test]
    fn values_that_would_break_every_connection_are_refused() {
        for (var, value) in [
            ("DUPLEX_WS_OUTBOX_CAPACITY", "0"),
            ("DUPLEX_WS_OUTBOX_MAX_BYTES", "0"),
            ("DUPLEX_WS_MAX_FRAME_BYTES", "0"),
            ("DUPLEX_WS_HEARTBEAT_INTERVAL", "0s"),
            ("DUPLEX_WS_CLIENT_TIMEOUT", "0s"),
            ("DUPLEX_WS_PATH", "ws"),
            ("DUPLEX_WS_MAX_ROOMS", "0"),
            ("DUPLEX_WS_MAX_CONNECTIONS_PER_IP", "0"),
            ("DUPLEX_WS_MAX_ROOMS_PER_CONNECTION", "0"),
            ("DUPLEX_WS_ROOM_IDLE_TTL", "0s"),
            ("DUPLEX_WS_PRESENCE_TTL", "10ms"),
            ("DUPLEX_WS_MAX_FRAMES_PER_SECOND", "0"),
            ("DUPLEX_WS_FRAME_BURST", "1"),
            ("DUPLEX_WS_RATE_LIMIT_STRIKES", "0"),
            ("DUPLEX_WS_DIRECTORY_PAGE_SIZE", "0"),
        ] {
            let result = Settings::load_from(None, env(&[(var, value)]));
            let message = result.err().map(|e| e.to_string()).unwrap_or_default();
            let setting = var.trim_start_matches("DUPLEX_WS_").to_ascii_lowercase();
            assert!(message.contains(&setting), "{var}={value}: {message:?}");
        }
    }

    #[test]
    fn the_engine_and_its_redis_url_are_settings() -> Result<(), config::ConfigError> {
        let settings = Settings::load_from(
            None,
            env(&[
                ("DUPLEX_WS_ENGINE", "redis"),
                ("DUPLEX_WS_REDIS_URL", "redis://cache:6380"),
            ]),
        )?;
        assert_eq!(settings.engine, EngineKind::Redis);
        assert_eq!(settings.redis_url, "redis://cache:6380");
        let bad = Settings::load_from(
            None,
            env(&[
                ("DUPLEX_WS_ENGINE", "redis"),
                ("DUPLEX_WS_REDIS_URL", "http://nope"),
            ]),
        );
        let message = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("redis_url"), "{message}");
        assert!(Settings::load_from(None, env(&[("DUPLEX_WS_ENGINE", "etcd")])).is_err());
        Ok(())
    }

    #[test]
    fn a_malformed_value_is_an_error() {
        assert!(Settings::load_from(None, env(&[("DUPLEX_WS_PORT", "lots")])).is_err());
    }
}
