//! `cargo xtask bench`: every scenario of the load generator against
//! Duplex's ws-server and each peer server, in one run, with the server
//! pinned to one core and the load generator to the other; the results go
//! into `docs/benchmarks.md` as tables with ratios, and, raw, into
//! `target/bench/results.json`.
//!
//! Absolute figures move from run to run on a shared machine; the ratios
//! within one run are what the table is for. Every server is started fresh
//! for each scenario, so that one scenario's leftovers (memory, sockets in
//! TIME_WAIT) do not weigh on the next, and is stopped by its PID.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::system;

mod scale_out;
mod targets;

/// The core the server runs on, and the one the load generator runs on.
const SERVER_CORE: &str = "0";
const LOADGEN_CORE: &str = "1";

/// How long a server may take to accept connections after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The first port servers are started on; each run takes the next.
const FIRST_PORT: u16 = 5200;

/// Which protocol a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Duplex's: tokens, rooms, posts.
    Duplex,
    /// A plain relay: every text message to every client.
    Relay,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Duplex => "duplex",
            Self::Relay => "relay",
        }
    }
}

/// A server under test.
#[derive(Debug, Clone)]
struct Server {
    /// Its column in the tables.
    name: String,
    mode: Mode,
    /// The program and its arguments; `{port}` is replaced by the port.
    command: Vec<String>,
    /// Environment for it; `{port}` is replaced too.
    env: Vec<(String, String)>,
}

/// One scenario: the load generator's arguments, and the figures the table
/// shows.
#[derive(Debug, Clone)]
struct Scenario {
    name: &'static str,
    args: Vec<&'static str>,
    /// Relays have one room and no joins: chat mix is Duplex's alone.
    duplex_only: bool,
    /// Two ws-server instances on the Redis engine, sharing one Redis,
    /// with the load generator's connections split over them (Duplex's
    /// alone too).
    scale_out: bool,
    metrics: Vec<Metric>,
}

/// A figure read from the load generator's JSON, and which way is better.
#[derive(Debug, Clone)]
struct Metric {
    label: &'static str,
    read: Read,
    higher_is_better: bool,
}

