//! The scale-out scenarios: one `redis-server` and two ws-server instances
//! on the Redis engine, the load generator's connections split over them.
//!
//! Redis is started from the PATH on a free loopback port with no
//! persistence, and stopped by its PID like the servers. Around the run
//! the bench reads what Redis did, so the report can say what a post costs
//! there: its CPU time from `/proc/PID/stat` and its per-command call
//! counts from `INFO commandstats`. Both go into the load generator's JSON
//! under `redis`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use loadgen::procfs::ServerProcess;
use serde_json::{Value, json};

use super::{LOADGEN_CORE, SERVER_CORE, Server, stop, wait_for_port};

/// Instances started per scale-out run.
pub const INSTANCES: usize = 2;

/// The core Redis runs on: the servers' core. The whole server side (both
/// instances and Redis) then has the one core a single server has in the
/// other scenarios, and the load generator keeps its own core to itself:
/// the figures say what going through Redis costs, compared with one
/// instance on the memory engine, and which side ran out first stays
/// readable. Two instances on one core cannot deliver more than one.
pub const REDIS_CORE: &str = SERVER_CORE;

/// How long one `INFO` may take.
const INFO_TIMEOUT: Duration = Duration::from_secs(2);

/// Commands that the Redis engine's scripts (`engine/redis/store.rs`) call
/// inside Redis: counted by `commandstats`, but no round trip of their
/// own. (`HLEN` is also sent by a room listing, which no scenario does.)
const IN_SCRIPT: [&str; 17] = [
    "del",
    "hdel",
    "hget",
    "hgetall",
    "hincrby",
    "hlen",
    "hset",
    "pexpire",
    "publish",
    "time",
    "xadd",
    "zadd",
    "zrange",
    "zrangebyscore",
    "zrem",
    "zremrangebyscore",
    "zscore",
];

/// A free loopback port: bound by the kernel's choice, then released.
///
/// # Errors
/// When no port can be bound at all.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Whether `redis-server` is on the PATH.
fn redis_on_path() -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| d.join("redis-server").is_file())
    })
}

/// `redis-server`'s arguments: loopback, `port`, no persistence.
fn redis_args(port: u16) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .map(str::to_owned)
    .into()
}

/// The environment of instance `server` on the Redis engine at `port`.
fn instance(server: &Server, redis_port: u16) -> Server {
    let mut instance = server.clone();
    instance
        .env
        .push(("DUPLEX_WS_ENGINE".to_owned(), "redis".to_owned()));
    instance.env.push((
        "DUPLEX_WS_REDIS_URL".to_owned(),
        format!("redis://127.0.0.1:{redis_port}"),
    ));
    instance
}

