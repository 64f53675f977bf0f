//! `[broker]` settings: where to listen and store, protocol limits, group
//! timeouts, and the log settings every topic starts from (`[broker.log]`),
//! with per-topic overrides (`[broker.topics.<name>]`).

use crate::log::{FsyncPolicy, LogConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Default request limit, as Kafka's `socket.request.max.bytes` (100 MiB): a
/// frame limit, 100 times the default `message_bytes_max` (1,048,588), so a
/// Produce request carries a batch of every partition it names at that size
/// and a batch over the limit is answered MESSAGE_TOO_LARGE, not cut off.
pub const REQUEST_BYTES_MAX_DEFAULT: usize = 100 * 1024 * 1024;
const _: () = assert!(REQUEST_BYTES_MAX_DEFAULT > crate::log::config::MESSAGE_BYTES_MAX_DEFAULT);
/// Default budget for the bytes of requests being read or handled, across
/// connections (Kafka's `queued.max.request.bytes`, bounded by default here).
pub const REQUESTS_MEMORY_BYTES_MAX_DEFAULT: usize = 256 * 1024 * 1024;
/// Default cap on one fetch response, as Kafka's `fetch.max.bytes` (55 MiB).
pub const FETCH_RESPONSE_BYTES_MAX_DEFAULT: usize = 57_671_680;
/// Default cap on response bytes queued for one connection and not yet sent.
pub const CONNECTION_SEND_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// Default wait of an empty group's first rebalance for more members, as
/// Kafka's `group.initial.rebalance.delay.ms`: consumers started together
/// (a deployment's replicas) land in one generation instead of one each.
/// `relay up` waits none (see `supervisor::config`).
pub const GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT: u64 = 3_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: String,
    pub data_dir: PathBuf,
    /// Returned in Metadata; generated and stored in `data_dir` when absent.
    /// When set and the data directory holds another id, the broker refuses to start.
    pub cluster_id: Option<String>,
    /// Partitions of a topic created without a count (auto-create, `-1`).
    pub default_partitions: i32,
    /// Create a topic when a client asks for its metadata or produces to it.
    pub auto_create_topics: bool,
    /// Largest request accepted; a larger length prefix closes the
    /// connection. Must exceed every topic's `message_bytes_max`, so an
    /// oversized batch gets MESSAGE_TOO_LARGE rather than a closed connection.
    pub request_bytes_max: usize,
    /// Bytes of requests in flight across every connection; a connection
    /// whose next request does not fit waits (is not read) until others finish.
    pub requests_memory_bytes_max: usize,
    /// Largest fetch response, whatever the client asks for.
    pub fetch_response_bytes_max: usize,
    /// Response bytes queued for one connection and not yet sent: a client
    /// that reads slowly stops being read from, and holds no more than this.
    pub connection_send_bytes_max: usize,
    /// Connections beyond this are accepted and closed at once.
    pub connections_max: usize,
    /// A connection idle this long is closed.
    pub idle_timeout_ms: u64,
    /// A request whose answer takes longer than this, from its frame read to
    /// its answer flushed, is logged at WARN with its stages (absent: never).
    pub slow_request_ms: Option<u64>,
    /// Bounds clients' session timeouts, as Kafka's group.min/max.session.timeout.ms.
    pub group_session_timeout_min_ms: i32,
    pub group_session_timeout_max_ms: i32,
    /// How long an empty group's first rebalance waits for more members, and
    /// again for each step in which one came (Kafka's InitialDelayedJoin);
    /// absent: [`GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT`].
    pub group_initial_rebalance_delay_ms: Option<u64>,
    /// How often retention runs.
    pub retention_check_interval_ms: u64,
    /// Log settings of every topic unless overridden.
    pub log: LogConfig,
    /// Per-topic overrides, keyed by topic name.
    pub topics: BTreeMap<String, TopicSettings>,
    /// `[broker.tls]`: serve TLS on the listener (absent: plaintext).
    pub tls: Option<TlsConfig>,
    /// `[broker.sasl]`: require SASL authentication (absent: none).
    pub sasl: Option<SaslConfig>,
    /// `[[broker.grants]]`: what each SASL user may do (deny by default once
    /// SASL is on; see `security::authorization`).
    pub grants: Vec<GrantConfig>,
}

