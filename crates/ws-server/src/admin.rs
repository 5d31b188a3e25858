//! The admin port: liveness (`/healthz`), readiness (`/readyz`),
//! Prometheus metrics (`/metrics`) and the dashboard's figures (`/stats`),
//! over plain HTTP on a listener of its own.
//!
//! A port of its own keeps the WebSocket accept loop a raw
//! tokio-tungstenite loop that speaks nothing but upgrades, and lets the
//! operator keep these pages off the public network: the admin port binds
//! to loopback unless `admin_bind` says otherwise.
//!
//! Readiness is not checked per request: a prober asks the engine every
//! [`PROBE_INTERVAL`] and keeps the answer, so a scraper polling `/readyz`
//! costs Redis nothing.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use log::{info, warn};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use protocol::admin::{InstanceStats, Readiness};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Bytes;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::{Engine, Page};
use crate::metrics::{CloseReason, Metrics};

/// How often the engine is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Admin connections served at once. One more is closed at once rather
/// than left in the backlog, so that idle sockets cannot hold health
/// checks back: they get their answer or a refusal, never a wait.
const MAX_ADMIN_CONNECTIONS: usize = 32;
/// How long a client has to send a request's head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one admin connection (one request) may stay open.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// How long `/stats` waits for the room directory before answering
/// without it: well inside the dashboard's 800 ms per instance, so that a
/// hung Redis shows as "not ready" with its reason, not as unreachable.
const DIRECTORY_TIMEOUT: Duration = Duration::from_millis(300);
/// How long a room directory read for `/stats` is reused: however many
/// dashboards and scrapers ask, Redis is read at most once a second.
const DIRECTORY_REUSE: Duration = Duration::from_secs(1);
/// Rooms listed in `/stats`.
const STATS_ROOMS: usize = 100;

/// What the admin port reads: the counters, the engine and the last probe.
#[derive(Debug)]
pub struct Admin {
    metrics: Arc<Metrics>,
    engine: Engine,
    registry: Registry,
    /// `duplex_rooms`, set from the engine at each scrape.
    rooms: Gauge,
    /// The last probe's verdict: `None` when the engine can serve, else
    /// why not. Starts as not probed yet.
    engine_down: Mutex<Option<String>>,
    /// The last room directory page `/stats` read, and when. Held across
    /// the read (at most [`DIRECTORY_TIMEOUT`]), so that concurrent
    /// requests share one read.
    directory: tokio::sync::Mutex<Option<(Instant, Page)>>,
    instance: String,
    started: Instant,
}

impl Admin {
    /// The admin state over `engine` and `metrics`.
    #[must_use]
    pub fn new(engine: Engine, metrics: Arc<Metrics>) -> Arc<Self> {
        let rooms = Gauge::default();
        Arc::new(Self {
            registry: metrics.registry(rooms.clone()),
            metrics,
            engine,
            rooms,
            engine_down: Mutex::new(Some("not probed yet".to_owned())),
            directory: tokio::sync::Mutex::new(None),
            instance: uuid::Uuid::now_v7().simple().to_string(),
            started: Instant::now(),
        })
    }