/// How a figure is read from the load generator's JSON.
#[derive(Debug, Clone, Copy)]
enum Read {
    /// The number at a JSON pointer, times a factor (units).
    At(&'static str, f64),
    /// A field of the highest step of a rate ladder that kept up.
    BestStep(&'static str, f64),
    /// The highest rate kept up times the subscribers: deliveries/s.
    BestDeliveries,
}

impl Read {
    fn from(self, value: &Value) -> Option<f64> {
        match self {
            Self::At(pointer, factor) => value.pointer(pointer)?.as_f64().map(|v| v * factor),
            Self::BestStep(pointer, factor) => best_step(value)?
                .pointer(pointer)?
                .as_f64()
                .map(|v| v * factor),
            Self::BestDeliveries => {
                let rate = value.pointer("/results/highest_kept_up_rate")?.as_f64()?;
                let subscribers = value.pointer("/params/subscribers")?.as_f64()?;
                Some(rate * subscribers)
            }
        }
    }
}

/// The step of a ladder at its highest rate kept up.
fn best_step(value: &Value) -> Option<&Value> {
    let rate = value.pointer("/results/highest_kept_up_rate")?.as_f64()?;
    value
        .pointer("/results/steps")?
        .as_array()?
        .iter()
        .find(|step| step.pointer("/rate").and_then(Value::as_f64) == Some(rate))
}

fn metric(label: &'static str, read: Read, higher_is_better: bool) -> Metric {
    Metric {
        label,
        read,
        higher_is_better,
    }
}

/// Microseconds to milliseconds.
const MS: f64 = 0.001;

/// What one run of one scenario against one server produced.
#[derive(Debug, Clone)]
struct Outcome {
    server: String,
    scenario: &'static str,
    /// The load generator's JSON, or why there is none.
    result: Result<Value, String>,
}

/// The options of `cargo xtask bench`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only these servers (by name); all when empty.
    pub servers: Vec<String>,
    /// Only these scenarios (by name); all when empty.
    pub scenarios: Vec<String>,
    /// Skip `bench/peers/install.sh` (peers already built).
    pub no_install: bool,
    /// Write the tables to stdout instead of `docs/benchmarks.md`.
    pub dry_run: bool,
}

/// Runs the comparison and writes `docs/benchmarks.md`.
///
/// # Errors
/// When a build fails, `taskset` is missing, or the results cannot be
/// written. A server that fails one scenario only leaves a gap in the
/// table, with the reason below it.
pub fn run(options: &Options) -> Result<(), String> {
    let started = Instant::now();
    let root = system::root();
    if !Path::new("/usr/bin/taskset").exists() {
        return Err(
            "taskset (util-linux) is needed to pin server and load generator to cores".into(),
        );
    }
    if !options.no_install {
        system::run(Command::new("bash").arg(root.join("bench/peers/install.sh")))?;
    }
    system::cargo(&["build", "--release", "-p", "ws-server", "-p", "loadgen"])?;
    let secret = protocol::Secret::generate();
    let peers = peers_file(&root)?;
    let servers: Vec<Server> = servers(&root, &secret, &peers)
        .into_iter()
        .filter(|s| options.servers.is_empty() || options.servers.contains(&s.name))
        .collect();
    let scenarios: Vec<Scenario> = scenarios()
        .into_iter()
        .filter(|s| options.scenarios.is_empty() || options.scenarios.iter().any(|n| n == s.name))
        .collect();

    let mut port = FIRST_PORT;
    let mut outcomes = Vec::new();
    for scenario in &scenarios {
        for server in &servers {
            if scenario.duplex_only && server.mode != Mode::Duplex {
                continue;
            }
            let result = if scenario.scale_out {
                eprintln!(
                    "bench: {} against {} x {} on the Redis engine",
                    scenario.name,
                    scale_out::INSTANCES,
                    server.name
                );
                scale_out::run(&root, server, &scenario.args, &secret)
            } else {
                port += 1;
                eprintln!(
                    "bench: {} against {} on port {port}",
                    scenario.name, server.name
                );
                run_one(&root, server, scenario, port, &secret)
            };
            match &result {
                Err(e) if e.starts_with("skipped") => {
                    eprintln!("bench: {} against {}: {e}", scenario.name, server.name);
                }
                Err(e) => eprintln!(
                    "bench: {} against {} failed: {e}",
                    scenario.name, server.name
                ),
                Ok(_) => {}
            }
            outcomes.push(Outcome {
                server: server.name.clone(),
                scenario: scenario.name,
                result,
            });
        }
    }

    let raw: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            serde_json::json!({
                "server": o.server,
                "scenario": o.scenario,
                "result": o.result.as_ref().map_or_else(|e| serde_json::json!({"error": e}), Clone::clone),
            })
        })
        .collect();
    let raw_path = root.join("target/bench/results.json");
    if let Some(dir) = raw_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(
        &raw_path,
        serde_json::to_string_pretty(&raw).unwrap_or_default(),
    )
    .map_err(|e| format!("{}: {e}", raw_path.display()))?;

    let versions: Vec<(String, String)> = std::iter::once(("duplex".to_owned(), shell("rustc -V")))
        .chain(
            peers
                .peer
                .iter()
                .map(|p| (p.name.clone(), output_of(&p.version))),
        )
        .collect();
    let report = report(
        &servers,
        &scenarios,
        &outcomes,
        &versions,
        started.elapsed(),
    );
    if options.dry_run {
        println!("{report}");
    } else {
        let path = root.join("docs/benchmarks.md");
        std::fs::write(&path, report).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("bench: wrote {} and {}", path.display(), raw_path.display());
    }
    eprintln!("bench: done in {:.0?}", started.elapsed());
    Ok(())
}

/// `bench/peers/peers.toml`: how to start each peer and ask its version.
#[derive(Debug, serde::Deserialize)]
struct PeersFile {
    port_env: String,
    peer: Vec<PeerEntry>,
}

#[derive(Debug, serde::Deserialize)]
struct PeerEntry {
    name: String,
    start: Vec<String>,
    version: Vec<String>,
}