/// `[broker.tls]`: the listener's certificate chain and private key, PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server certificate first, then any intermediates.
    pub cert_path: PathBuf,
    /// PKCS#8, PKCS#1 (RSA) or SEC1 (EC) private key.
    pub key_path: PathBuf,
    /// A TLS handshake not finished within this closes the connection.
    #[serde(default = "handshake_timeout_ms_default")]
    pub handshake_timeout_ms: u64,
}

fn handshake_timeout_ms_default() -> u64 {
    10_000
}

/// `[broker.sasl]`: mechanisms offered and the users allowed in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaslConfig {
    /// Any of "SCRAM-SHA-256" and "PLAIN".
    #[serde(default = "mechanisms_default")]
    pub mechanisms: Vec<String>,
    /// User name -> hashed credential from `relay hash-password`
    /// (`SCRAM-SHA-256$<iterations>:<salt>$<stored key>:<server key>`).
    pub users: BTreeMap<String, String>,
    /// A connection not authenticated within this after it opens is closed.
    #[serde(default = "authentication_timeout_ms_default")]
    pub authentication_timeout_ms: u64,
}

fn mechanisms_default() -> Vec<String> {
    vec![relay_proto::sasl::SCRAM_SHA_256.to_owned()]
}

fn authentication_timeout_ms_default() -> u64 {
    10_000
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9092".into(),
            data_dir: PathBuf::from("./data"),
            cluster_id: None,
            default_partitions: 1,
            auto_create_topics: true,
            request_bytes_max: REQUEST_BYTES_MAX_DEFAULT,
            requests_memory_bytes_max: REQUESTS_MEMORY_BYTES_MAX_DEFAULT,
            fetch_response_bytes_max: FETCH_RESPONSE_BYTES_MAX_DEFAULT,
            connection_send_bytes_max: CONNECTION_SEND_BYTES_MAX_DEFAULT,
            connections_max: 1000,
            idle_timeout_ms: 600_000,
            slow_request_ms: None,
            group_session_timeout_min_ms: 1_000,
            group_session_timeout_max_ms: 1_800_000,
            group_initial_rebalance_delay_ms: None,
            retention_check_interval_ms: 300_000,
            log: LogConfig::default(),
            topics: BTreeMap::new(),
            tls: None,
            sasl: None,
            grants: Vec::new(),
        }
    }
}

/// One `[[broker.grants]]` entry as written; what it allows is
/// [`crate::security::authorization`]'s to decide.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    /// User names of `[broker.sasl.users]`, or `"*"` for every user.
    pub users: Vec<String>,
    /// `sender`, `loader` or `admin`.
    #[serde(default)]
    pub role: Option<String>,
    /// Operations besides the role's: produce, consume, describe, create, delete, group.
    #[serde(default)]
    pub operations: Vec<String>,
    /// Topic names, `prefix*` or `*`.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Group names, `prefix*` or `*`.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The operations apply to the cluster too (describe: list every group and
    /// the log dirs; create: create any topic).
    #[serde(default)]
    pub cluster: bool,
}

/// Settings one topic may override; absent fields come from `[broker.log]`.
///
/// A topic's file keeps the settings it was created with. The two protection
/// settings are the exception: they describe who reads the topic and how much
/// disk the operator grants them, which change as loaders come and go, so
/// they are read from the config at every start and never stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicSettings {
    pub partitions: Option<i32>,
    pub message_bytes_max: Option<usize>,
    pub segment_bytes: Option<u64>,
    pub segment_ms: Option<u64>,
    pub index_interval_bytes: Option<u32>,
    pub retention_bytes: Option<i64>,
    pub retention_ms: Option<i64>,
    pub fsync: Option<FsyncPolicy>,
    /// Consumer groups whose committed offsets retention does not pass, up to
    /// `retention_bytes_hard` (see [`crate::topics::retention`]). `Some([])`
    /// protects nothing and says so explicitly (`relay up` then adds no
    /// loader group).
    #[serde(skip_serializing)]
    pub protected_groups: Option<Vec<String>>,
    /// See [`LogConfig::retention_bytes_hard`].
    #[serde(skip_serializing)]
    pub retention_bytes_hard: Option<i64>,
}

