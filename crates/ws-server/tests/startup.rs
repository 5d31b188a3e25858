//! The binary's start: `--print-config` prints the effective settings,
//! secrets masked, and starts no server; an invalid setting is named in
//! one line instead, in the log format the settings ask for.

use std::process::Command;

const SECRET: &str = "print-config-secret-0123456789abcdef";

fn ws_server(env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ws-server"))
        .arg("--print-config")
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("ws-server did not run: {e}"))
}

#[test]
fn the_effective_settings_are_printed_with_secrets_masked() {
    let out = ws_server(&[
        ("DUPLEX_WS_SECRET", SECRET),
        ("DUPLEX_WS_PORT", "5123"),
        ("DUPLEX_WS_ENGINE", "redis"),
        ("DUPLEX_WS_REDIS_URL", "redis://app:hunter2@cache:6379/0"),
    ]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let printed: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(printed["port"], 5123, "the environment wins: {printed}");
    assert_eq!(printed["outbox_max_bytes"], 262_144, "defaults: {printed}");
    assert_eq!(printed["join_history"], 50, "defaults: {printed}");
    assert_eq!(printed["secret"], "***");
    assert_eq!(printed["redis_url"], "redis://app:***@cache:6379/0");
    assert!(
        !stdout.contains(SECRET) && !stdout.contains("hunter2"),
        "{stdout}"
    );
}

/// Each bad setting, and what its one line must say.
const BAD_SETTINGS: testkit::settings::BadSettings<'static> = &[
    (&[("DUPLEX_WS_SECRET", "")], "secret: "),
    (&[("DUPLEX_WS_SECRET", "short")], "set DUPLEX_WS_SECRET"),
    (
        &[
            ("DUPLEX_WS_SECRET", ""),
            ("DUPLEX_WS_SECRET_FILE", "/nonexistent/secret"),
        ],
        "secret_file /nonexistent/secret: cannot read it",
    ),
    (
        &[("DUPLEX_WS_PORT", "lots")],
        "expected an integer for key `port`",
    ),
    (
        &[("DUPLEX_WS_MAX_CONNECTIONS", "0")],
        "max_connections must be at least 1",
    ),
    (
        &[("DUPLEX_WS_OUTBOX_CAPACITY", "0")],
        "outbox_capacity must be at least 1",
    ),
    (
        &[("DUPLEX_WS_MAX_FRAME_BYTES", "0")],
        "max_frame_bytes must be at least 1",
    ),
    (
        &[("DUPLEX_WS_HEARTBEAT_INTERVAL", "0s")],
        "heartbeat_interval must be longer than zero",
    ),
    (
        &[("DUPLEX_WS_FRAME_BURST", "1")],
        "frame_burst must be at least 4",
    ),
    (
        &[("DUPLEX_WS_PRESENCE_TTL", "10ms")],
        "presence_ttl must be at least",
    ),
    (
        &[("DUPLEX_WS_WORKER_THREADS", "5000")],
        "worker_threads must be at most 1024",
    ),
    (&[("DUPLEX_WS_PATH", "ws")], "path must start with '/'"),
    (
        &[("DUPLEX_WS_ADMIN_PORT", "5000")],
        "admin_port must differ from port",
    ),
    (
        &[("DUPLEX_WS_ALLOWED_ORIGINS", "localhost:5001")],
        "allowed_origins: \"localhost:5001\" needs an http:// or https:// scheme",
    ),
    (
        &[("DUPLEX_WS_ALLOWED_ORIGINS", "https://chat.example/rooms")],
        "allowed_origins: \"https://chat.example/rooms\" has more than scheme, host and port",
    ),
    (
        &[("DUPLEX_WS_ALLOWED_ORIGINS", "http://chat.example:80")],
        "is not written as browsers send it: \"http://chat.example\"",
    ),
    (
        &[
            ("DUPLEX_WS_ENGINE", "redis"),
            ("DUPLEX_WS_REDIS_URL", "http://cache:6379"),
        ],
        "redis_url \"http://cache:6379\" is not a Redis URL",
    ),
    (
        &[("DUPLEX_WS_ENGINE", "postgres")],
        "variant constructor postgres for key `engine`",
    ),
];

#[test]
fn each_bad_setting_is_named_in_one_line_and_nothing_is_printed() {
    testkit::settings::assert_each_refused(
        env!("CARGO_BIN_EXE_ws-server"),
        &[("DUPLEX_WS_SECRET", SECRET)],
        BAD_SETTINGS,
    );
}

#[test]
fn a_bad_setting_stops_the_server_before_it_binds() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .port();
    // The port is free again; a server that started would take it.
    drop(listener);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ws-server"))
        .env_clear()
        .env("DUPLEX_WS_SECRET", SECRET)
        .env("DUPLEX_WS_PORT", port.to_string())
        .env("DUPLEX_WS_ADMIN_PORT", "0")
        .env("DUPLEX_WS_MAX_ROOMS", "0")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("{e}")) {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started despite max_rooms = 0");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(!status.success());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn with_json_logs_the_refusal_is_one_json_object() {
    let out = ws_server(&[
        ("DUPLEX_WS_SECRET", SECRET),
        ("DUPLEX_WS_OUTBOX_CAPACITY", "0"),
        ("DUPLEX_WS_LOG_FORMAT", "json"),
    ]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line: serde_json::Value =
        serde_json::from_str(stderr.trim()).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(line["level"], "ERROR", "{line}");
    assert!(
        line["msg"]
            .as_str()
            .is_some_and(|m| m.contains("outbox_capacity must be at least 1")),
        "{line}"
    );
    assert!(
        line["ts"].as_str().is_some_and(|t| t.contains('T')),
        "{line}"
    );
}