fn peers_file(root: &Path) -> Result<PeersFile, String> {
    let path = root.join("bench/peers/peers.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The servers compared: Duplex first, then the peers of
/// `bench/peers/peers.toml`, the tuned relay first among them.
fn servers(root: &Path, secret: &str, peers: &PeersFile) -> Vec<Server> {
    let mut duplex_env = vec![
        ("DUPLEX_WS_PORT".to_owned(), "{port}".to_owned()),
        // Instances run side by side; none needs a fixed admin port.
        ("DUPLEX_WS_ADMIN_PORT".to_owned(), "0".to_owned()),
        ("DUPLEX_WS_SECRET".to_owned(), secret.to_owned()),
        ("RUST_LOG".to_owned(), "warn".to_owned()),
    ];
    // A benchmark floods on purpose, from one address.
    for (key, value) in [
        ("DUPLEX_WS_MAX_CONNECTIONS", "100000"),
        ("DUPLEX_WS_MAX_CONNECTIONS_PER_IP", "100000"),
        ("DUPLEX_WS_MAX_FRAMES_PER_SECOND", "1000000"),
        ("DUPLEX_WS_FRAME_BURST", "1000000"),
    ] {
        duplex_env.push((key.to_owned(), value.to_owned()));
    }
    let mut servers = vec![Server {
        name: "duplex".into(),
        mode: Mode::Duplex,
        command: vec![
            root.join("target/release/ws-server")
                .to_string_lossy()
                .into_owned(),
        ],
        env: duplex_env,
    }];
    let mut relays: Vec<Server> = peers
        .peer
        .iter()
        .map(|peer| Server {
            name: peer.name.clone(),
            mode: Mode::Relay,
            command: peer.start.clone(),
            env: vec![(peers.port_env.clone(), "{port}".to_owned())],
        })
        .collect();
    relays.sort_by_key(|s| s.name != "tuned-relay");
    servers.extend(relays);
    servers
}

/// The scenarios, sized for this two-core machine and a run under ten
/// minutes.
fn scenarios() -> Vec<Scenario> {
    let ladder_metrics = || {
        vec![
            metric("deliveries/s kept up", Read::BestDeliveries, true),
            metric(
                "p99 ms there",
                Read::BestStep("/latency_us/p99_us", MS),
                false,
            ),
            metric(
                "server CPU s per million deliveries there",
                Read::BestStep("/server_cpu_s_per_million", 1.0),
                false,
            ),
        ]
    };
    vec![
        Scenario {
            name: "idle",
            args: vec!["idle", "--connections", "19000", "--hold", "2s"],
            duplex_only: false,
            scale_out: false,
            metrics: vec![
                metric(
                    "handshakes/s",
                    Read::At("/results/connect_rate_per_s", 1.0),
                    true,
                ),
                metric(
                    "server KiB per connection",
                    Read::At("/results/rss_kib_per_connection", 1.0),
                    false,
                ),
            ],
        },
        Scenario {
            name: "echo",
            args: vec!["echo", "--connections", "50", "--duration", "5s"],
            duplex_only: false,
            scale_out: false,
            metrics: vec![
                metric(
                    "round trips/s",
                    Read::At("/results/round_trips_per_s", 1.0),
                    true,
                ),
                metric("p99 ms", Read::At("/results/latency_us/p99_us", MS), false),
            ],
        },
        Scenario {
            name: "fanout 10 x 100",
            args: [
                &FANOUT_10_X_100[..],
                &["250,500,1000,2000,4000,6000,8000,10000,12000,14000,16000,20000,25000,30000"],
            ]
            .concat(),
            duplex_only: false,
            scale_out: false,
            metrics: ladder_metrics(),
        },
        Scenario {
            name: "fanout 1 x 1000",
            args: vec![
                "fanout",
                "--subscribers",
                "1000",
                "--publishers",
                "1",
                "--duration",
                "2s",
                "--ladder",
                "100,250,500,1000,1500,2000,3000,4000",
            ],
            duplex_only: false,
            scale_out: false,
            metrics: ladder_metrics(),
        },
        Scenario {
            name: "slow consumers",
            args: vec![
                "slow",
                "--subscribers",
                "100",
                "--stalled",
                "5",
                "--rate",
                "2000",
                "--payload",
                "1500",
                "--duration",
                "6s",
            ],
            duplex_only: false,
            scale_out: false,
            metrics: vec![
                metric(
                    "healthy readers' deliveries %",
                    Read::At("/results/healthy/delivered_fraction", 100.0),
                    true,
                ),
                metric(
                    "stalled readers closed after s (max)",
                    Read::At("/results/stalled/max_closed_after_s", 1.0),
                    false,
                ),
            ],
        },
        Scenario {
            name: "chat mix",
            args: CHAT_MIX.to_vec(),
            duplex_only: true,
            scale_out: false,
            metrics: chat_mix_metrics(),
        },
        Scenario {
            name: "scale-out fanout 10 x 100",
            args: [
                &FANOUT_10_X_100[..],
                &["1000,2000,4000,6000,8000,10000,20000,30000,40000,50000,60000"],
            ]
            .concat(),
            duplex_only: true,
            scale_out: true,
            metrics: [
                vec![metric(
                    "posts/s kept up",
                    Read::At("/results/highest_kept_up_rate", 1.0),
                    true,
                )],
                ladder_metrics(),
                redis_metrics(),
            ]
            .concat(),
        },
        Scenario {
            name: "scale-out chat mix",
            args: CHAT_MIX.to_vec(),
            duplex_only: true,
            scale_out: true,
            metrics: [chat_mix_metrics(), redis_metrics()].concat(),
        },
    ]
}

/// `fanout 10 x 100`'s arguments, up to its `--ladder`'s rates.
const FANOUT_10_X_100: [&str; 8] = [
    "fanout",
    "--subscribers",
    "100",
    "--publishers",
    "10",
    "--duration",
    "2s",
    "--ladder",
];

/// The chat mix, on one instance or two.
const CHAT_MIX: [&str; 11] = [
    "chat-mix",
    "--connections",
    "10000",
    "--rooms",
    "1000",
    "--rate",
    "2500",
    "--churn",
    "100",
    "--duration",
    "10s",
];

fn chat_mix_metrics() -> Vec<Metric> {
    vec![
        metric("p99 ms", Read::At("/results/latency_us/p99_us", MS), false),
        metric("lost", Read::At("/results/lost", 1.0), false),
        metric(
            "RSS drift %",
            Read::At("/results/rss_drift_pct", 1.0),
            false,
        ),
    ]
}

/// What Redis did over a scale-out run (`scale_out::run` adds `redis` to
/// the load generator's JSON).
fn redis_metrics() -> Vec<Metric> {
    vec![
        metric(
            "Redis commands per post (outside scripts)",
            Read::At("/redis/commands_per_post", 1.0),
            false,
        ),
        metric(
            "Redis CPU µs per post",
            Read::At("/redis/cpu_us_per_post", 1.0),
            false,
        ),
        metric(
            "Redis CPU share over the run",
            Read::At("/redis/cpu_util", 1.0),
            false,
        ),
    ]
}

/// Starts `server` pinned to its core, runs `scenario` against it from the
/// other core, stops it; returns the load generator's JSON.
fn run_one(
    root: &Path,
    server: &Server,
    scenario: &Scenario,
    port: u16,
    secret: &str,
) -> Result<Value, String> {
    let mut child = start(root, server, port)?;
    let pid = child.id();
    let result = (|| {
        wait_for_port(port, &mut child)?;
        let loadgen = root.join("target/release/duplex-bench");
        let mut command = Command::new("taskset");
        command
            .args(["-c", LOADGEN_CORE])
            .arg(loadgen)
            .args(["--url", &format!("ws://127.0.0.1:{port}/ws")])
            .args(["--mode", server.mode.as_str()])
            .args(["--server-pid", &pid.to_string()])
            .env("DUPLEX_BENCH_SECRET", secret)
            .args(&scenario.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let output = command
            .output()
            .map_err(|e| format!("cannot run the load generator: {e}"))?;
        if !output.status.success() {
            return Err(format!("the load generator failed ({})", output.status));
        }
        serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("the load generator's output is not JSON: {e}"))
    })();
    stop(&mut child);
    result
}

fn start(root: &Path, server: &Server, port: u16) -> Result<Child, String> {
    let fill = |s: &str| s.replace("{port}", &port.to_string());
    let log_dir = root.join("target/bench/logs");
    std::fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
    let log = std::fs::File::create(log_dir.join(format!("{}-{port}.log", server.name)))
        .map_err(|e| format!("cannot create the server's log: {e}"))?;
    let Some((program, args)) = server.command.split_first() else {
        return Err("no command".into());
    };
    // taskset execs the server: its PID is the server's.
    Command::new("taskset")
        .args(["-c", SERVER_CORE])
        .arg(fill(program))
        .args(args.iter().map(|a| fill(a)))
        .envs(server.env.iter().map(|(k, v)| (k.clone(), fill(v))))
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server.name))
}

