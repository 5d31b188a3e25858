//! What the ws-server counts, for Prometheus (`/metrics` on the admin
//! port, see [`crate::admin`]) and for the operator's dashboard (`/stats`).
//!
//! Every figure is an atomic updated where the event happens; nothing is
//! computed at scrape time but what the engine holds (rooms) and the
//! readiness. Hot-path figures (frames and bytes out, the outbox depth) are
//! added once per written batch, not per frame, so that a busy room costs a
//! few atomic additions per wake-up of each member's writer, on counters
//! striped over the threads ([`striped`]) so that writers on different
//! threads do not contend for one cache line.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use protocol::CloseCode;

mod striped;

pub use striped::{DepthHistogram, StripedCounter};

/// One label, `reason`: its values are this crate's constants, never what
/// a client sent, so the series stay few.
pub type Reason = [(&'static str, &'static str); 1];

/// Why a connection ended, as the `reason` label of
/// `duplex_connections_closed_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent a close frame.
    ClientClosed,
    /// The socket ended without a close frame.
    Dropped,
    /// The server is shutting down (1001).
    Shutdown,
    /// The client read too slowly (4000).
    SlowConsumer,
    /// The client answered no ping in time (4001).
    HeartbeatTimeout,
    /// The client kept sending after `rate_limited` (1008).
    RateLimited,
    /// A frame over `max_frame_bytes` (1009).
    MessageTooBig,
    /// A frame broke the WebSocket protocol (1002) or was not UTF-8 (1007).
    ProtocolError,
    /// Writing to the socket failed (1011).
    WriteFailed,
    /// The server closed it for another reason (e.g. 4003, name lost).
    Server,
    /// Reading failed otherwise.
    Error,
}

impl CloseReason {
    /// Every reason.
    pub const ALL: [Self; 11] = [
        Self::ClientClosed,
        Self::Dropped,
        Self::Shutdown,
        Self::SlowConsumer,
        Self::HeartbeatTimeout,
        Self::RateLimited,
        Self::MessageTooBig,
        Self::ProtocolError,
        Self::WriteFailed,
        Self::Server,
        Self::Error,
    ];

    /// The reason for a close the server asked for with `code`.
    #[must_use]
    pub fn of_server_close(code: CloseCode) -> Self {
        match code {
            CloseCode::SLOW_CONSUMER => Self::SlowConsumer,
            CloseCode::POLICY_VIOLATION => Self::RateLimited,
            CloseCode::HEARTBEAT_TIMEOUT => Self::HeartbeatTimeout,
            CloseCode::INTERNAL_ERROR => Self::WriteFailed,
            _ => Self::Server,
        }
    }

    /// The label value.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::ClientClosed => "client_closed",
            Self::Dropped => "dropped",
            Self::Shutdown => "shutdown",
            Self::SlowConsumer => "slow_consumer",
            Self::HeartbeatTimeout => "heartbeat_timeout",
            Self::RateLimited => "rate_limited",
            Self::MessageTooBig => "message_too_big",
            Self::ProtocolError => "protocol_error",
            Self::WriteFailed => "write_failed",
            Self::Server => "server",
            Self::Error => "error",
        }
    }
}

/// A status of each refusal reason (0 stands for `other`).
const REFUSAL_STATUSES: [u16; 10] = [400, 401, 403, 404, 405, 408, 426, 429, 431, 0];

/// The `operation` label of `duplex_engine_errors_total`.
const ENGINE_OPERATIONS: [&str; 5] = ["join", "publish", "rooms", "history", "probe"];

/// The `reason` label of a refused handshake, by the HTTP status it got.
#[must_use]
pub fn refusal_reason(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "timeout",
        426 => "upgrade_required",
        429 => "too_many_connections",
        431 => "header_too_large",
        _ => "other",
    }
}

/// Everything counted; shared by the accept loop, every connection, the
/// chat and the admin server.
#[derive(Debug)]
pub struct Metrics {
    /// Connections past the handshake and not yet closed.
    pub connections_open: Gauge,
    /// Handshakes answered with 101.
    pub handshakes_accepted: Counter,
    /// Handshakes refused, by reason.
    pub handshakes_refused: Family<Reason, Counter>,
    /// Connections closed, by reason.
    pub connections_closed: Family<Reason, Counter>,
    /// Text and binary messages received.
    pub messages_received: StripedCounter,
    /// Their payload bytes.
    pub bytes_received: StripedCounter,
    /// Text and binary messages written to sockets.
    pub messages_sent: StripedCounter,
    /// Their payload bytes.
    pub bytes_sent: StripedCounter,
    /// Frames a connection's writer found queued each time it woke.
    pub outbox_depth: DepthHistogram,
    /// Requests the engine could not serve (its store unreachable), by
    /// operation.
    pub engine_errors: Family<[(&'static str, &'static str); 1], Counter>,
    /// Round trips of the Redis engine's health probe.
    pub redis_round_trip: Histogram,
    /// Whether the accept loop is taking connections: false before it
    /// starts and once shutdown begins (readiness, not a metric).
    pub accepting: AtomicBool,
}

