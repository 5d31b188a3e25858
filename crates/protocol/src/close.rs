//! WebSocket close codes the server uses, and what each one means to a client.

/// A close code sent in the server's close frame.
///
/// The 1000-range codes are the standard ones of RFC 6455; 4000-range codes
/// are Duplex's own (the range RFC 6455 leaves to applications).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// The client or the server ended the session normally.
    pub const NORMAL: Self = Self(1000);
    /// The server is shutting down; reconnecting later is expected to work.
    pub const GOING_AWAY: Self = Self(1001);
    /// A frame broke the WebSocket protocol itself (not the JSON protocol).
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// A text frame was not valid UTF-8.
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// The client kept sending after being refused with `rate_limited`
    /// (`rate_limit_strikes` refusals in a row).
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// The server could not go on with the connection: writing to it
    /// failed. The client did nothing wrong.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// A frame was larger than the server's `max_frame_bytes`.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// The client did not read its frames fast enough: its outbox filled up
    /// (`outbox_capacity` frames or `outbox_max_bytes` bytes), or one write
    /// to its socket took longer than `write_timeout`.
    pub const SLOW_CONSUMER: Self = Self(4000);
    /// The client answered no ping within the server's `client_timeout`.
    pub const HEARTBEAT_TIMEOUT: Self = Self(4001);
    /// A room this connection was in started over (its Redis lost it) and
    /// another user claimed the connection's name there first. The client
    /// reconnects; its join of that room then gets `name_taken`.
    pub const NAME_LOST: Self = Self(4003);
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}
