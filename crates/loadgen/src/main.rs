//! The `duplex-bench` binary: parse, raise the open-file limit, pick a
//! runtime, run, print the JSON report on stdout and a table on stderr.

use std::process::ExitCode;

use clap::Parser;
use loadgen::cli::Cli;

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    // Every connection is a file: take all the system allows.
    if let Err(e) = loadgen::procfs::raise_open_file_limit() {
        eprintln!("cannot raise the open-file limit: {e}");
    }
    let threads = match cli.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    cli.threads = threads;
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(loadgen::run(&cli)) {
        Ok(report) => {
            eprint!("{}", report.table());
            println!("{}", report.to_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("duplex-bench: {e}");
            let error = serde_json::json!({
                "scenario": cli.command.name(),
                "error": e.to_string(),
            });
            println!("{error}");
            ExitCode::FAILURE
        }
    }
}
