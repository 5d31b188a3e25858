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
    assert_eq!(printed["secret"], "***");
    assert_eq!(printed["redis_url"], "redis://app:***@cache:6379/0");
    assert!(
        !stdout.contains(SECRET) && !stdout.contains("hunter2"),
        "{stdout}"
    );
}

#[test]
fn an_invalid_setting_is_named_in_one_line_and_nothing_is_printed() {
    let out = ws_server(&[
        ("DUPLEX_WS_SECRET", SECRET),
        ("DUPLEX_WS_OUTBOX_CAPACITY", "0"),
    ]);
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("outbox_capacity must be at least 1"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
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
