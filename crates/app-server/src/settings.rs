//! The app-server's settings: built-in defaults, then an optional file, then
//! `DUPLEX_APP_*` environment variables.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use logging::LogFormat;
use protocol::{Secret, token::SecretError};
use serde::{Deserialize, Serialize};

use crate::api_key::ApiKey;
use crate::public_origin::PublicOrigin;

/// The prefix of every environment variable the app-server reads, e.g.
/// `DUPLEX_APP_WS_URL=wss://chat.example/ws`.
pub const ENV_PREFIX: &str = "DUPLEX_APP";

/// The shortest `token_ttl`: a page needs a moment to connect with its
/// token, and a refresh loop faster than this would only load the server.
pub const MIN_TOKEN_TTL: Duration = Duration::from_secs(10);

/// Everything an operator can tune. See the settings table in the README.
/// `Debug` masks the secret and the API key, so that printing the settings
/// cannot leak them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The address to listen on. `0.0.0.0` inside a container.
    pub bind: IpAddr,
    /// The TCP port to listen on; 0 lets the system pick one.
    pub port: u16,
    /// The folder served under `/static/` (JavaScript, CSS).
    pub public_dir: PathBuf,
    /// The WebSocket URL pages connect to, as the browser must reach it.
    /// Used when `ws_urls` is empty.
    pub ws_url: String,
    /// Several WebSocket URLs, one per ws-server instance, handed to pages
    /// in turn so that browsers spread over the instances. Empty means
    /// `ws_url` alone. In the environment: comma-separated.
    pub ws_urls: Vec<String>,
    /// The WebSocket URL this server itself uses for its service connection
    /// (publishing, the room directory). Differs from `ws_url` when the
    /// browser and this server reach the ws-server by different names, as
    /// in Docker.
    pub ws_service_url: String,
    /// Each ws-server instance's admin port (`http://host:port`, its
    /// `admin_port`), read for the operator's dashboard. In the
    /// environment: comma-separated.
    pub ws_admin_urls: Vec<String>,
    /// The secret shared with the ws-server (its `secret`): it signs the
    /// connection tokens and this server's cookies. No default: the server
    /// does not start without one of at least 32 bytes. Wins over
    /// `secret_file` when both are set, so that an operator's value
    /// overrides a generated file.
    pub secret: String,
    /// A file holding `secret` (read once at start, surrounding whitespace
    /// trimmed), e.g. a Docker secret or volume.
    pub secret_file: Option<PathBuf>,
    /// The operator credential: what the publishing API expects as
    /// `Authorization: Bearer`, and what the operator sign-in form asks
    /// for. Empty: the API and the sign-in refuse everyone. At least 32
    /// bytes when set. Wins over `api_key_file`.
    pub api_key: String,
    /// A file holding `api_key`, read and trimmed like `secret_file`.
    pub api_key_file: Option<PathBuf>,
    /// The origin browsers use to reach this server (`scheme://host[:port]`).
    /// Requests for another host are refused (421), forms are accepted only
    /// from this origin, and cookies are `Secure` when it is `https`.
    pub public_origin: String,
    /// How long a member token handed to a page stays valid for opening a
    /// connection; the page fetches a fresh one to reconnect later.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// How long a client may take to send a request's head (line and
    /// headers) before the connection is closed with a 408.
    #[serde(with = "humantime_serde")]
    pub client_request_timeout: Duration,
    /// How long a closing connection may take to finish its shutdown.
    #[serde(with = "humantime_serde")]
    pub client_disconnect_timeout: Duration,
    /// How long an idle keep-alive connection stays open.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// How long a client may take to send a form's or an API request's
    /// body, counted from when its head was read; then 408.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// How log lines look: `text`, or `json` (one object per line).
    pub log_format: LogFormat,
}

