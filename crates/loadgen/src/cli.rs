//! The command line: global flags, one subcommand per scenario, and the
//! bounds that keep every run finite.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::{Serialize, Serializer};

use crate::client::Mode;
use crate::payload::{MAX_DUPLEX_PAYLOAD_BYTES, MIN_PAYLOAD_BYTES};

/// The most connections one run opens: this machine allows 20,000 open
/// files per process, and the generator needs a few for itself.
pub const MAX_CONNECTIONS: u32 = 19_000;

/// The longest timed phase of a run.
pub const MAX_DURATION: Duration = Duration::from_secs(600);

/// The highest rate offered, messages (or connects) per second.
pub const MAX_RATE: f64 = 1_000_000.0;

/// The most steps of a ladder.
pub const MAX_LADDER_STEPS: usize = 20;

/// The largest relay payload, bytes.
pub const MAX_RELAY_PAYLOAD_BYTES: usize = 64 * 1024;

/// The most servers (`--url`s, and `--server-pid`s) one run spreads over.
pub const MAX_SERVERS: usize = 16;

/// duplex-bench: bounded load on a Duplex ws-server or a relay, on loopback.
///
/// Prints one JSON object on stdout and a table on stderr.
#[derive(Debug, Parser)]
#[command(name = "duplex-bench", version, about)]
pub struct Cli {
    /// The server's WebSocket URL (loopback only). Given several times,
    /// connection number i goes to the (i mod n)-th: clients split over
    /// several instances.
    #[arg(long, global = true, default_value = "ws://127.0.0.1:5000/ws")]
    pub url: Vec<String>,
    /// What the server speaks: duplex (tokens, rooms, posts) or relay
    /// (every text frame to every client).
    #[arg(long, global = true, value_enum, default_value_t = Mode::Duplex)]
    pub mode: Mode,
    /// The ws-server's token secret (duplex mode).
    #[arg(
        long,
        global = true,
        env = "DUPLEX_BENCH_SECRET",
        hide_env_values = true
    )]
    pub secret: Option<String>,
    /// The server's process id: its RSS and CPU time are read from /proc.
    /// Given several times (one per instance), the figures are sums.
    #[arg(long, global = true)]
    pub server_pid: Vec<u32>,
    /// Accepted for clarity: the JSON report is always printed on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Runtime worker threads; 0 takes one per core this process may use,
    /// 1 runs everything on one thread.
    #[arg(long, global = true, default_value_t = 0)]
    pub threads: usize,
    /// Bytes of every message's text.
    #[arg(long, global = true, default_value_t = 64)]
    pub payload: usize,
    /// The scenario.
    #[command(subcommand)]
    pub command: Command,
}

/// The scenarios.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Open N connections, hold them, close them: connect rate and memory
    /// per connection.
    Idle(IdleArgs),
    /// Every connection keeps one message in flight: round trips and their
    /// latency.
    Echo(EchoArgs),
    /// Readers and open-loop writers in one room: deliveries, loss,
    /// latency; optionally at a ladder of rates.
    Fanout(FanoutArgs),
    /// A fanout where some readers stop reading: what the others get, and
    /// when the server lets the stalled ones go.
    Slow(SlowArgs),
    /// Members in many rooms posting while others come and go.
    ChatMix(ChatMixArgs),
}

impl Command {
    /// The scenario's name in the report.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Idle(_) => "idle",
            Self::Echo(_) => "echo",
            Self::Fanout(_) => "fanout",
            Self::Slow(_) => "slow",
            Self::ChatMix(_) => "chat-mix",
        }
    }
}

/// `idle`'s settings.
#[derive(Debug, Clone, Args, Serialize)]
pub struct IdleArgs {
    /// Connections to open.
    #[arg(long)]
    pub connections: u32,
    /// How long to hold them open.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    #[serde(rename = "hold_s", serialize_with = "seconds")]
    pub hold: Duration,
    /// Handshakes in flight at once. Above the server's listen backlog
    /// (128 for the ws-server) the kernel drops SYNs and those clients
    /// retry a second later: raise it to see that.
    #[arg(long, default_value_t = 128)]
    pub in_flight: u32,
}

/// `echo`'s settings.
#[derive(Debug, Clone, Args, Serialize)]
pub struct EchoArgs {
    /// Connections, each with one message in flight.
    #[arg(long, default_value_t = 50)]
    pub connections: u32,
    /// How long to measure.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(rename = "duration_s", serialize_with = "seconds")]
    pub duration: Duration,
}

