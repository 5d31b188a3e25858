//! `cargo xtask dev`: both servers in one terminal, their output prefixed,
//! both stopped together.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::system;

/// The servers `dev` runs: binary name and output prefix.
const SERVERS: [(&str, &str); 2] = [("ws-server", "ws "), ("app-server", "app")];

/// Builds and runs both servers until Ctrl-C or until one of them exits.
pub fn run() -> Result<(), String> {
    let names: Vec<&str> = SERVERS.iter().map(|(name, _)| *name).collect();
    let mut build = vec!["build"];
    for name in &names {
        build.extend(["-p", name]);
    }
    system::cargo(&build)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?
        .block_on(supervise())
}

async fn supervise() -> Result<(), String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| system::root().join("target"), Into::into)
        .join("debug");
    let mut children = Vec::new();
    for (name, prefix) in SERVERS {
        let mut child = Command::new(target.join(name))
            .current_dir(system::root())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        forward(child.stdout.take(), prefix);
        forward(child.stderr.take(), prefix);
        children.push((name, child));
    }
    println!();
    println!("  Duplex is starting. Open http://localhost:5001 in a browser,");
    println!("  and http://127.0.0.1:5001 in another window: a second origin.");
    println!("  Press Ctrl-C to stop both servers.");
    println!();

    let [(first_name, first), (second_name, second)] = children.as_mut_slice() else {
        return Err("expected two servers".to_owned());
    };
    let outcome = tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(()),
        status = first.wait() => Err(format!("{first_name} exited ({})", describe(status))),
        status = second.wait() => Err(format!("{second_name} exited ({})", describe(status))),
    };
    // Ctrl-C in a terminal reaches the servers too; stop them in any case
    // and wait, so that no server outlives this command.
    for (_, child) in children.iter_mut() {
        stop(child).await;
    }
    outcome
}

fn describe(status: std::io::Result<std::process::ExitStatus>) -> String {
    status.map_or_else(|e| e.to_string(), |s| s.to_string())
}

/// Asks a child to stop (SIGTERM on Unix, like `docker stop`) and waits.
async fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(std::time::Duration::from_secs(5), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}

/// Copies each line of `stream` to our stdout behind `[prefix]`.
fn forward(stream: Option<impl AsyncRead + Unpin + Send + 'static>, prefix: &'static str) {
    let Some(stream) = stream else { return };
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            println!("[{prefix}] {line}");
        }
    });
}
