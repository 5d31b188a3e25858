//! What the app-server counts, for Prometheus at `/metrics` (behind the
//! API key): requests by route, method and status, their latency by route,
//! and the state of the service connection to the ws-server.
//!
//! Routes are counted by their pattern (`/rooms/{room}`), never by the
//! path a client sent, so that the series stay as few as the routes.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::publisher::Publisher;

/// What a request is counted under.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's pattern, or `unmatched`.
    pub route: String,
    /// The method, as sent for the usual ones, `other` otherwise.
    pub method: &'static str,
    /// The response's status.
    pub status: u16,
}

/// The route a latency is counted under.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// The route's pattern, or `unmatched`.
    pub route: String,
}

/// The app-server's metrics; one per server, shared by its workers.
#[derive(Debug)]
pub struct AppMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabel, Histogram, fn() -> Histogram>,
}

fn latency_histogram() -> Histogram {
    // 100 µs to about 6.5 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

impl AppMetrics {
    /// Fresh metrics; the service connection's state is read from
    /// `publisher` at each scrape.
    #[must_use]
    pub fn new(publisher: Publisher) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: Family<RouteLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let mut registry = Registry::with_prefix("duplex_app");
        registry.register(
            "build",
            "The app-server's version",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request (to its response head), by route",
            Unit::Seconds,
            latency.clone(),
        );
        registry.register_collector(Box::new(ServiceConnection(publisher)));
        Self {
            registry,
            requests,
            latency,
        }
    }

    /// Counts one answered request.
    pub fn record(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let route = route.to_owned();
        self.requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                method: method_label(method),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabel { route })
            .observe(seconds);
    }

    /// The metrics in the OpenMetrics text format.
    #[must_use]
    pub fn text(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    }
}

/// The service connection's state, read at scrape time.
#[derive(Debug)]
struct ServiceConnection(Publisher);

impl Collector for ServiceConnection {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let status = self.0.status();
        let up = ConstGauge::new(i64::from(status.connected));
        up.encode(encoder.encode_descriptor(
            "service_connection_up",
            "1 while the service connection to the ws-server is open",
            None,
            up.metric_type(),
        )?)?;
        let failed = ConstCounter::new(status.failed_attempts);
        failed.encode(encoder.encode_descriptor(
            "service_connection_failed_attempts",
            "Service connection attempts that failed since the start",
            None,
            failed.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Middleware: counts every request under its route's pattern.
///
/// # Errors
/// What the inner service fails with (counted as 500).
pub async fn record(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = request.app_data::<web::Data<AppMetrics>>().cloned();
    let method = request.method().as_str().to_owned();
    let result = next.call(request).await;
    if let Some(metrics) = metrics {
        let (route, status) = match &result {
            Ok(response) => (
                response.request().match_pattern(),
                response.status().as_u16(),
            ),
            Err(e) => (None, e.as_response_error().status_code().as_u16()),
        };
        metrics.record(
            route.as_deref().unwrap_or("unmatched"),
            &method,
            status,
            started.elapsed().as_secs_f64(),
        );
    }
    result
}

/// `GET /metrics`.
pub async fn scrape(metrics: web::Data<AppMetrics>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(metrics.text())
}
