//! What a ws-server's admin port answers (`/readyz` and `/stats`), shared
//! with the app-server, which reads `/stats` for the operator's dashboard.
//! Not part of the WebSocket protocol: plain HTTP on a port kept off the
//! public network.

use serde::{Deserialize, Serialize};

use crate::RoomInfo;

/// `/readyz`'s body: ready when the accept loop takes connections and the
/// engine can serve; `reason` says what is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// Both checks pass (the status is 200; otherwise 503).
    pub ready: bool,
    /// The accept loop takes connections (false before start and during
    /// shutdown).
    pub accepting: bool,
    /// The engine's name: `memory` or `redis`.
    pub engine: String,
    /// The engine's last health probe passed.
    pub engine_ok: bool,
    /// What is not ready, when something is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `/stats`' body: one instance's figures, all counters since it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStats {
    /// This run of the instance: a new id at every start.
    pub instance: String,
    /// The ws-server's version.
    pub version: String,
    /// Seconds since the instance started.
    pub uptime_seconds: u64,
    /// As `/readyz` says.
    pub readiness: Readiness,
    /// WebSocket connections open.
    pub connections: u64,
    /// Rooms the instance holds.
    pub rooms_held: u64,
    /// Handshakes accepted.
    pub handshakes_accepted: u64,
    /// Handshakes refused, for any reason.
    pub handshakes_refused: u64,
    /// Text and binary messages received from clients.
    pub messages_received: u64,
    /// Text and binary messages written to clients.
    pub messages_sent: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Payload bytes written.
    pub bytes_sent: u64,
    /// Clients closed as too slow (4000).
    pub slow_consumer_closes: u64,
    /// Clients closed for answering no ping (4001).
    pub heartbeat_closes: u64,
    /// Clients closed for ignoring `rate_limited` (1008).
    pub rate_limit_closes: u64,
    /// The first rooms with members (across instances on the Redis
    /// engine), by name, with their member counts.
    pub rooms: Vec<RoomInfo>,
    /// More rooms follow those in `rooms`.
    pub more_rooms: bool,
}