impl Settings {
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
                    .with_list_parse_key("ws_urls")
                    .with_list_parse_key("ws_admin_urls"),
            )
            .build()
    }

    /// The settings as JSON with the secret and the API key masked: what
    /// `--print-config` prints.
    #[must_use]
    pub fn masked(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(fields) = value.as_object_mut() {
            for (name, secret) in [("secret", &self.secret), ("api_key", &self.api_key)] {
                if !secret.is_empty() {
                    fields.insert(name.to_owned(), "***".into());
                }
            }
        }
        value
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = |value: &str| if value.is_empty() { "" } else { "***" };
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("public_dir", &self.public_dir)
            .field("ws_url", &self.ws_url)
            .field("ws_urls", &self.ws_urls)
            .field("ws_service_url", &self.ws_service_url)
            .field("ws_admin_urls", &self.ws_admin_urls)
            .field("secret", &masked(&self.secret))
            .field("secret_file", &self.secret_file)
            .field("api_key", &masked(&self.api_key))
            .field("api_key_file", &self.api_key_file)
            .field("public_origin", &self.public_origin)
            .field("token_ttl", &self.token_ttl)
            .field("client_request_timeout", &self.client_request_timeout)
            .field("client_disconnect_timeout", &self.client_disconnect_timeout)
            .field("keep_alive", &self.keep_alive)
            .field("body_timeout", &self.body_timeout)
            .field("log_format", &self.log_format)
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 5001,
            public_dir: PathBuf::from("public"),
            ws_url: "ws://localhost:5000/ws".to_owned(),
            ws_urls: Vec::new(),
            ws_service_url: "ws://127.0.0.1:5000/ws".to_owned(),
            ws_admin_urls: vec!["http://127.0.0.1:5003".to_owned()],
            secret: String::new(),
            secret_file: None,
            api_key: String::new(),
            api_key_file: None,
            public_origin: "http://localhost:5001".to_owned(),
            token_ttl: Duration::from_secs(10 * 60),
            client_request_timeout: Duration::from_secs(5),
            client_disconnect_timeout: Duration::from_secs(1),
            keep_alive: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            log_format: LogFormat::Text,
        }
    }
}

/// A setting that loaded but cannot work. Each message is one line that
/// names the setting and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Reading or parsing failed.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// `ws_url` is not an absolute `ws://` or `wss://` URL.
    #[error("ws_url must start with ws:// or wss:// and name a host, got {0:?}")]
    WsUrl(String),
    /// An entry of `ws_urls` is not an absolute `ws://` or `wss://` URL.
    #[error("each of ws_urls must start with ws:// or wss:// and name a host, got {0:?}")]
    WsUrls(String),
    /// `ws_service_url` is not an absolute `ws://` or `wss://` URL.
    #[error("ws_service_url must start with ws:// or wss:// and name a host, got {0:?}")]
    WsServiceUrl(String),
    /// An entry of `ws_admin_urls` is not `http://host:port`.
    #[error(
        "each of ws_admin_urls must be http://host:port, a ws-server's admin port (its \
         admin_port, 5003 by default), got {0:?}"
    )]
    WsAdminUrls(String),
    /// Pages served over https would be handed a plain `ws://` URL, which
    /// browsers refuse as mixed content.
    #[error(
        "public_origin is https, so browsers refuse the plain ws:// URL {0:?} (mixed content); \
         serve the ws-server over TLS and give its wss:// URL (ws_url or ws_urls)"
    )]
    MixedContent(String),
    /// No usable secret.
    #[error(
        "secret: {0}; set DUPLEX_APP_SECRET (or DUPLEX_APP_SECRET_FILE, a file holding it) to \
         the same value as the ws-server's DUPLEX_WS_SECRET, at least 32 bytes, e.g. the \
         output of `app-server gen-secret`"
    )]
    Secret(SecretError),
    /// An API key that is set but too short to resist guessing.
    #[error(
        "api_key must be at least {min} bytes long (got {0}); set DUPLEX_APP_API_KEY (or \
         DUPLEX_APP_API_KEY_FILE) to e.g. the output of `app-server gen-secret`, or leave it \
         unset to refuse every operator",
        min = ApiKey::MIN_BYTES
    )]
    ApiKeyTooShort(usize),
    /// A `_file` setting names a file that cannot be read.
    #[error("{setting}: cannot read {path}: {error}")]
    File {
        /// The setting, e.g. `secret_file`.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// `public_origin` is not `http(s)://host[:port]`.
    #[error(
        "public_origin must be http:// or https:// followed by a host and an optional port, \
         nothing else (e.g. https://chat.example), got {0:?}"
    )]
    PublicOrigin(String),
    /// `token_ttl` is too short for a page to use its token.
    #[error("token_ttl must be at least {min:?}, got {0:?}", min = MIN_TOKEN_TTL)]
    TokenTtl(Duration),
    /// A timeout of zero would cut every connection.
    #[error("{0} must be longer than zero")]
    ZeroTimeout(&'static str),
}