fn wait_for_port(port: u16, child: &mut Child) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the server exited at start ({status}); see target/bench/logs"
            ));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "the server did not listen on {port} within {START_TIMEOUT:?}"
    ))
}

/// SIGTERM, then SIGKILL after [`STOP_TIMEOUT`]; always reaped.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// What the scale-out tables measure, and how they are pinned.
const SCALE_OUT_TEXT: &str = "**Scale-out.** The two scale-out scenarios start one \
`redis-server` (from the PATH, no persistence, on a free port) and two ws-server \
instances on the Redis engine, and split the load generator's connections over them: \
connection i goes to instance i mod 2, so a fanout's readers and writers both alternate, \
and every chat-mix room has members on both. Pinning: both instances *and* Redis run on \
core 0, the load generator alone on core 1, so the server side has the one core that a \
single server has in every other table and the generator's core is left alone; the \
tables say what going through Redis costs against one instance on the memory engine \
(two instances on one core cannot deliver more than one), not what a second machine \
would add. A post costs one Redis round trip: one `EVALSHA` of the publish script \
(offset, `XADD` to the history, `PUBLISH`, key expiries; about ten commands inside \
Redis); concurrent posts of an instance share one multiplexed connection, so they are \
pipelined. \"Redis commands per post (outside scripts)\" counts every command sent from outside a \
script over the run (joins, presence refreshes and history reads included) per post \
stored (`XADD`s), from `INFO commandstats`; Redis's CPU is read from `/proc`. Both \
cover the whole run, setup included. What bounds these figures: \
[architecture.md](architecture.md#scale-out).";

