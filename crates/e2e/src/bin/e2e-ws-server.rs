//! The ws-server as a process of its own, for end-to-end tests that must
//! freeze it (SIGSTOP) while the test's browser and app-server go on: an
//! in-process server would stop with the test. It runs the library's
//! `serve_chat` on settings from the environment (`DUPLEX_WS_*`), listens
//! on a free port and prints `listening on PORT` for the test to read.

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let settings = match ws_server::Settings::load(None) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("invalid settings: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("cannot listen: {e}");
                return ExitCode::FAILURE;
            }
        };
        match listener.local_addr() {
            Ok(addr) => println!("listening on {}", addr.port()),
            Err(e) => {
                eprintln!("no local address: {e}");
                return ExitCode::FAILURE;
            }
        }
        // Runs until the test kills the process.
        ws_server::serve_chat(listener, settings, CancellationToken::new()).await;
        ExitCode::SUCCESS
    })
}