/// The load generator's command line for `scenario_args` against the
/// instances at `ports` with `pids`.
fn loadgen_command(
    root: &Path,
    ports: &[u16],
    pids: &[u32],
    scenario_args: &[&str],
    secret: &str,
) -> Command {
    let mut command = Command::new("taskset");
    command
        .args(["-c", LOADGEN_CORE])
        .arg(root.join("target/release/duplex-bench"));
    for port in ports {
        command.args(["--url", &format!("ws://127.0.0.1:{port}/ws")]);
    }
    for pid in pids {
        command.args(["--server-pid", &pid.to_string()]);
    }
    command
        .args(["--mode", "duplex"])
        .env("DUPLEX_BENCH_SECRET", secret)
        .args(scenario_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command
}

/// Runs `scenario_args` against two instances of `server` sharing one
/// Redis; returns the load generator's JSON with a `redis` object added.
/// Everything started is stopped by its PID, however the run ends.
///
/// # Errors
/// `skipped: ...` when `redis-server` is not on the PATH; otherwise why a
/// process could not start or the load generator failed.
pub fn run(
    root: &Path,
    server: &Server,
    scenario_args: &[&str],
    secret: &str,
) -> Result<Value, String> {
    if !redis_on_path() {
        return Err(
            "skipped: redis-server is not on the PATH; apt-get install -y redis-server".into(),
        );
    }
    let redis_port = free_port()?;
    let log_dir = root.join("target/bench/logs");
    std::fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
    let redis_log = std::fs::File::create(log_dir.join(format!("redis-{redis_port}.log")))
        .map_err(|e| format!("cannot create Redis's log: {e}"))?;
    let args = redis_args(redis_port);
    eprintln!(
        "bench: taskset -c {REDIS_CORE} redis-server {}",
        shell_words(&args)
    );
    // taskset execs Redis: its PID is Redis's.
    let mut redis = Command::new("taskset")
        .args(["-c", REDIS_CORE, "redis-server"])
        .args(&args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(redis_log)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start redis-server: {e}"))?;
    let mut instances: Vec<Child> = Vec::new();
    let result = (|| {
        wait_for_port(redis_port, &mut redis)?;
        let mut ports = Vec::new();
        for _ in 0..INSTANCES {
            let port = free_port()?;
            let instance = instance(server, redis_port);
            eprintln!(
                "bench: DUPLEX_WS_ENGINE=redis DUPLEX_WS_REDIS_URL=redis://127.0.0.1:{redis_port} \
                 DUPLEX_WS_PORT={port} ... taskset -c {SERVER_CORE} {}",
                instance.command.join(" ")
            );
            let mut child = super::start(root, &instance, port)?;
            let ready = wait_for_port(port, &mut child);
            instances.push(child);
            ready?;
            ports.push(port);
        }
        let pids: Vec<u32> = instances.iter().map(Child::id).collect();
        let mut command = loadgen_command(root, &ports, &pids, scenario_args, secret);
        eprintln!("bench: {command:?}");
        let before = RedisSample::take(redis.id(), redis_port)?;
        let began = Instant::now();
        let output = command
            .output()
            .map_err(|e| format!("cannot run the load generator: {e}"))?;
        let wall_s = began.elapsed().as_secs_f64();
        let after = RedisSample::take(redis.id(), redis_port)?;
        if !output.status.success() {
            return Err(format!("the load generator failed ({})", output.status));
        }
        let mut value: Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("the load generator's output is not JSON: {e}"))?;
        let report = redis_report(redis.id(), &before, &after, wall_s);
        eprintln!("bench: redis {report}");
        if let Some(fields) = value.as_object_mut() {
            fields.insert("redis".to_owned(), report);
        }
        Ok(value)
    })();
    for child in &mut instances {
        stop(child);
    }
    stop(&mut redis);
    result
}

/// `args` as a shell would need them typed (empty ones quoted).
fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| if a.is_empty() { "''" } else { a.as_str() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What Redis had done at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
struct RedisSample {
    cpu_s: f64,
    /// Calls per command, lower-case (`evalsha`, `xadd`, ...).
    calls: BTreeMap<String, u64>,
}

impl RedisSample {
    fn take(pid: u32, port: u16) -> Result<Self, String> {
        Ok(Self {
            // The load generator's reading of /proc, as for every server.
            cpu_s: ServerProcess::new(pid)
                .and_then(|process| process.sample())
                .map_err(|e| format!("/proc/{pid}: {e}"))?
                .cpu_s,
            calls: parse_commandstats(&info_commandstats(port)?),
        })
    }
}

/// What Redis did over the run: CPU, calls per command, and per post.
/// Posts are counted by `XADD`, which the publish script runs once per
/// stored post (the history is on by default); commands are the calls
/// that did not come from inside a script, our two `INFO`s left out.
fn redis_report(pid: u32, before: &RedisSample, after: &RedisSample, wall_s: f64) -> Value {
    let calls: BTreeMap<String, u64> = after
        .calls
        .iter()
        .map(|(name, n)| {
            let was = before.calls.get(name).copied().unwrap_or(0);
            (name.clone(), n.saturating_sub(was))
        })
        .filter(|(name, n)| *n > 0 && name != "info")
        .collect();
    let posts = calls.get("xadd").copied().unwrap_or(0);
    // Commands sent from outside a script: each is a request, though
    // pipelined ones share a round trip.
    let commands: u64 = calls
        .iter()
        .filter(|(name, _)| !IN_SCRIPT.contains(&name.as_str()))
        .map(|(_, n)| n)
        .sum();
    let scripts =
        calls.get("evalsha").copied().unwrap_or(0) + calls.get("eval").copied().unwrap_or(0);
    let cpu_s = after.cpu_s - before.cpu_s;
    let per_post = |n: f64| (posts > 0).then(|| round3(n / posts as f64));
    json!({
        "pid": pid,
        "cpu_s": round3(cpu_s),
        "cpu_util": round3(if wall_s > 0.0 { cpu_s / wall_s } else { 0.0 }),
        "posts": posts,
        "commands": commands,
        "commands_per_post": per_post(commands as f64),
        "scripts_per_post": per_post(scripts as f64),
        "cpu_us_per_post": per_post(cpu_s * 1e6),
        "calls": calls,
    })
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// `INFO commandstats` from the Redis on `port`, over a plain socket (an
/// inline command; the reply is one bulk string).
fn info_commandstats(port: u16) -> Result<String, String> {
    let fail = |e: std::io::Error| format!("INFO commandstats on port {port}: {e}");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, INFO_TIMEOUT).map_err(fail)?;
    stream.set_read_timeout(Some(INFO_TIMEOUT)).map_err(fail)?;
    stream.write_all(b"INFO commandstats\r\n").map_err(fail)?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header).map_err(fail)?;
    let length: usize = header
        .trim_end()
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("INFO commandstats on port {port}: answered {header:?}"))?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(fail)?;
    String::from_utf8(body).map_err(|e| format!("INFO commandstats on port {port}: {e}"))
}