/// Writes `secret` to a new file at `path`, readable by its owner only
/// (mode 0600 on Unix), unless the file exists: `Ok(false)` then, and the
/// file is left as it is, so that a deployment's secret survives restarts.
///
/// # Errors
/// When the file cannot be created or written.
pub fn write_new_secret_file(path: &Path, secret: &str) -> std::io::Result<bool> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    // `create_new` fails if the file exists, atomically: two writers
    // cannot both think they wrote it.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e),
    };
    writeln!(file, "{secret}")?;
    file.sync_all()?;
    Ok(true)
}

/// Reads a `_file` setting's file; the value is its trimmed text.
fn read_setting_file(setting: &'static str, path: &Path) -> Result<String, SettingsError> {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_owned())
        .map_err(|error| SettingsError::File {
            setting,
            path: path.to_owned(),
            error,
        })
}

impl Settings {
    /// Loads the settings: defaults, then `file` if given, then the
    /// environment.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, a value has the wrong type, or
    /// `ws_url` or an entry of `ws_urls` is not a WebSocket URL.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_from(file, config::Environment::with_prefix(ENV_PREFIX))
    }

    /// [`Settings::load`] with the environment source given.
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn load_from(file: Option<&Path>, env: config::Environment) -> Result<Self, SettingsError> {
        let mut settings: Self = Self::sources(file, env)?.try_deserialize()?;
        settings.ws_urls = trimmed(&settings.ws_urls);
        settings.ws_admin_urls = trimmed(&settings.ws_admin_urls);
        if settings.secret.trim().is_empty()
            && let Some(path) = &settings.secret_file
        {
            settings.secret = read_setting_file("secret_file", path)?;
        }
        if settings.api_key.trim().is_empty()
            && let Some(path) = &settings.api_key_file
        {
            settings.api_key = read_setting_file("api_key_file", path)?;
        }
        settings.check()?;
        Ok(settings)
    }

    /// Checks every value that loaded but could not work: the URLs, the
    /// secret, the API key, the public origin, the durations.
    ///
    /// # Errors
    /// The first [`SettingsError`] found.
    pub fn check(&self) -> Result<(), SettingsError> {
        self.ws_origin()?;
        self.ws_origins()?;
        if websocket_origin(&self.ws_service_url).is_none() {
            return Err(SettingsError::WsServiceUrl(self.ws_service_url.clone()));
        }
        if let Some(url) = self.ws_admin_urls.iter().find(|url| !is_admin_url(url)) {
            return Err(SettingsError::WsAdminUrls(url.clone()));
        }
        if self.public_origin.starts_with("https://")
            && let Some(url) = self
                .page_ws_urls()
                .iter()
                .find(|url| url.starts_with("ws://"))
        {
            return Err(SettingsError::MixedContent(url.clone()));
        }
        self.secret()?;
        self.api_key()?;
        self.public_origin()?;
        if self.token_ttl < MIN_TOKEN_TTL {
            return Err(SettingsError::TokenTtl(self.token_ttl));
        }
        for (name, value) in [
            ("client_request_timeout", self.client_request_timeout),
            ("client_disconnect_timeout", self.client_disconnect_timeout),
            ("keep_alive", self.keep_alive),
            ("body_timeout", self.body_timeout),
        ] {
            if value.is_zero() {
                return Err(SettingsError::ZeroTimeout(name));
            }
        }
        Ok(())
    }

    /// The token secret (`secret`, or what `secret_file` held).
    ///
    /// # Errors
    /// [`SettingsError::Secret`] when it is missing or shorter than 32
    /// bytes.
    pub fn secret(&self) -> Result<Secret, SettingsError> {
        Secret::new(&self.secret).map_err(SettingsError::Secret)
    }

    /// The operator credential, or `None` when none is set.
    ///
    /// # Errors
    /// [`SettingsError::ApiKeyTooShort`] when it is set but shorter than
    /// [`ApiKey::MIN_BYTES`].
    pub fn api_key(&self) -> Result<Option<ApiKey>, SettingsError> {
        ApiKey::new(&self.api_key).map_err(SettingsError::ApiKeyTooShort)
    }

    /// `public_origin`, parsed.
    ///
    /// # Errors
    /// [`SettingsError::PublicOrigin`] when it is not
    /// `http(s)://host[:port]`.
    pub fn public_origin(&self) -> Result<PublicOrigin, SettingsError> {
        PublicOrigin::parse(&self.public_origin)
            .ok_or_else(|| SettingsError::PublicOrigin(self.public_origin.clone()))
    }

    /// The socket address to bind.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// The origin part of `ws_url` (`ws://host:port`).
    ///
    /// # Errors
    /// [`SettingsError::WsUrl`] when `ws_url` is not a WebSocket URL.
    pub fn ws_origin(&self) -> Result<String, SettingsError> {
        websocket_origin(&self.ws_url).ok_or_else(|| SettingsError::WsUrl(self.ws_url.clone()))
    }

    /// The URLs pages are handed: `ws_urls`, or `ws_url` alone when that
    /// list is empty. Never empty.
    #[must_use]
    pub fn page_ws_urls(&self) -> &[String] {
        if self.ws_urls.is_empty() {
            std::slice::from_ref(&self.ws_url)
        } else {
            &self.ws_urls
        }
    }

    /// The origins of [`Settings::page_ws_urls`], each once, in order: what
    /// the page's Content-Security-Policy must allow it to connect to.
    ///
    /// # Errors
    /// [`SettingsError::WsUrl`] or [`SettingsError::WsUrls`] when a URL
    /// pages would get is not a WebSocket URL.
    pub fn ws_origins(&self) -> Result<Vec<String>, SettingsError> {
        let mut origins: Vec<String> = Vec::new();
        for url in self.page_ws_urls() {
            let origin = websocket_origin(url).ok_or_else(|| {
                if self.ws_urls.is_empty() {
                    SettingsError::WsUrl(url.clone())
                } else {
                    SettingsError::WsUrls(url.clone())
                }
            })?;
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        Ok(origins)
    }
}