/// The markdown report: the machine, the versions, one table per
/// scenario with a column per server and the ratios of Duplex to the best
/// peer and to the tuned relay.
fn report(
    servers: &[Server],
    scenarios: &[Scenario],
    outcomes: &[Outcome],
    versions: &[(String, String)],
    took: Duration,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Generated by `cargo xtask bench` on {} in {took:.0?}. Server pinned to core 0, load \
         generator (`duplex-bench`) to core 1, loopback, 64-byte payloads; the ws-server runs \
         with its default settings (on one core, a current-thread runtime) and limits raised \
         for a flood from one address. Absolute figures move \
         from run to run on a shared machine: compare within one run, by the ratios.\n",
        shell("date -u '+%Y-%m-%d %H:%M UTC'"),
    );
    let _ = writeln!(out, "## Machine\n");
    let _ = writeln!(
        out,
        "- CPU: {} ({} cores)\n- Kernel: {}\n- Memory: {}\n",
        shell("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'"),
        shell("nproc"),
        shell("uname -r"),
        shell("grep MemTotal /proc/meminfo | awk '{printf \"%.0f GiB\", $2/1048576}'"),
    );
    let _ = writeln!(out, "## Versions\n");
    for (server, version) in versions {
        let _ = writeln!(out, "- {server}: {version}");
    }
    let _ = writeln!(out);

    for scenario in scenarios {
        let columns: Vec<&Server> = servers
            .iter()
            .filter(|s| !scenario.duplex_only || s.mode == Mode::Duplex)
            .collect();
        let _ = writeln!(out, "## {}\n", scenario.name);
        if scenario.scale_out {
            let _ = writeln!(
                out,
                "`duplex-bench --url A --url B --server-pid PA --server-pid PB {}`: two \
                 ws-server instances on the Redis engine sharing one `redis-server`, the \
                 connections alternating between them\n",
                scenario.args.join(" ")
            );
        } else {
            let _ = writeln!(out, "`duplex-bench {}`\n", scenario.args.join(" "));
        }
        let mut header = String::from("| figure |");
        let mut rule = String::from("|---|");
        for server in &columns {
            let _ = write!(header, " {} |", server.name);
            rule.push_str("---:|");
        }
        if !scenario.duplex_only {
            header.push_str(" duplex / best other | duplex / tuned relay |");
            rule.push_str("---:|---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for m in &scenario.metrics {
            let value_of = |server: &str| {
                outcomes
                    .iter()
                    .find(|o| o.server == server && o.scenario == scenario.name)
                    .and_then(|o| o.result.as_ref().ok())
                    .and_then(|v| m.read.from(v))
            };
            let mut row = format!("| {} |", m.label);
            for server in &columns {
                let _ = write!(
                    row,
                    " {} |",
                    value_of(&server.name).map_or("–".into(), format_figure)
                );
            }
            if !scenario.duplex_only {
                let duplex = value_of("duplex");
                let others = columns
                    .iter()
                    .filter(|s| s.name != "duplex" && s.name != "tuned-relay")
                    .filter_map(|s| value_of(&s.name));
                let best = if m.higher_is_better {
                    others.fold(None, |b: Option<f64>, v| Some(b.map_or(v, |b| b.max(v))))
                } else {
                    others.fold(None, |b: Option<f64>, v| Some(b.map_or(v, |b| b.min(v))))
                };
                let ratio = |other: Option<f64>| match (duplex, other) {
                    (Some(d), Some(o)) if o != 0.0 => format!("{:.2}x", d / o),
                    _ => "–".into(),
                };
                let _ = write!(
                    row,
                    " {} | {} |",
                    ratio(best),
                    ratio(value_of("tuned-relay"))
                );
            }
            let _ = writeln!(out, "{row}");
        }
        for o in outcomes.iter().filter(|o| o.scenario == scenario.name) {
            if let Err(e) = &o.result {
                let _ = writeln!(out, "\n{}: no result ({e}).", o.server);
            }
        }
        let _ = writeln!(out);
    }
    if scenarios.iter().any(|s| s.scale_out) {
        let _ = writeln!(out, "{SCALE_OUT_TEXT}\n");
    }
    let figure = |server: &str, scenario: &str, read: Read| {
        outcomes
            .iter()
            .find(|o| o.server == server && o.scenario == scenario)
            .and_then(|o| o.result.as_ref().ok())
            .and_then(|v| read.from(v))
    };
    let _ = writeln!(out, "{}", targets::table(&figure));
    let _ = writeln!(
        out,
        "Ratios divide Duplex's figure by the other's: above 1 means Duplex is ahead for \
         throughputs, behind for latencies and memory. \"Best other\" is the best of the peers \
         other than the tuned relay, which is the upper anchor: what tokio-tungstenite allows \
         when nothing else is done. Each ladder step runs once, for two seconds: on this \
         shared machine the same code has moved by up to 1.5x between runs, so compare \
         within one run. Raw results: `target/bench/results.json`. Where the \
         time goes, with a profile, and what bounds each figure: \
         [architecture.md](architecture.md#the-hot-path)."
    );
    out
}

