//! Project automation as a plain Rust binary, so that a machine with only
//! cargo can run everything (`cargo xtask dev`); the justfile calls the same
//! commands.

mod bench;
mod dev;
mod system;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Duplex's developer commands.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Args {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build and run the servers on their defaults; Ctrl-C stops them all.
    Dev {
        /// Run this many ws-server instances (2 to 8) sharing a Redis that
        /// this command starts, with pages spread over them; 1 is the plain
        /// pair of servers.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=i64::from(dev::MAX_SCALE)))]
        scale: u8,
    },
    /// Run the whole test suite (installs Chromium, Node.js, npm and Redis
    /// first when it can, and the browser tests' axe-core with `npm ci`).
    Test {
        /// Extra arguments for `cargo test`, e.g. a test name filter.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Check formatting and clippy lints.
    Lint,
    /// What CI runs: lint, then test.
    Ci,
    /// Benchmark the ws-server against peer servers, side by side, and
    /// write docs/benchmarks.md.
    Bench {
        /// Only these servers (duplex, tuned-relay, naive-relay,
        /// go-gorilla, node-ws, python-websockets); all by default.
        #[arg(long, value_delimiter = ',')]
        servers: Vec<String>,
        /// Only these scenarios (idle, echo, "fanout 10 x 100",
        /// "fanout 1 x 1000", "slow consumers", "chat mix", "scale-out
        /// fanout 10 x 100", "scale-out chat mix"); all by default. The
        /// scale-out ones run two instances on a Redis they start (needs
        /// redis-server on the PATH; skipped without it).
        #[arg(long, value_delimiter = ',')]
        scenarios: Vec<String>,
        /// Do not run bench/peers/install.sh first.
        #[arg(long)]
        no_install: bool,
        /// Print the report instead of writing docs/benchmarks.md.
        #[arg(long)]
        dry_run: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Task::Dev { scale } => dev::run(scale),
        Task::Test { args } => test(&args),
        Task::Lint => lint(),
        Task::Ci => lint().and_then(|()| test(&[])),
        Task::Bench {
            servers,
            scenarios,
            no_install,
            dry_run,
        } => bench::run(&bench::Options {
            servers,
            scenarios,
            no_install,
            dry_run,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn test(extra: &[String]) -> Result<(), String> {
    system::ensure_browser()?;
    system::ensure_node()?;
    // The browser tests' accessibility checks inject axe-core, which npm
    // installs from crates/e2e/package-lock.json.
    system::ensure_npm()?;
    system::npm_ci_if_stale(&system::root().join("crates/e2e"))?;
    // The ws-server's Redis engine tests start their own redis-server.
    system::ensure_redis()?;
    let mut args = vec!["test", "--workspace"];
    args.extend(extra.iter().map(String::as_str));
    system::cargo(&args)?;
    // The browser client's own unit tests, under Node's test runner.
    if extra.is_empty() {
        system::run(
            std::process::Command::new("node")
                .args(["--test", "tests/js/"])
                .current_dir(system::root()),
        )?;
    }
    Ok(())
}

fn lint() -> Result<(), String> {
    system::cargo(&["fmt", "--all", "--check"])?;
    system::cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])
}
