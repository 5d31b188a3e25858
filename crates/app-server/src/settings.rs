//! The app-server's settings: built-in defaults, then an optional file, then
//! `DUPLEX_APP_*` environment variables.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The prefix of every environment variable the app-server reads, e.g.
/// `DUPLEX_APP_WS_URL=wss://chat.example/ws`.
pub const ENV_PREFIX: &str = "DUPLEX_APP";

/// Everything an operator can tune. See the settings table in the README.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The secret the ws-server expects from service connections (its
    /// `service_secret`). The default suits local development only.
    pub service_secret: String,
}

/// The built-in service secret, the same as the ws-server's default so that
/// both work together with no configuration.
pub const DEV_SERVICE_SECRET: &str = "duplex-dev-secret";

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 5001,
            public_dir: PathBuf::from("public"),
            ws_url: "ws://localhost:5000/ws".to_owned(),
            ws_urls: Vec::new(),
            ws_service_url: "ws://127.0.0.1:5000/ws".to_owned(),
            service_secret: DEV_SERVICE_SECRET.to_owned(),
        }
    }
}

/// A setting that loaded but cannot work.
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
        let mut builder =
            config::Config::builder().add_source(config::Config::try_from(&Self::default())?);
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        let mut settings: Self = builder
            .add_source(
                env.prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("ws_urls"),
            )
            .build()?
            .try_deserialize()?;
        // `DUPLEX_APP_WS_URLS=` splits into one empty entry, and a list
        // written `a, b` carries spaces: neither is part of a URL.
        settings.ws_urls = settings
            .ws_urls
            .iter()
            .map(|url| url.trim())
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect();
        settings.ws_origin()?;
        settings.ws_origins()?;
        Ok(settings)
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

    fn env(vars: &[(&str, &str)]) -> config::Environment {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        config::Environment::with_prefix(ENV_PREFIX).source(Some(map))
    }

    #[test]
    fn defaults_apply_without_file_or_environment() -> Result<(), SettingsError> {
        assert_eq!(Settings::load_from(None, env(&[]))?, Settings::default());
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
