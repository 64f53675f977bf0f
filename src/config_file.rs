//! The TOML file shared by every role (`config.toml.example` documents every
//! key). Unknown keys are errors that name the key, so a typo never silently
//! falls back to a default.

use relay_broker::config::BrokerConfig;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    pub broker: BrokerConfig,
}

/// Reads `path`, or the defaults when no file is given.
pub fn load(path: Option<&Path>) -> Result<RelayConfig, String> {
    let Some(path) = path else {
        return Ok(RelayConfig::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

/// Logs to stderr; `RUST_LOG` tunes the level (default `info`).
pub fn init_logging() {
    init_logging_at("info");
}

/// Logs to stderr at `default_level` unless `RUST_LOG` says otherwise.
pub fn init_logging_at(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
