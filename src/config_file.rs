//! The TOML file shared by every role (`config.toml.example` documents every
//! key). Unknown keys are errors that name the key, so a typo never silently
//! falls back to a default.

use relay_broker::config::BrokerConfig;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// `host:port` where this process serves `/metrics` and `/health`.
    pub metrics_listen: Option<String>,
    /// How client roles (send, load, and the CLI with --config) reach the broker.
    pub client: ClientSection,
    pub broker: BrokerConfig,
    pub send: Vec<SendSection>,
    pub load: Vec<LoadSection>,
}

/// The `[client]` section; flags and `RELAY_BROKER` override it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientSection {
    /// Broker address(es), comma separated.
    pub brokers: Option<String>,
    /// Refuse to work against a cluster with another id (no discovery, no cross-talk).
    pub expect_cluster_id: Option<String>,
    /// PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL.
    pub security_protocol: Option<String>,
    /// SCRAM-SHA-256 (default) or PLAIN.
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    /// Better left out of the file and given as RELAY_SASL_PASSWORD.
    pub sasl_password: Option<String>,
    /// PEM file of the CA that signs the broker's certificate.
    pub tls_ca_path: Option<std::path::PathBuf>,
}

/// One `[[load]]` section: topics into a warehouse table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSection {
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub topics: Vec<String>,
    pub group: String,
    pub warehouse: String,
    pub table: String,
    #[serde(default)]
    pub columns: Vec<relay_loader::config::ColumnSpec>,
    #[serde(default)]
    pub metadata: Vec<relay_loader::config::MetadataColumn>,
    /// JSON pointer of the event's unique id.
    #[serde(default = "dedup_key_default")]
    pub dedup_key: String,
    #[serde(default = "yes")]
    pub create_table: bool,
    #[serde(default = "batch_records_max_default")]
    pub batch_records_max: usize,
    #[serde(default = "batch_wait_ms_default")]
    pub batch_wait_ms: u64,
    /// earliest, latest, offset:N or time:RFC3339, for partitions with no stored offset.
    #[serde(default)]
    pub from: Option<String>,
}

fn dedup_key_default() -> String {
    "/uuid".into()
}

fn yes() -> bool {
    true
}

fn batch_records_max_default() -> usize {
    10_000
}

fn batch_wait_ms_default() -> u64 {
    500
}

/// One `[[send]]` section: files to tail into a topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendSection {
    pub topic: String,
    pub paths: Vec<String>,
    /// Default: `./state/send-<topic>`.
    pub state_dir: Option<std::path::PathBuf>,
    pub key_field: Option<String>,
    #[serde(default = "line_bytes_max_default")]
    pub line_bytes_max: usize,
    #[serde(default = "open_files_max_default")]
    pub open_files_max: usize,
    /// A file moved away from the watched paths is closed after this long without growth.
    #[serde(default = "rotate_wait_ms_default")]
    pub rotate_wait_ms: u64,
}

fn line_bytes_max_default() -> usize {
    relay_client::sender::LINE_BYTES_MAX_DEFAULT
}

fn open_files_max_default() -> usize {
    256
}

fn rotate_wait_ms_default() -> u64 {
    5000
}

/// Reads `path`, or the defaults when no file is given.
pub fn load(path: Option<&Path>) -> Result<RelayConfig, String> {
    let Some(path) = path else {
        return Ok(RelayConfig::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

static LOG_JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--log-format json`: one JSON object per log line, for log shippers.
pub fn set_log_format_json(json: bool) {
    LOG_JSON.store(json, std::sync::atomic::Ordering::Relaxed);
}

/// Logs to stderr; `RUST_LOG` tunes the level (default `info`).
pub fn init_logging() {
    init_logging_at("info");
}

/// Logs to stderr at `default_level` unless `RUST_LOG` says otherwise.
pub fn init_logging_at(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours only on a terminal: log files and journald get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if LOG_JSON.load(std::sync::atomic::Ordering::Relaxed) {
        builder.json().flatten_event(true).with_current_span(false).try_init()
    } else {
        builder.try_init()
    };
}
