//! The binary's start: `--print-config` prints the effective settings, the
//! secret and the API key masked, and starts no server; an invalid setting
//! is logged in the format the settings ask for.

use std::process::Command;

const SECRET: &str = "print-config-secret-0123456789abcdef";
const API_KEY: &str = "print-config-api-key-0123456789abcdef";

#[test]
fn the_effective_settings_are_printed_with_secrets_masked() {
    let out = Command::new(env!("CARGO_BIN_EXE_app-server"))
        .arg("--print-config")
        .env_clear()
        .env("DUPLEX_APP_SECRET", SECRET)
        .env("DUPLEX_APP_API_KEY", API_KEY)
        .env("DUPLEX_APP_PORT", "5124")
        .output()
        .unwrap_or_else(|e| panic!("app-server did not run: {e}"));
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let printed: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(printed["port"], 5124, "the environment wins: {printed}");
    assert_eq!(printed["secret"], "***");
    assert_eq!(printed["api_key"], "***");
    assert!(
        !stdout.contains(SECRET) && !stdout.contains(API_KEY),
        "{stdout}"
    );
}

#[test]
fn without_a_secret_it_says_which_setting_is_missing() {
    let out = Command::new(env!("CARGO_BIN_EXE_app-server"))
        .arg("--print-config")
        .env_clear()
        .output()
        .unwrap_or_else(|e| panic!("app-server did not run: {e}"));
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DUPLEX_APP_SECRET"), "{stderr}");
}

/// Each bad setting, and what its one line must say.
const BAD_SETTINGS: testkit::settings::BadSettings<'static> = &[
    (&[("DUPLEX_APP_SECRET", "short")], "secret: "),
    (
        &[
            ("DUPLEX_APP_SECRET", ""),
            ("DUPLEX_APP_SECRET_FILE", "/nonexistent/secret"),
        ],
        "secret_file: cannot read /nonexistent/secret",
    ),
    (
        &[("DUPLEX_APP_API_KEY", "short")],
        "api_key must be at least 32 bytes",
    ),
    (
        &[("DUPLEX_APP_PORT", "lots")],
        "expected an integer for key `port`",
    ),
    (
        &[("DUPLEX_APP_WS_URL", "localhost:5000/ws")],
        "ws_url must start with ws:// or wss://",
    ),
    (
        &[(
            "DUPLEX_APP_WS_URLS",
            "ws://localhost:5000/ws,http://localhost:5002/ws",
        )],
        "each of ws_urls must start with ws:// or wss:// and name a host, got \"http://localhost:5002/ws\"",
    ),
    (
        &[("DUPLEX_APP_WS_SERVICE_URL", "http://ws-server:5000/ws")],
        "ws_service_url must start with ws:// or wss://",
    ),
    (
        &[("DUPLEX_APP_WS_ADMIN_URLS", "127.0.0.1:5003")],
        "each of ws_admin_urls must be http://host:port",
    ),
    (
        &[("DUPLEX_APP_WS_ADMIN_URLS", "http://127.0.0.1:5003/stats")],
        "each of ws_admin_urls must be http://host:port",
    ),
    (
        &[("DUPLEX_APP_WS_ADMIN_URLS", "http://:hunter2@127.0.0.1:5003")],
        "each of ws_admin_urls must be http://host:port",
    ),
    (
        &[("DUPLEX_APP_PUBLIC_ORIGIN", "chat.example")],
        "public_origin must be http:// or https://",
    ),
    (
        &[("DUPLEX_APP_PUBLIC_ORIGIN", "https://chat.example")],
        "public_origin is https, so browsers refuse the plain ws:// URL",
    ),
    (
        &[("DUPLEX_APP_TOKEN_TTL", "1s")],
        "token_ttl must be at least",
    ),
    (
        &[("DUPLEX_APP_KEEP_ALIVE", "0s")],
        "keep_alive must be longer than zero",
    ),
    (
        &[("DUPLEX_APP_BODY_TIMEOUT", "0s")],
        "body_timeout must be longer than zero",
    ),
];

#[test]
fn each_bad_setting_is_named_in_one_line_and_nothing_is_printed() {
    testkit::settings::assert_each_refused(
        env!("CARGO_BIN_EXE_app-server"),
        &[("DUPLEX_APP_SECRET", SECRET)],
        BAD_SETTINGS,
    );
}

#[test]
fn with_json_logs_an_invalid_setting_is_one_json_object() {
    let out = Command::new(env!("CARGO_BIN_EXE_app-server"))
        .env_clear()
        .env("DUPLEX_APP_SECRET", "too-short")
        .env("DUPLEX_APP_LOG_FORMAT", "json")
        .output()
        .unwrap_or_else(|e| panic!("app-server did not run: {e}"));
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    let line: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(line["level"], "ERROR", "{line}");
    assert!(
        line["msg"]
            .as_str()
            .is_some_and(|m| m.contains("DUPLEX_APP_SECRET")),
        "{line}"
    );
}