impl TopicSettings {
    /// `base` with these overrides applied.
    pub fn apply(&self, base: &LogConfig) -> LogConfig {
        LogConfig {
            message_bytes_max: self.message_bytes_max.unwrap_or(base.message_bytes_max),
            segment_bytes: self.segment_bytes.unwrap_or(base.segment_bytes),
            segment_ms: self.segment_ms.unwrap_or(base.segment_ms),
            index_interval_bytes: self.index_interval_bytes.unwrap_or(base.index_interval_bytes),
            retention_bytes: self.retention_bytes.unwrap_or(base.retention_bytes),
            retention_ms: self.retention_ms.unwrap_or(base.retention_ms),
            fsync: self.fsync.unwrap_or(base.fsync),
            retention_bytes_hard: self.retention_bytes_hard.or(base.retention_bytes_hard),
            ..base.clone()
        }
    }

    /// Later settings win where they are set.
    pub fn merged_with(&self, later: &TopicSettings) -> TopicSettings {
        TopicSettings {
            partitions: later.partitions.or(self.partitions),
            message_bytes_max: later.message_bytes_max.or(self.message_bytes_max),
            segment_bytes: later.segment_bytes.or(self.segment_bytes),
            segment_ms: later.segment_ms.or(self.segment_ms),
            index_interval_bytes: later.index_interval_bytes.or(self.index_interval_bytes),
            retention_bytes: later.retention_bytes.or(self.retention_bytes),
            retention_ms: later.retention_ms.or(self.retention_ms),
            fsync: later.fsync.or(self.fsync),
            protected_groups: later.protected_groups.clone().or_else(|| self.protected_groups.clone()),
            retention_bytes_hard: later.retention_bytes_hard.or(self.retention_bytes_hard),
        }
    }

    /// These settings with the protection settings of `configured` (the
    /// topic's `[broker.topics.<name>]`) in place of their own.
    pub fn with_protection_of(&self, configured: Option<&TopicSettings>) -> TopicSettings {
        TopicSettings {
            protected_groups: configured.and_then(|c| c.protected_groups.clone()),
            retention_bytes_hard: configured.and_then(|c| c.retention_bytes_hard),
            ..self.clone()
        }
    }

    /// The groups retention protects; empty when none.
    pub fn protected_groups(&self) -> &[String] {
        self.protected_groups.as_deref().unwrap_or_default()
    }
}

impl BrokerConfig {
    /// Checks the settings; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if self.default_partitions < 1 {
            return Err("broker.default_partitions must be at least 1".into());
        }
        if self.request_bytes_max < 1024 {
            return Err("broker.request_bytes_max must be at least 1024".into());
        }
        if self.requests_memory_bytes_max < self.request_bytes_max {
            return Err(format!(
                "broker.requests_memory_bytes_max ({}) must be at least request_bytes_max ({})",
                self.requests_memory_bytes_max, self.request_bytes_max
            ));
        }
        if self.fetch_response_bytes_max < 1024 {
            return Err("broker.fetch_response_bytes_max must be at least 1024".into());
        }
        if self.connection_send_bytes_max < 1024 {
            return Err("broker.connection_send_bytes_max must be at least 1024".into());
        }
        if self.connections_max == 0 {
            return Err("broker.connections_max must be at least 1".into());
        }
        if self.group_session_timeout_min_ms > self.group_session_timeout_max_ms {
            return Err("broker.group_session_timeout_min_ms exceeds group_session_timeout_max_ms".into());
        }
        self.log.validate().map_err(|e| format!("broker.log: {e}"))?;
        self.check_message_fits_request("broker.log", &self.log)?;
        if let Some(sasl) = &self.sasl {
            sasl.validate()?;
        }
        for (topic, settings) in &self.topics {
            let section = format!("broker.topics.{topic}");
            let log = settings.apply(&self.log);
            log.validate().map_err(|e| format!("{section}: {e}"))?;
            self.check_message_fits_request(&section, &log)?;
            if settings.protected_groups().iter().any(|group| group.is_empty()) {
                return Err(format!(
                    "{section}.protected_groups names an empty group; list the group ids of the topic's loaders"
                ));
            }
        }
        Ok(())
    }

    /// A batch of `message_bytes_max` must fit a request, or the broker
    /// would close the connection where it should answer MESSAGE_TOO_LARGE.
    fn check_message_fits_request(&self, section: &str, log: &LogConfig) -> Result<(), String> {
        if log.message_bytes_max >= self.request_bytes_max {
            return Err(format!(
                "{section}.message_bytes_max ({}) must be less than broker.request_bytes_max ({}); \
                 lower the one or raise the other",
                log.message_bytes_max, self.request_bytes_max
            ));
        }
        Ok(())
    }
}

