//! What the routes need from the settings, checked once: the secret, the
//! operator credential, the public origin and the limits. Registered as
//! `web::Data<Site>` and read by handlers and middleware alike.

use std::path::PathBuf;
use std::time::Duration;

use protocol::Secret;

use crate::api_key::ApiKey;
use crate::public_origin::PublicOrigin;
use crate::settings::{Settings, SettingsError};

/// The checked settings the routes use.
#[derive(Debug, Clone)]
pub struct Site {
    /// Signs tokens and cookies; shared with the ws-server.
    pub secret: Secret,
    /// The operator credential; `None`: no operator at all.
    pub api_key: Option<ApiKey>,
    /// The origin browsers use; see [`PublicOrigin`].
    pub origin: PublicOrigin,
    /// How long a member token stays valid.
    pub token_ttl: Duration,
    /// How long a form's or an API request's body may take to arrive.
    pub body_timeout: Duration,
    /// The folder served under `/static/`.
    pub public_dir: PathBuf,
}

impl Site {
    /// Checks `settings` and keeps what the routes use.
    ///
    /// # Errors
    /// [`SettingsError`] for the first value that cannot work.
    pub fn new(settings: &Settings) -> Result<Self, SettingsError> {
        settings.check()?;
        Ok(Self {
            secret: settings.secret()?,
            api_key: settings.api_key()?,
            origin: settings.public_origin()?,
            token_ttl: settings.token_ttl,
            body_timeout: settings.body_timeout,
            public_dir: settings.public_dir.clone(),
        })
    }
}
