//! The ws-server instances as the operator's dashboard sees them: each
//! one's admin `/stats` (see `ws_admin_urls`), polled every
//! [`POLL_INTERVAL`] while at least one dashboard watches, by one task for
//! the whole server however many dashboards are open.
//!
//! Nothing is polled while nobody watches: the admin ports are asked only
//! on an operator's behalf.

use std::sync::{Arc, Weak};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use protocol::admin::InstanceStats;
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// How often the instances are polled while a dashboard watches.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long one instance may take to answer; then it shows as unreachable
/// in this round.
const POLL_TIMEOUT: Duration = Duration::from_millis(800);
/// The largest `/stats` body accepted: a hundred rooms take about 11 KiB.
const MAX_STATS_BYTES: usize = 256 * 1024;

/// One round of polling: what every instance said.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    /// When the round ended, in milliseconds since the Unix epoch.
    pub at: u64,
    /// The instances, in `ws_admin_urls` order.
    pub instances: Vec<InstanceView>,
}

/// One instance in a [`Snapshot`].
#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    /// Its admin URL.
    pub url: String,
    /// It answered.
    pub ok: bool,
    /// Why not, when it did not.
    pub error: Option<String>,
    /// What it said.
    pub stats: Option<InstanceStats>,
}

/// A handle to the poller; cheap to clone. The polling task ends when the
/// last handle is dropped.
#[derive(Debug, Clone)]
pub struct Fleet {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    snapshots: watch::Sender<Arc<Snapshot>>,
    /// Wakes the task when a dashboard starts watching.
    watcher: Notify,
    /// Cancelled when the server stops: the task ends, and so does every
    /// event stream, which would otherwise hold the server's graceful
    /// stop for as long as a dashboard stays open.
    stop: CancellationToken,
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

impl Fleet {
    /// Starts the poller of the admin ports at `urls`. Must be called
    /// within a Tokio runtime.
    #[must_use]
    pub fn start(urls: Vec<String>) -> Self {
        let (snapshots, _) = watch::channel(Arc::new(Snapshot::default()));
        let shared = Arc::new(Shared {
            snapshots,
            watcher: Notify::new(),
            stop: CancellationToken::new(),
        });
        // A connection per request: the admin port serves one request per
        // connection, and a pooled one could be closed under a request.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build_http();
        tokio::spawn(poll(Arc::downgrade(&shared), urls, client));
        Self { shared }
    }

    /// A receiver of each new snapshot; polling runs while one exists.
    #[must_use]
    pub fn watch(&self) -> watch::Receiver<Arc<Snapshot>> {
        let receiver = self.shared.snapshots.subscribe();
        self.shared.watcher.notify_one();
        receiver
    }

    /// Stops polling for good and ends every watcher's stream (see
    /// [`Fleet::stopped`]): the server is stopping.
    pub fn stop(&self) {
        self.shared.stop.cancel();
    }

    /// Resolves once [`Fleet::stop`] was called.
    pub fn stopped(&self) -> WaitForCancellationFutureOwned {
        self.shared.stop.clone().cancelled_owned()
    }
}

async fn poll(shared: Weak<Shared>, urls: Vec<String>, client: HttpClient) {
    let Some(stop) = shared.upgrade().map(|shared| shared.stop.clone()) else {
        return;
    };
    loop {
        {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            if shared.snapshots.receiver_count() == 0 {
                // Woken by the next `watch`; the check above runs again.
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = shared.watcher.notified() => {}
                    // Lets the task notice that the last handle is gone.
                    () = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
                continue;
            }
        }
        let instances =
            futures_util::future::join_all(urls.iter().map(|url| instance(&client, url))).await;
        let snapshot = Snapshot {
            at: protocol::now_millis(),
            instances,
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.snapshots.send_replace(Arc::new(snapshot));
        drop(shared);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

async fn instance(client: &HttpClient, url: &str) -> InstanceView {
    match tokio::time::timeout(POLL_TIMEOUT, fetch_stats(client, url)).await {
        Ok(Ok(stats)) => InstanceView {
            url: url.to_owned(),
            ok: true,
            error: None,
            stats: Some(stats),
        },
        Ok(Err(error)) => unreachable(url, error),
        Err(_) => unreachable(url, format!("no answer within {POLL_TIMEOUT:?}")),
    }
}

fn unreachable(url: &str, error: String) -> InstanceView {
    InstanceView {
        url: url.to_owned(),
        ok: false,
        error: Some(error),
        stats: None,
    }
}

async fn fetch_stats(client: &HttpClient, url: &str) -> Result<InstanceStats, String> {
    let uri: hyper::Uri = format!("{}/stats", url.trim_end_matches('/'))
        .parse()
        .map_err(|e| format!("not a URL: {e}"))?;
    let response = client.get(uri).await.map_err(|e| {
        // The legacy client's own message is only "client error (Connect)".
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        message
    })?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    let body = Limited::new(response.into_body(), MAX_STATS_BYTES)
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| format!("not the stats of a ws-server: {e}"))
}