/// `fanout`'s settings.
#[derive(Debug, Clone, Args, Serialize)]
pub struct FanoutArgs {
    /// Readers in the room.
    #[arg(long)]
    pub subscribers: u32,
    /// Writers in the room, sharing the rate.
    #[arg(long, default_value_t = 1)]
    pub publishers: u32,
    /// Messages per second from all writers together.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// How long the writers write (per step of a ladder).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(rename = "duration_s", serialize_with = "seconds")]
    pub duration: Duration,
    /// Rates to run in turn (messages per second), instead of --rate.
    #[arg(long, value_delimiter = ',')]
    pub ladder: Option<Vec<f64>>,
    /// A ladder ends after this many steps in a row did not keep up:
    /// higher rates would only fail slower. (A step that cannot connect at
    /// all ends it at once.)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub give_up_after: u32,
}

/// `slow`'s settings.
#[derive(Debug, Clone, Args, Serialize)]
pub struct SlowArgs {
    /// Readers in the room, stalled ones included.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: u32,
    /// Readers that stop reading after the first second.
    #[arg(long, default_value_t = 10)]
    pub stalled: u32,
    /// Writers in the room, sharing the rate.
    #[arg(long, default_value_t = 1)]
    pub publishers: u32,
    /// Messages per second from all writers together.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// How long the writers write.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(rename = "duration_s", serialize_with = "seconds")]
    pub duration: Duration,
}

/// `chat-mix`'s settings.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ChatMixArgs {
    /// Members at any time.
    #[arg(long)]
    pub connections: u32,
    /// Rooms they are spread over.
    #[arg(long, default_value_t = 10)]
    pub rooms: u32,
    /// Posts per second from all members together.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Members that leave, and new ones that arrive, per second.
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// How long to run.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    #[serde(rename = "duration_s", serialize_with = "seconds")]
    pub duration: Duration,
}

/// Why the settings cannot be run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BoundsError(String);

impl Cli {
    /// Refuses settings outside the bounds of this machine and of a
    /// finite run.
    ///
    /// # Errors
    /// Naming the first setting out of bounds.
    pub fn check_bounds(&self) -> Result<(), BoundsError> {
        let max_payload = match self.mode {
            Mode::Duplex => MAX_DUPLEX_PAYLOAD_BYTES,
            Mode::Relay => MAX_RELAY_PAYLOAD_BYTES,
        };
        if self.url.is_empty() || self.url.len() > MAX_SERVERS {
            return fail(format!("--url takes 1 to {MAX_SERVERS} URLs"));
        }
        if self.server_pid.len() > MAX_SERVERS {
            return fail(format!("--server-pid takes at most {MAX_SERVERS} ids"));
        }
        if !(MIN_PAYLOAD_BYTES..=max_payload).contains(&self.payload) {
            return fail(format!(
                "--payload must be {MIN_PAYLOAD_BYTES} to {max_payload} bytes"
            ));
        }
        match &self.command {
            Command::Idle(a) => {
                connections("--connections", a.connections)?;
                duration("--hold", a.hold)?;
                if a.in_flight == 0 {
                    return fail("--in-flight must be at least 1".to_owned());
                }
            }
            Command::Echo(a) => {
                connections("--connections", a.connections)?;
                duration("--duration", a.duration)?;
            }
            Command::Fanout(a) => {
                connections("--subscribers", a.subscribers)?;
                connections("--publishers", a.publishers)?;
                connections(
                    "--subscribers plus --publishers",
                    a.subscribers + a.publishers,
                )?;
                duration("--duration", a.duration)?;
                rate("--rate", a.rate)?;
                if let Some(ladder) = &a.ladder {
                    if ladder.is_empty() || ladder.len() > MAX_LADDER_STEPS {
                        return fail(format!("--ladder takes 1 to {MAX_LADDER_STEPS} rates"));
                    }
                    for r in ladder {
                        rate("--ladder", *r)?;
                    }
                }
            }
            Command::Slow(a) => {
                connections("--subscribers", a.subscribers)?;
                connections("--publishers", a.publishers)?;
                connections(
                    "--subscribers plus --publishers",
                    a.subscribers + a.publishers,
                )?;
                if a.stalled >= a.subscribers {
                    return fail("--stalled must leave at least one healthy subscriber".to_owned());
                }
                duration("--duration", a.duration)?;
                rate("--rate", a.rate)?;
            }
            Command::ChatMix(a) => {
                connections("--connections", a.connections)?;
                duration("--duration", a.duration)?;
                rate("--rate", a.rate)?;
                if a.rooms == 0 || a.rooms > a.connections {
                    return fail("--rooms must be 1 to --connections".to_owned());
                }
                if !(a.churn.is_finite() && (0.0..=MAX_RATE).contains(&a.churn)) {
                    return fail(format!("--churn must be 0 to {MAX_RATE} per second"));
                }
            }
        }
        Ok(())
    }
}