impl Metrics {
    /// Fresh counters, every reason's series among them at zero, so that
    /// Prometheus sees each from the start.
    #[must_use]
    pub fn new() -> Arc<Self> {
        let metrics = Arc::new(Self {
            connections_open: Gauge::default(),
            handshakes_accepted: Counter::default(),
            handshakes_refused: Family::default(),
            connections_closed: Family::default(),
            messages_received: StripedCounter::default(),
            bytes_received: StripedCounter::default(),
            messages_sent: StripedCounter::default(),
            bytes_sent: StripedCounter::default(),
            outbox_depth: DepthHistogram::default(),
            engine_errors: Family::default(),
            // 100 µs to about 3 s.
            redis_round_trip: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            accepting: AtomicBool::new(false),
        });
        for status in REFUSAL_STATUSES {
            let _ = metrics
                .handshakes_refused
                .get_or_create(&[("reason", refusal_reason(status))]);
        }
        for reason in CloseReason::ALL {
            let _ = metrics
                .connections_closed
                .get_or_create(&[("reason", reason.label())]);
        }
        for operation in ENGINE_OPERATIONS {
            let _ = metrics
                .engine_errors
                .get_or_create(&[("operation", operation)]);
        }
        metrics
    }

    /// Counts a connection closed for `reason`.
    pub fn closed(&self, reason: CloseReason) {
        self.connections_closed
            .get_or_create(&[("reason", reason.label())])
            .inc();
    }

    /// Counts a handshake refused with `status`.
    pub fn refused(&self, status: u16) {
        self.handshakes_refused
            .get_or_create(&[("reason", refusal_reason(status))])
            .inc();
    }

    /// Counts an engine request for `operation` that failed.
    pub fn engine_error(&self, operation: &'static str) {
        debug_assert!(ENGINE_OPERATIONS.contains(&operation));
        self.engine_errors
            .get_or_create(&[("operation", operation)])
            .inc();
    }

    /// Connections closed for `reason` so far.
    #[must_use]
    pub fn closed_for(&self, reason: CloseReason) -> u64 {
        self.connections_closed
            .get_or_create(&[("reason", reason.label())])
            .get()
    }

    /// Handshakes refused so far, for every reason.
    #[must_use]
    pub fn handshakes_refused_total(&self) -> u64 {
        REFUSAL_STATUSES
            .iter()
            .map(|&status| {
                self.handshakes_refused
                    .get_or_create(&[("reason", refusal_reason(status))])
                    .get()
            })
            .sum()
    }

    /// A registry holding these metrics, plus `rooms` (read at scrape time)
    /// and build information.
    pub fn registry(&self, rooms: Gauge) -> Registry {
        let mut registry = Registry::with_prefix("duplex");
        registry.register(
            "build",
            "The ws-server's version",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "connections_open",
            "WebSocket connections open",
            self.connections_open.clone(),
        );
        registry.register("rooms", "Rooms this instance holds", rooms);
        registry.register(
            "handshakes_accepted",
            "WebSocket handshakes accepted",
            self.handshakes_accepted.clone(),
        );
        registry.register(
            "handshakes_refused",
            "WebSocket handshakes refused, by reason (the HTTP status's meaning)",
            self.handshakes_refused.clone(),
        );
        registry.register(
            "connections_closed",
            "Connections closed, by reason",
            self.connections_closed.clone(),
        );
        registry.register(
            "messages_received",
            "Text and binary messages received from clients",
            self.messages_received.clone(),
        );
        registry.register_with_unit(
            "received",
            "Payload bytes of the messages received",
            Unit::Bytes,
            self.bytes_received.clone(),
        );
        registry.register(
            "messages_sent",
            "Text and binary messages written to clients",
            self.messages_sent.clone(),
        );
        registry.register_with_unit(
            "sent",
            "Payload bytes of the messages written",
            Unit::Bytes,
            self.bytes_sent.clone(),
        );
        registry.register(
            "outbox_depth",
            "Frames queued for a client each time its writer wakes",
            self.outbox_depth.clone(),
        );
        registry.register(
            "engine_errors",
            "Engine requests that failed (store unreachable), by operation",
            self.engine_errors.clone(),
        );
        registry.register_with_unit(
            "redis_round_trip",
            "Round trips of the Redis engine's health probe",
            Unit::Seconds,
            self.redis_round_trip.clone(),
        );
        registry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_names_every_metric() {
        let metrics = Metrics::new();
        metrics.closed(CloseReason::SlowConsumer);
        metrics.refused(403);
        metrics.outbox_depth.observe(3);
        metrics.outbox_depth.observe(5);
        let mut text = String::new();
        let encoded = prometheus_client::encoding::text::encode(
            &mut text,
            &metrics.registry(Gauge::default()),
        );
        assert!(encoded.is_ok());
        let lines: Vec<&str> = text.lines().collect();
        for line in [
            "duplex_connections_closed_total{reason=\"slow_consumer\"} 1",
            "duplex_handshakes_refused_total{reason=\"forbidden\"} 1",
            // Cumulative, as Prometheus reads them.
            "duplex_outbox_depth_bucket{le=\"2.0\"} 0",
            "duplex_outbox_depth_bucket{le=\"4.0\"} 1",
            "duplex_outbox_depth_bucket{le=\"8.0\"} 2",
            "duplex_outbox_depth_bucket{le=\"+Inf\"} 2",
            "duplex_outbox_depth_count 2",
            "duplex_connections_closed_total{reason=\"heartbeat_timeout\"} 0",
            "duplex_handshakes_refused_total{reason=\"timeout\"} 0",
            "duplex_build_info{version=",
            "duplex_sent_bytes_total 0",
        ] {
            assert!(
                lines.iter().any(|l| l.starts_with(line)),
                "{line} missing from\n{text}"
            );
        }
    }
}
