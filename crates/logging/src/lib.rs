//! How both servers log: env_logger on stderr, as text for people or as one
//! JSON object per line for log shippers (their `log_format = "json"`).

use std::io::Write;

use serde::{Deserialize, Serialize};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// env_logger's lines: time, level, module, message.
    #[default]
    Text,
    /// One JSON object per line: `ts` (RFC 3339), `level`, `target`, `msg`.
    Json,
}

/// The `log_format` a server's settings ask for, read alone, so that it
/// can apply before the rest is checked (even the line refusing another
/// setting has it); text when it cannot be read.
#[must_use]
pub fn format_in(settings: Result<config::Config, config::ConfigError>) -> LogFormat {
    #[derive(Deserialize)]
    struct Logging {
        log_format: LogFormat,
    }
    settings
        .and_then(config::Config::try_deserialize::<Logging>)
        .map_or(LogFormat::Text, |l| l.log_format)
}

/// Starts logging to stderr in `format`, filtered by `RUST_LOG` (default
/// `info`). Call once, first thing.
pub fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let line = serde_json::json!({
                "ts": buf.timestamp_millis().to_string(),
                "level": record.level().as_str(),
                "target": record.target(),
                "msg": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    }
    builder.init();
}