fn fail(message: String) -> Result<(), BoundsError> {
    Err(BoundsError(message))
}

fn connections(what: &str, n: u32) -> Result<(), BoundsError> {
    if (1..=MAX_CONNECTIONS).contains(&n) {
        Ok(())
    } else {
        fail(format!("{what} must be 1 to {MAX_CONNECTIONS}"))
    }
}

fn duration(what: &str, d: Duration) -> Result<(), BoundsError> {
    if d <= MAX_DURATION {
        Ok(())
    } else {
        fail(format!(
            "{what} must be at most {}s",
            MAX_DURATION.as_secs()
        ))
    }
}

fn rate(what: &str, r: f64) -> Result<(), BoundsError> {
    if r.is_finite() && r > 0.0 && r <= MAX_RATE {
        Ok(())
    } else {
        fail(format!(
            "{what} must be above 0 and at most {MAX_RATE} per second"
        ))
    }
}

/// Reads `250ms`, `3s`, `1.5s`, `2m`, or a bare number of seconds.
///
/// # Errors
/// Anything else.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 500ms, 3s, 1.5s, 2m)"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{text:?}: {e}"))
}

/// Serializes a duration as seconds.
fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_every_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn the_documented_command_lines_parse_and_fit_the_bounds() {
        for line in [
            "duplex-bench idle --connections 5000",
            "duplex-bench --mode relay echo --connections 50 --duration 5s",
            "duplex-bench fanout --subscribers 100 --publishers 10 --duration 3s --ladder 1000,2000",
            "duplex-bench slow --subscribers 1000 --stalled 10 --rate 200 --duration 5s",
            "duplex-bench chat-mix --connections 500 --rooms 10 --rate 100 --churn 5 --duration 10s",
            "duplex-bench --url ws://127.0.0.1:5000/ws --url ws://127.0.0.1:5002/ws --server-pid 1 --server-pid 2 fanout --subscribers 100",
        ] {
            let cli = Cli::try_parse_from(line.split(' ')).unwrap();
            cli.check_bounds().unwrap();
        }
    }

    #[test]
    fn urls_and_server_pids_repeat_and_default_to_one_url() {
        let cli = Cli::try_parse_from(["duplex-bench", "idle", "--connections", "1"]).unwrap();
        assert_eq!(cli.url, ["ws://127.0.0.1:5000/ws"]);
        assert!(cli.server_pid.is_empty());
        // All before the subcommand, or all after it (clap keeps the values
        // of one place for a global flag).
        for line in [
            "duplex-bench --url ws://127.0.0.1:1/ws --server-pid 7 --url ws://127.0.0.1:2/ws --server-pid 8 idle --connections 1",
            "duplex-bench idle --connections 1 --url ws://127.0.0.1:1/ws --url ws://127.0.0.1:2/ws --server-pid 7 --server-pid 8",
        ] {
            let cli = Cli::try_parse_from(line.split(' ')).unwrap();
            assert_eq!(
                cli.url,
                ["ws://127.0.0.1:1/ws", "ws://127.0.0.1:2/ws"],
                "{line}"
            );
            assert_eq!(cli.server_pid, [7, 8], "{line}");
        }
    }

    #[test]
    fn runs_beyond_the_bounds_are_refused() {
        for line in [
            "duplex-bench idle --connections 19001",
            "duplex-bench echo --duration 11m",
            "duplex-bench fanout --subscribers 10 --rate 0",
            "duplex-bench --payload 3000 fanout --subscribers 10",
            "duplex-bench slow --subscribers 10 --stalled 10",
        ] {
            let cli = Cli::try_parse_from(line.split(' ')).unwrap();
            assert!(cli.check_bounds().is_err(), "{line}");
        }
    }
}