fn format_figure(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// The first line `argv` prints, run from the workspace root, or "unknown".
fn output_of(argv: &[String]) -> String {
    let Some((program, args)) = argv.split_first() else {
        return "unknown".to_owned();
    };
    Command::new(program)
        .args(args)
        .current_dir(system::root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A shell command's first line of output, or "unknown".
fn shell(command: &str) -> String {
    Command::new("sh")
        .args(["-c", command])
        .current_dir(system::root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str, mode: Mode) -> Server {
        Server {
            name: name.into(),
            mode,
            command: vec![],
            env: vec![],
        }
    }

    fn outcome(server: &str, round_trips: f64, p99: f64) -> Outcome {
        Outcome {
            server: server.into(),
            scenario: "echo",
            result: Ok(serde_json::json!({
                "results": {"round_trips_per_s": round_trips, "latency_us": {"p99_us": p99 * 1000.0}}
            })),
        }
    }

    #[test]
    fn ratios_are_to_the_best_other_peer_and_to_the_tuned_relay() {
        let servers = [
            server("duplex", Mode::Duplex),
            server("tuned-relay", Mode::Relay),
            server("node-ws", Mode::Relay),
            server("go-gorilla", Mode::Relay),
        ];
        let echo: Vec<Scenario> = scenarios()
            .into_iter()
            .filter(|s| s.name == "echo")
            .collect();
        let outcomes = [
            outcome("duplex", 60_000.0, 2.0),
            outcome("tuned-relay", 120_000.0, 1.0),
            outcome("node-ws", 20_000.0, 8.0),
            outcome("go-gorilla", 30_000.0, 4.0),
        ];
        let report = report(&servers, &echo, &outcomes, &[], Duration::from_secs(1));
        assert!(
            report.contains("| round trips/s | 60000 | 120000 | 20000 | 30000 | 2.00x | 0.50x |"),
            "{report}"
        );
        // For a latency the best other is the lowest.
        assert!(
            report.contains("| p99 ms | 2.00 | 1.00 | 8.00 | 4.00 | 0.50x | 2.00x |"),
            "{report}"
        );
    }

    #[test]
    fn a_failed_run_leaves_a_gap_and_says_why() {
        let servers = [
            server("duplex", Mode::Duplex),
            server("node-ws", Mode::Relay),
        ];
        let echo: Vec<Scenario> = scenarios()
            .into_iter()
            .filter(|s| s.name == "echo")
            .collect();
        let outcomes = [
            outcome("duplex", 1.0, 1.0),
            Outcome {
                server: "node-ws".into(),
                scenario: "echo",
                result: Err("did not start".into()),
            },
        ];
        let report = report(&servers, &echo, &outcomes, &[], Duration::from_secs(1));
        assert!(
            report.contains("| round trips/s | 1.00 | – | – | – |"),
            "{report}"
        );
        assert!(
            report.contains("node-ws: no result (did not start)."),
            "{report}"
        );
    }

    #[test]
    fn scale_out_scenarios_are_duplex_only_and_report_redis_or_why_they_were_skipped() {
        let servers = [
            server("duplex", Mode::Duplex),
            server("node-ws", Mode::Relay),
        ];
        let scale_out: Vec<Scenario> = scenarios().into_iter().filter(|s| s.scale_out).collect();
        let names: Vec<&str> = scale_out.iter().map(|s| s.name).collect();
        assert_eq!(names, ["scale-out fanout 10 x 100", "scale-out chat mix"]);
        assert!(scale_out.iter().all(|s| s.duplex_only));
        let fanout = &scale_out[0];
        let ladder = fanout.args.last().copied().unwrap_or_default();
        assert!(ladder.ends_with(",60000"), "{ladder}");
        let outcomes = [
            Outcome {
                server: "duplex".into(),
                scenario: "scale-out fanout 10 x 100",
                result: Ok(serde_json::json!({
                    "params": {"subscribers": 100},
                    "results": {"highest_kept_up_rate": 4000, "steps": [{"rate": 4000}]},
                    "redis": {"commands_per_post": 1.05, "cpu_us_per_post": 40.0, "cpu_util": 0.3}
                })),
            },
            Outcome {
                server: "duplex".into(),
                scenario: "scale-out chat mix",
                result: Err("skipped: redis-server is not on the PATH".into()),
            },
        ];
        let report = report(&servers, &scale_out, &outcomes, &[], Duration::from_secs(1));
        assert!(report.contains("| figure | duplex |\n"), "{report}");
        assert!(!report.contains("node-ws |"), "{report}");
        assert!(report.contains("| posts/s kept up | 4000 |"), "{report}");
        assert!(
            report.contains("| deliveries/s kept up | 400000 |"),
            "{report}"
        );
        assert!(
            report.contains("| Redis commands per post (outside scripts) | 1.05 |"),
            "{report}"
        );
        assert!(report.contains("--url A --url B"), "{report}");
        assert!(
            report.contains("duplex: no result (skipped: redis-server is not on the PATH)."),
            "{report}"
        );
        assert!(report.contains("**Scale-out.**"), "{report}");
    }

    #[test]
    fn a_ladder_is_read_at_its_highest_rate_kept_up() {
        let value = serde_json::json!({
            "params": {"subscribers": 100},
            "results": {
                "highest_kept_up_rate": 5000,
                "steps": [
                    {"rate": 2000, "latency_us": {"p99_us": 1000}},
                    {"rate": 5000, "latency_us": {"p99_us": 3000}},
                    {"rate": 10000, "latency_us": {"p99_us": 90000}}
                ]
            }
        });
        assert_eq!(Read::BestDeliveries.from(&value), Some(500_000.0));
        assert_eq!(
            Read::BestStep("/latency_us/p99_us", MS).from(&value),
            Some(3.0)
        );
    }
}
