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
    pub ws_url: String,
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
}

impl Settings {
    /// Loads the settings: defaults, then `file` if given, then the
    /// environment.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, a value has the wrong type, or
    /// `ws_url` is not a WebSocket URL.
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
        let settings: Self = builder
            .add_source(env.prefix_separator("_").separator("__").try_parsing(true))
            .build()?
            .try_deserialize()?;
        settings.ws_origin()?;
        Ok(settings)
    }

    /// The socket address to bind.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// The origin part of `ws_url` (`ws://host:port`), for the page's
    /// Content-Security-Policy.
    ///
    /// # Errors
    /// [`SettingsError::WsUrl`] when `ws_url` is not a WebSocket URL.
    pub fn ws_origin(&self) -> Result<String, SettingsError> {
        let invalid = || SettingsError::WsUrl(self.ws_url.clone());
        let rest = self
            .ws_url
            .strip_prefix("ws://")
            .or_else(|| self.ws_url.strip_prefix("wss://"))
            .ok_or_else(invalid)?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains(['"', '\'', ';'])
        {
            return Err(invalid());
        }
        let scheme_len = self.ws_url.len() - rest.len();
        Ok(format!("{}{host}", &self.ws_url[..scheme_len]))
    }
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
}