    fn engine_down(&self) -> Option<String> {
        self.engine_down
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Asks the engine once and keeps the verdict; logs changes.
    async fn probe(&self) {
        let verdict = match self.engine.probe().await {
            Ok(round_trip) => {
                if let Some(round_trip) = round_trip {
                    self.metrics
                        .redis_round_trip
                        .observe(round_trip.as_secs_f64());
                }
                None
            }
            Err(e) => {
                self.metrics.engine_error("probe");
                Some(e.to_string())
            }
        };
        let mut down = self
            .engine_down
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match (&*down, &verdict) {
            (Some(_), None) => info!("ready: the {} engine answers", engine_name(&self.engine)),
            (None, Some(why)) => warn!("not ready: {why}"),
            _ => {}
        }
        *down = verdict;
    }

    /// Whether this instance should get traffic, and if not why.
    #[must_use]
    pub fn readiness(&self) -> Readiness {
        let accepting = self.metrics.accepting.load(Ordering::Acquire);
        let down = self.engine_down();
        let reason = match (&down, accepting) {
            (_, false) => Some("the accept loop is not taking connections".to_owned()),
            (Some(why), true) => Some(why.clone()),
            (None, true) => None,
        };
        Readiness {
            ready: reason.is_none(),
            accepting,
            engine: engine_name(&self.engine),
            engine_ok: down.is_none(),
            reason,
        }
    }

    /// The first page of the room directory, read at most once per
    /// [`DIRECTORY_REUSE`]; empty when the engine does not answer in time
    /// (and then not kept: the next request tries again).
    async fn directory(&self) -> Page {
        let mut cached = self.directory.lock().await;
        if let Some((read, page)) = &*cached
            && read.elapsed() < DIRECTORY_REUSE
        {
            return page.clone();
        }
        match tokio::time::timeout(DIRECTORY_TIMEOUT, self.engine.rooms(None, STATS_ROOMS)).await {
            Ok(Ok(page)) => {
                *cached = Some((Instant::now(), page.clone()));
                page
            }
            _ => Page::default(),
        }
    }

    /// The figures the dashboard shows.
    async fn stats(&self) -> InstanceStats {
        let page = self.directory().await;
        let m = &self.metrics;
        InstanceStats {
            instance: self.instance.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: self.started.elapsed().as_secs(),
            readiness: self.readiness(),
            connections: u64::try_from(m.connections_open.get()).unwrap_or(0),
            rooms_held: self.engine.rooms_held() as u64,
            handshakes_accepted: m.handshakes_accepted.get(),
            handshakes_refused: m.handshakes_refused_total(),
            messages_received: m.messages_received.get(),
            messages_sent: m.messages_sent.get(),
            bytes_received: m.bytes_received.get(),
            bytes_sent: m.bytes_sent.get(),
            slow_consumer_closes: m.closed_for(CloseReason::SlowConsumer),
            heartbeat_closes: m.closed_for(CloseReason::HeartbeatTimeout),
            rate_limit_closes: m.closed_for(CloseReason::RateLimited),
            more_rooms: page.next.is_some(),
            rooms: page.rooms,
        }
    }

    /// The metrics in the OpenMetrics text format.
    fn metrics_text(&self) -> String {
        self.rooms
            .set(i64::try_from(self.engine.rooms_held()).unwrap_or(i64::MAX));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

fn engine_name(engine: &Engine) -> String {
    serde_json::to_value(engine.kind())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Probes the engine every [`PROBE_INTERVAL`] until `shutdown`.
pub async fn probe_engine(admin: Arc<Admin>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => admin.probe().await,
        }
    }
}

/// Serves the admin pages on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>, shutdown: CancellationToken) {
    let limit = Arc::new(Semaphore::new(MAX_ADMIN_CONNECTIONS));
    let tracker = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    warn!("admin port: accept failed: {e}");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            },
        };
        let Ok(permit) = Arc::clone(&limit).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let admin = Arc::clone(&admin);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let service = service_fn(move |request| {
                let admin = Arc::clone(&admin);
                async move { Ok::<_, Infallible>(route(&admin, &request).await) }
            });
            // One request per connection: hyper restarts the head timeout
            // whenever a kept-alive connection goes idle, so a client that
            // asks once a second (the dashboard's poller) would race it.
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                () = shutdown.cancelled() => {}
                _ = tokio::time::timeout(CONNECTION_DEADLINE, connection) => {}
            }
            drop(permit);
        });
    }
    tracker.close();
    tracker.wait().await;
}

async fn route(admin: &Admin, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = json(
            StatusCode::METHOD_NOT_ALLOWED,
            &Problem::new("only GET and HEAD"),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match request.uri().path() {
        "/healthz" => json(StatusCode::OK, &Alive { status: "ok" }),
        "/readyz" => {
            let readiness = admin.readiness();
            let status = if readiness.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json(status, &readiness)
        }
        "/metrics" => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            admin.metrics_text(),
        ),
        "/stats" => json(StatusCode::OK, &admin.stats().await),
        _ => json(
            StatusCode::NOT_FOUND,
            &Problem::new("the admin port serves /healthz, /readyz, /metrics and /stats"),
        ),
    }
}

#[derive(Serialize)]
struct Alive {
    status: &'static str,
}

#[derive(Serialize)]
struct Problem {
    error: &'static str,
}

impl Problem {
    fn new(error: &'static str) -> Self {
        Self { error }
    }
}

fn json(status: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    respond(
        status,
        "application/json",
        serde_json::to_string(body).unwrap_or_default(),
    )
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Every answer describes this moment.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