/// Calls per command from `INFO commandstats`: lines like
/// `cmdstat_evalsha:calls=12,usec=340,...`; subcommands (`cmdstat_client|setinfo`)
/// count under their own name.
fn parse_commandstats(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = fields
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_lowercase(), calls))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Commandstats\r\n\
        cmdstat_evalsha:calls=1010,usec=20200,usec_per_call=20.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_xadd:calls=1000,usec=3000,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_pexpire:calls=6000,usec=3000,usec_per_call=0.50,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_xrange:calls=5,usec=50,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_client|setinfo:calls=4,usec=4,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_info:calls=3,usec=30,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n";

    #[test]
    fn commandstats_are_read_per_command() {
        let calls = parse_commandstats(INFO);
        assert_eq!(calls.get("evalsha"), Some(&1010));
        assert_eq!(calls.get("client|setinfo"), Some(&4));
        assert_eq!(calls.len(), 6);
        assert!(parse_commandstats("# Commandstats\r\n").is_empty());
    }

    #[test]
    fn the_report_counts_posts_by_xadd_and_commands_outside_scripts() {
        let before = RedisSample {
            cpu_s: 1.0,
            calls: parse_commandstats("cmdstat_info:calls=1,usec=1\r\n"),
        };
        let after = RedisSample {
            cpu_s: 1.5,
            calls: parse_commandstats(INFO),
        };
        let report = redis_report(7, &before, &after, 2.0);
        assert_eq!(report["posts"], 1000);
        // evalsha, xrange and client|setinfo travel; xadd and pexpire run
        // inside the scripts; INFO is ours.
        assert_eq!(report["commands"], 1010 + 5 + 4);
        assert_eq!(report["commands_per_post"], 1.019);
        assert_eq!(report["scripts_per_post"], 1.01);
        assert_eq!(report["cpu_us_per_post"], 500.0);
        assert_eq!(report["cpu_util"], 0.25);
        assert!(report["calls"].get("info").is_none(), "{report}");
    }

    #[test]
    fn no_post_leaves_the_per_post_figures_empty() {
        let report = redis_report(7, &RedisSample::default(), &RedisSample::default(), 1.0);
        assert_eq!(report["posts"], 0);
        assert!(report["commands_per_post"].is_null());
    }

    #[test]
    fn instances_run_on_the_redis_engine_at_the_port_given() {
        let server = Server {
            name: "duplex".into(),
            mode: super::super::Mode::Duplex,
            command: vec!["ws-server".into()],
            env: vec![("DUPLEX_WS_PORT".into(), "{port}".into())],
        };
        let instance = instance(&server, 6390);
        assert!(
            instance
                .env
                .contains(&("DUPLEX_WS_ENGINE".into(), "redis".into()))
        );
        assert!(instance.env.contains(&(
            "DUPLEX_WS_REDIS_URL".into(),
            "redis://127.0.0.1:6390".into()
        )));
        assert!(redis_args(6390).windows(2).any(|w| w == ["--save", ""]));
        assert_eq!(shell_words(&redis_args(1))[..9], *"--port 1 ");
    }

    #[test]
    fn the_load_generator_gets_every_url_and_pid() {
        let command = loadgen_command(Path::new("/r"), &[5001, 5002], &[11, 12], &["idle"], "s");
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let line = args.join(" ");
        assert!(
            line.contains("--url ws://127.0.0.1:5001/ws --url ws://127.0.0.1:5002/ws"),
            "{line}"
        );
        assert!(line.contains("--server-pid 11 --server-pid 12"), "{line}");
        assert!(line.ends_with("idle"), "{line}");
    }
}