/// A list setting's entries trimmed, empty ones dropped: `X=` splits into
/// one empty entry, and a list written `a, b` carries spaces.
fn trimmed(list: &[String]) -> Vec<String> {
    list.iter()
        .map(|url| url.trim())
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `url` is `http://host[:port]` (a trailing `/` allowed), what
/// the admin port of a ws-server answers at.
fn is_admin_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|parsed| {
        parsed.scheme() == "http"
            && parsed.host().is_some()
            && parsed.path() == "/"
            && parsed.query().is_none()
            && parsed.fragment().is_none()
            && parsed.username().is_empty()
            && parsed.password().is_none()
    })
}

/// The `scheme://host[:port]` of a `ws://` or `wss://` URL, or `None` when
/// `url` is not one. The host must be safe to place in a header value
/// between spaces (no whitespace, quotes or `;`).
fn websocket_origin(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains(['"', '\'', ';']) {
        return None;
    }
    let scheme_len = url.len() - rest.len();
    Some(format!("{}{host}", &url[..scheme_len]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    /// An environment of `vars`, plus a valid secret unless `vars` sets
    /// one.
    fn env(vars: &[(&str, &str)]) -> config::Environment {
        let mut map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if !map.contains_key("DUPLEX_APP_SECRET") && !map.contains_key("DUPLEX_APP_SECRET_FILE") {
            map.insert("DUPLEX_APP_SECRET".to_owned(), SECRET.to_owned());
        }
        config::Environment::with_prefix(ENV_PREFIX).source(Some(map))
    }

    /// A file in the system's temporary folder holding `text`, removed
    /// when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(text: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("duplex-settings-{}", protocol::UserId::generate()));
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn path_of(file: &TempFile) -> &str {
        file.0.to_str().unwrap_or_default()
    }

    #[test]
    fn defaults_apply_without_file_or_environment_but_the_secret() -> Result<(), SettingsError> {
        assert_eq!(
            Settings::load_from(None, env(&[]))?,
            Settings {
                secret: SECRET.to_owned(),
                ..Settings::default()
            }
        );
        Ok(())
    }

    #[test]
    fn without_a_secret_the_server_does_not_start_and_says_how_to_fix_it() {
        let empty = config::Environment::with_prefix(ENV_PREFIX).source(Some(HashMap::new()));
        let error = Settings::load_from(None, empty)
            .map(|_| ())
            .unwrap_err_text();
        assert!(error.contains("DUPLEX_APP_SECRET"), "{error}");
        assert!(error.contains("gen-secret"), "{error}");
        assert!(!error.contains('\n'), "one line: {error}");

        let short = Settings::load_from(None, env(&[("DUPLEX_APP_SECRET", "too-short")]));
        assert!(
            matches!(
                short,
                Err(SettingsError::Secret(SecretError::TooShort { len: 9 }))
            ),
            "{short:?}"
        );
    }

    trait ErrText {
        fn unwrap_err_text(self) -> String;
    }

    impl ErrText for Result<(), SettingsError> {
        fn unwrap_err_text(self) -> String {
            match self {
                Ok(()) => panic!("expected an error"),
                Err(e) => e.to_string(),
            }
        }
    }

    #[test]
    fn secret_and_api_key_files_are_read_and_trimmed() -> Result<(), SettingsError> {
        let secret = TempFile::new(&format!("{}\n", "f".repeat(40)));
        let key = TempFile::new(&format!("  {}\n", "k".repeat(32)));
        let settings = Settings::load_from(
            None,
            env(&[
                ("DUPLEX_APP_SECRET_FILE", path_of(&secret)),
                ("DUPLEX_APP_API_KEY_FILE", path_of(&key)),
            ]),
        )?;
        assert_eq!(settings.secret, "f".repeat(40));
        assert_eq!(settings.api_key, "k".repeat(32));
        assert!(
            settings
                .api_key()?
                .is_some_and(|k| k.matches(&"k".repeat(32)))
        );
        Ok(())
    }

    #[test]
    fn a_secret_set_directly_wins_over_the_file() -> Result<(), SettingsError> {
        let file = TempFile::new(&"f".repeat(40));
        let settings = Settings::load_from(
            None,
            env(&[
                ("DUPLEX_APP_SECRET", SECRET),
                ("DUPLEX_APP_SECRET_FILE", path_of(&file)),
            ]),
        )?;
        assert_eq!(settings.secret, SECRET);
        Ok(())
    }

    #[test]
    fn a_missing_secret_file_is_named() {
        let error = Settings::load_from(
            None,
            env(&[("DUPLEX_APP_SECRET_FILE", "/nonexistent/duplex-secret")]),
        )
        .map(|_| ())
        .unwrap_err_text();
        assert!(
            error.starts_with("secret_file: cannot read /nonexistent/duplex-secret"),
            "{error}"
        );
    }

    #[test]
    fn an_api_key_is_optional_but_long_when_set() -> Result<(), SettingsError> {
        assert_eq!(Settings::load_from(None, env(&[]))?.api_key()?, None);
        let short = Settings::load_from(None, env(&[("DUPLEX_APP_API_KEY", "hunter2")]));
        assert!(
            matches!(short, Err(SettingsError::ApiKeyTooShort(7))),
            "{short:?}"
        );
        Ok(())
    }

    #[test]
    fn debug_output_masks_the_secret_and_the_api_key() -> Result<(), SettingsError> {
        let settings = Settings::load_from(None, env(&[("DUPLEX_APP_API_KEY", &"k".repeat(32))]))?;
        let debug = format!("{settings:?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(!debug.contains(&"k".repeat(32)), "{debug}");
        assert!(debug.contains("secret: \"***\""), "{debug}");
        Ok(())
    }

    #[test]
    fn public_origin_and_durations_come_from_the_environment() -> Result<(), SettingsError> {
        let settings = Settings::load_from(
            None,
            env(&[
                ("DUPLEX_APP_PUBLIC_ORIGIN", "https://chat.example"),
                ("DUPLEX_APP_WS_URL", "wss://chat.example/ws"),
                ("DUPLEX_APP_TOKEN_TTL", "30m"),
                ("DUPLEX_APP_CLIENT_REQUEST_TIMEOUT", "250ms"),
                ("DUPLEX_APP_BODY_TIMEOUT", "2s"),
            ]),
        )?;
        assert!(settings.public_origin()?.is_https());
        assert_eq!(settings.token_ttl, Duration::from_secs(1800));
        assert_eq!(settings.client_request_timeout, Duration::from_millis(250));
        assert_eq!(settings.body_timeout, Duration::from_secs(2));
        for (key, value) in [
            ("DUPLEX_APP_PUBLIC_ORIGIN", "chat.example"),
            ("DUPLEX_APP_PUBLIC_ORIGIN", "https://chat.example/app"),
            ("DUPLEX_APP_TOKEN_TTL", "1s"),
            ("DUPLEX_APP_KEEP_ALIVE", "0s"),
        ] {
            assert!(
                Settings::load_from(None, env(&[(key, value)])).is_err(),
                "{key}={value}"
            );
        }
        Ok(())
    }

    #[test]
    fn environment_overrides_defaults() -> Result<(), SettingsError> {
        let settings = Settings::load_from(
            None,
            env(&[
                ("DUPLEX_APP_PORT", "8080"),
                ("DUPLEX_APP_WS_URL", "wss://chat.example/ws"),
                ("DUPLEX_APP_PUBLIC_DIR", "/srv/public"),
            ]),
        )?;
        assert_eq!(settings.port, 8080);
        assert_eq!(settings.ws_url, "wss://chat.example/ws");
        assert_eq!(settings.public_dir, PathBuf::from("/srv/public"));
        Ok(())
    }

    #[test]
    fn ws_url_must_be_a_websocket_url() {
        for bad in [
            "http://localhost:5000/ws",
            "ws://",
            "localhost:5000",
            "ws://a b/ws",
        ] {
            let result = Settings::load_from(None, env(&[("DUPLEX_APP_WS_URL", bad)]));
            assert!(matches!(result, Err(SettingsError::WsUrl(_))), "{bad}");
        }
    }

    #[test]
    fn ws_origin_drops_the_path() -> Result<(), SettingsError> {
        let settings = Settings {
            ws_url: "wss://chat.example:8443/ws?x=1".into(),
            ..Settings::default()
        };
        assert_eq!(settings.ws_origin()?, "wss://chat.example:8443");
        Ok(())
    }

    #[test]
    fn ws_urls_default_to_ws_url_alone() -> Result<(), SettingsError> {
        let settings = Settings::load_from(None, env(&[]))?;
        assert!(settings.ws_urls.is_empty());
        assert_eq!(settings.page_ws_urls(), ["ws://localhost:5000/ws"]);
        assert_eq!(settings.ws_origins()?, ["ws://localhost:5000"]);
        Ok(())
    }

    #[test]
    fn ws_urls_come_from_a_comma_separated_variable() -> Result<(), SettingsError> {
        let settings = Settings::load_from(
            None,
            env(&[(
                "DUPLEX_APP_WS_URLS",
                "ws://localhost:5000/ws, ws://localhost:5002/ws",
            )]),
        )?;
        assert_eq!(
            settings.ws_urls,
            ["ws://localhost:5000/ws", "ws://localhost:5002/ws"]
        );
        assert_eq!(settings.page_ws_urls(), settings.ws_urls);
        Ok(())
    }

    #[test]
    fn an_empty_ws_urls_variable_means_ws_url_alone() -> Result<(), SettingsError> {
        let settings = Settings::load_from(None, env(&[("DUPLEX_APP_WS_URLS", "")]))?;
        assert!(settings.ws_urls.is_empty());
        assert_eq!(
            settings.page_ws_urls(),
            std::slice::from_ref(&settings.ws_url)
        );
        Ok(())
    }

    #[test]
    fn a_single_ws_urls_entry_is_still_a_list() -> Result<(), SettingsError> {
        let settings = Settings::load_from(
            None,
            env(&[("DUPLEX_APP_WS_URLS", "wss://chat.example/ws")]),
        )?;
        assert_eq!(settings.ws_urls, ["wss://chat.example/ws"]);
        Ok(())
    }

    #[test]
    fn every_ws_urls_entry_must_be_a_websocket_url() {
        for bad in [
            "ws://localhost:5000/ws,http://localhost:5002/ws",
            "ws://,ws://localhost:5002/ws",
            "ws://localhost:5000/ws,ws://a;b/ws",
        ] {
            let result = Settings::load_from(None, env(&[("DUPLEX_APP_WS_URLS", bad)]));
            assert!(matches!(result, Err(SettingsError::WsUrls(_))), "{bad}");
        }
    }

    #[test]
    fn ws_origins_lists_each_origin_once_in_order() -> Result<(), SettingsError> {
        let settings = Settings {
            ws_urls: vec![
                "ws://b.example:5002/ws".into(),
                "ws://a.example:5000/ws".into(),
                "ws://b.example:5002/other".into(),
            ],
            ..Settings::default()
        };
        assert_eq!(
            settings.ws_origins()?,
            ["ws://b.example:5002", "ws://a.example:5000"]
        );
        Ok(())
    }
}
