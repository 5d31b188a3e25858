//! The WebSocket URLs handed to pages: with several ws-server instances,
//! each page render gets the next one in turn, so browsers spread over them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::settings::{Settings, SettingsError};

/// The URLs pages connect to and the rotation over them. A cheap `Clone`
/// handle: every clone shares one rotation, so the server builds it once
/// and hands a clone to each worker.
#[derive(Debug, Clone)]
pub struct WsUrls {
    /// Never empty: built from [`Settings::page_ws_urls`].
    urls: Arc<[String]>,
    /// The origins of `urls`, each once, for the Content-Security-Policy.
    origins: Arc<[String]>,
    /// How many URLs have been handed out, across all workers. Round-robin
    /// rather than random: it spreads pages evenly even over a handful of
    /// renders, and tests can say which page gets which URL.
    handed_out: Arc<AtomicUsize>,
}

impl WsUrls {
    /// The page URLs of `settings`, checked, with a fresh rotation that
    /// starts at the first.
    ///
    /// # Errors
    /// [`SettingsError::WsUrl`] or [`SettingsError::WsUrls`] when a URL is
    /// not a WebSocket URL.
    pub fn new(settings: &Settings) -> Result<Self, SettingsError> {
        Ok(Self {
            urls: settings.page_ws_urls().into(),
            origins: settings.ws_origins()?.into(),
            handed_out: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The URL for the page being rendered: the first, the second, ...,
    /// then the first again.
    #[must_use]
    pub fn next(&self) -> &str {
        // Relaxed: only the count matters, it orders no other memory. At
        // overflow it wraps, which costs one uneven step.
        let n = self.handed_out.fetch_add(1, Ordering::Relaxed);
        // `urls` is never empty (see the field), so the remainder is an
        // index within it.
        &self.urls[n % self.urls.len()]
    }

    /// Every URL's origin, each once: what pages may connect to.
    #[must_use]
    pub fn origins(&self) -> &[String] {
        &self.origins
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_is_handed_to_every_page() -> Result<(), SettingsError> {
        let urls = WsUrls::new(&Settings::default())?;
        for _ in 0..3 {
            assert_eq!(urls.next(), "ws://localhost:5000/ws");
        }
        Ok(())
    }

    #[test]
    fn several_urls_are_handed_out_in_turn_across_clones() -> Result<(), SettingsError> {
        let urls = WsUrls::new(&Settings {
            ws_urls: vec!["ws://a/ws".into(), "ws://b/ws".into()],
            ..Settings::default()
        })?;
        let worker = urls.clone();
        assert_eq!(urls.next(), "ws://a/ws");
        assert_eq!(worker.next(), "ws://b/ws");
        assert_eq!(urls.next(), "ws://a/ws");
        assert_eq!(urls.origins(), ["ws://a", "ws://b"]);
        Ok(())
    }

    #[test]
    fn an_invalid_url_is_refused() {
        let settings = Settings {
            ws_urls: vec!["ws://a/ws".into(), "https://b/ws".into()],
            ..Settings::default()
        };
        assert!(matches!(
            WsUrls::new(&settings),
            Err(SettingsError::WsUrls(_))
        ));
    }
}
