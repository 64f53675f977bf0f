//! Log lines on stderr for every command: text for people, or one JSON
//! object per line (`--log-format json`) for log shippers. `RUST_LOG` tunes
//! the level.

use std::sync::atomic::{AtomicBool, Ordering};

static LOG_JSON: AtomicBool = AtomicBool::new(false);

/// `--log-format json`: one JSON object per log line.
pub fn set_log_format_json(json: bool) {
    LOG_JSON.store(json, Ordering::Relaxed);
}

/// Logs at `info` unless `RUST_LOG` says otherwise (the roles).
pub fn init_logging() {
    init_logging_at("info");
}

/// Logs at `default_level` unless `RUST_LOG` says otherwise.
pub fn init_logging_at(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours only on a terminal: log files and journald get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if LOG_JSON.load(Ordering::Relaxed) {
        builder.json().flatten_event(true).with_current_span(false).try_init()
    } else {
        builder.try_init()
    };
}