impl SaslConfig {
    fn validate(&self) -> Result<(), String> {
        use relay_proto::sasl::Credential;
        if self.mechanisms.is_empty() {
            return Err("broker.sasl.mechanisms is empty".into());
        }
        for mechanism in &self.mechanisms {
            if relay_proto::sasl::mechanism(mechanism).is_none() {
                return Err(format!(
                    "broker.sasl.mechanisms: {mechanism:?} is not supported; use \"SCRAM-SHA-256\" or \"PLAIN\""
                ));
            }
        }
        if self.users.is_empty() {
            return Err(
                "broker.sasl.users is empty: nobody could connect (add users with `relay hash-password`)".into(),
            );
        }
        for (user, credential) in &self.users {
            Credential::parse(credential).map_err(|e| format!("broker.sasl.users.{user}: {e}"))?;
        }
        if self.authentication_timeout_ms == 0 {
            return Err("broker.sasl.authentication_timeout_ms must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::config::MESSAGE_BYTES_MAX_DEFAULT;

    #[test]
    fn default_message_limit_is_kafkas_and_fits_the_default_request() {
        let config = BrokerConfig::default();
        assert_eq!(config.log.message_bytes_max, 1_048_588);
        assert_eq!(config.log.message_bytes_max, MESSAGE_BYTES_MAX_DEFAULT);
        assert!(config.request_bytes_max > config.log.message_bytes_max);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn message_limit_not_under_the_request_limit_is_refused_naming_both() {
        let mut config = BrokerConfig {
            request_bytes_max: 1024 * 1024,
            ..BrokerConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(
                "broker.log.message_bytes_max (1048588) must be less than broker.request_bytes_max (1048576); \
                 lower the one or raise the other"
                    .into()
            )
        );
        config.log.message_bytes_max = 1_000_000;
        assert_eq!(config.validate(), Ok(()));
        config.topics.insert(
            "big".into(),
            TopicSettings {
                message_bytes_max: Some(2_000_000),
                ..TopicSettings::default()
            },
        );
        assert_eq!(
            config.validate(),
            Err(
                "broker.topics.big.message_bytes_max (2000000) must be less than broker.request_bytes_max \
                 (1048576); lower the one or raise the other"
                    .into()
            )
        );
    }

    #[test]
    fn protection_settings_come_from_the_config_and_are_never_stored() {
        let configured: BrokerConfig = toml::from_str(
            "[log]\nretention_bytes = 1000\n\
             [topics.events]\nprotected_groups = [\"loader\"]\nretention_bytes_hard = 9000\nretention_ms = 5\n",
        )
        .unwrap();
        let settings = &configured.topics["events"];
        assert_eq!(settings.protected_groups(), ["loader".to_owned()]);
        let log = settings.apply(&configured.log);
        assert_eq!(
            (log.retention_bytes, log.retention_hard_bytes_max()),
            (1000, Some(9000))
        );
        assert_eq!(
            toml::to_string(settings).unwrap(),
            "retention_ms = 5\n",
            "a topic file keeps no protection setting"
        );
        let stored = TopicSettings {
            retention_ms: Some(5),
            ..TopicSettings::default()
        };
        assert_eq!(stored.with_protection_of(Some(settings)), *settings);
        assert_eq!(stored.with_protection_of(None), stored);
        assert!(TopicSettings::default().protected_groups().is_empty());
    }

    #[test]
    fn an_empty_protected_group_name_is_refused() {
        let config: BrokerConfig = toml::from_str("[topics.events]\nprotected_groups = [\"\"]\n").unwrap();
        assert_eq!(
            config.validate(),
            Err(
                "broker.topics.events.protected_groups names an empty group; list the group ids of the \
                 topic's loaders"
                    .into()
            )
        );
    }

    #[test]
    fn message_limit_outside_its_range_is_refused() {
        let config = LogConfig {
            message_bytes_max: 100,
            ..LogConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err("message_bytes_max = 100 is outside 128..=104857600".into())
        );
    }
}
