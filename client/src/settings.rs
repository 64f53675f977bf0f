//! [`ClientSettings`]: how a client reaches a cluster, written once and read
//! three ways: as the `[client]` section of the config file (serde), as the
//! `--broker`, `--security-protocol`, `--sasl-*` and `--tls-ca` flags (clap,
//! with their environment variables), and merged flags-over-file by
//! [`ClientSettings::over`]. It turns into a [`ClusterConfig`] and nothing
//! else; it never opens a connection.

use crate::error::{ClientError, Result};
use crate::security::{Mechanism, SaslLogin, Security, Tls, SYSTEM_CA_PATH};
use crate::time::parse_rfc3339_ms;
use crate::types::StartPosition;
use crate::ClusterConfig;
use serde::Deserialize;
use std::path::PathBuf;

/// The broker when neither `--broker`, `RELAY_BROKER` nor `[client] brokers` says.
pub const BROKER_DEFAULT: &str = "127.0.0.1:9092";

/// Where the brokers are, which cluster they must be, and how to log in.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct ClientSettings {
    /// Broker address(es), comma separated [default: [client] brokers of --config for the commands that take one, else 127.0.0.1:9092].
    #[arg(long = "broker", global = true, env = "RELAY_BROKER", value_name = "ADDR")]
    pub brokers: Option<String>,
    /// Refuse to work against a cluster with another id (no discovery, no cross-talk).
    #[arg(long, global = true, value_name = "ID")]
    pub expect_cluster_id: Option<String>,
    /// PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL, as Kafka's security.protocol.
    #[arg(long, global = true, env = "RELAY_SECURITY_PROTOCOL", value_name = "PROTOCOL")]
    pub security_protocol: Option<String>,
    /// SCRAM-SHA-256 (default) or PLAIN.
    #[arg(long, global = true, env = "RELAY_SASL_MECHANISM", value_name = "MECHANISM")]
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    #[arg(long, global = true, env = "RELAY_SASL_USERNAME", value_name = "USER")]
    pub sasl_username: Option<String>,
    /// SASL password; prefer the environment variable (command lines and
    /// config files are seen by more people than the environment).
    #[arg(
        long,
        global = true,
        env = PASSWORD_ENV,
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub sasl_password: Option<String>,
    /// PEM file of the CA that signs the broker's certificate [default: the system bundle].
    #[arg(long = "tls-ca", global = true, env = "RELAY_TLS_CA", value_name = "FILE")]
    pub tls_ca_path: Option<PathBuf>,
}

/// The environment variable that holds the SASL password.
pub const PASSWORD_ENV: &str = "RELAY_SASL_PASSWORD";

/// A role's own SASL login (`[send.login]`, `[load.login]`), over `[client]`
/// and the flags, so one `relay up` can run each role as its own user with
/// only the grants that role needs.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub sasl_username: String,
    /// The environment variable that holds this user's password (preferred).
    #[serde(default)]
    pub sasl_password_env: Option<String>,
    /// The password itself, when it must be in the file.
    #[serde(default)]
    pub sasl_password: Option<String>,
    /// SCRAM-SHA-256 (default: `[client]`'s) or PLAIN.
    #[serde(default)]
    pub sasl_mechanism: Option<String>,
}

impl ClientSettings {
    /// These settings (flags) where given, else `file`'s (the `[client]` section).
    pub fn over(&self, file: &ClientSettings) -> ClientSettings {
        fn pick<T: Clone>(flag: &Option<T>, file: &Option<T>) -> Option<T> {
            flag.clone().or_else(|| file.clone())
        }
        ClientSettings {
            brokers: pick(&self.brokers, &file.brokers),
            expect_cluster_id: pick(&self.expect_cluster_id, &file.expect_cluster_id),
            security_protocol: pick(&self.security_protocol, &file.security_protocol),
            sasl_mechanism: pick(&self.sasl_mechanism, &file.sasl_mechanism),
            sasl_username: pick(&self.sasl_username, &file.sasl_username),
            sasl_password: pick(&self.sasl_password, &file.sasl_password),
            tls_ca_path: pick(&self.tls_ca_path, &file.tls_ca_path),
        }
    }

    /// These settings logged in as `login`'s user instead (when there is one);
    /// the error names the missing password's variable.
    pub fn with_login(&self, login: Option<&Login>) -> Result<ClientSettings> {
        let Some(login) = login else { return Ok(self.clone()) };
        let password = match (&login.sasl_password_env, &login.sasl_password) {
            (Some(variable), _) => Some(std::env::var(variable).map_err(|_| {
                ClientError::Invalid(format!(
                    "login of user {:?}: the environment variable {variable} (sasl_password_env) is not set",
                    login.sasl_username
                ))
            })?),
            (None, Some(password)) => Some(password.clone()),
            (None, None) => {
                return Err(ClientError::Invalid(format!(
                    "login of user {:?}: no sasl_password_env (or sasl_password)",
                    login.sasl_username
                )))
            }
        };
        let mut settings = self.clone();
        settings.sasl_username = Some(login.sasl_username.clone());
        settings.sasl_password = password;
        if login.sasl_mechanism.is_some() {
            settings.sasl_mechanism = login.sasl_mechanism.clone();
        }
        Ok(settings)
    }

    /// The password from [`PASSWORD_ENV`] when none is set (for roles that
    /// take no flags, such as `relay up`).
    pub fn with_password_from_env(mut self) -> Self {
        if self.sasl_password.is_none() {
            self.sasl_password = std::env::var(PASSWORD_ENV).ok();
        }
        self
    }

    /// The brokers to bootstrap from.
    pub fn brokers(&self) -> &str {
        self.brokers.as_deref().unwrap_or(BROKER_DEFAULT)
    }

    /// The security these settings describe (reads the CA file); a
    /// protocol, mechanism or missing credential that cannot work is an
    /// error that names the setting.
    pub fn security(&self) -> Result<Security> {
        let settings = self;
        let protocol = settings
            .security_protocol
            .as_deref()
            .unwrap_or("PLAINTEXT")
            .to_ascii_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => {
                return Err(ClientError::Invalid(format!(
                    "security protocol {other:?} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
                )))
            }
        };
        let mut security = Security::default();
        if tls {
            let ca_path = settings
                .tls_ca_path
                .clone()
                .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_PATH));
            security.tls = Some(Tls::trusting(ca_path)?);
        } else if settings.tls_ca_path.is_some() {
            return Err(ClientError::Invalid(format!(
                "a TLS CA file is set but security protocol {protocol} does not use TLS (use SSL or SASL_SSL)"
            )));
        }
        if sasl {
            let name = settings
                .sasl_mechanism
                .as_deref()
                .unwrap_or(relay_proto::sasl::SCRAM_SHA_256);
            let mechanism = match relay_proto::sasl::mechanism(&name.to_ascii_uppercase()) {
                Some(relay_proto::sasl::SCRAM_SHA_256) => Mechanism::ScramSha256,
                Some(relay_proto::sasl::PLAIN) => Mechanism::Plain,
                _ => {
                    return Err(ClientError::Invalid(format!(
                        "SASL mechanism {name:?} is not supported; use SCRAM-SHA-256 or PLAIN"
                    )))
                }
            };
            let user = settings
                .sasl_username
                .clone()
                .filter(|u| !u.is_empty())
                .ok_or_else(|| ClientError::Invalid(format!("security protocol {protocol} needs a SASL user name")))?;
            let password = settings.sasl_password.clone().ok_or_else(|| {
                ClientError::Invalid(format!(
                    "security protocol {protocol} needs a SASL password (RELAY_SASL_PASSWORD or sasl_password)"
                ))
            })?;
            security.sasl = Some(SaslLogin {
                mechanism,
                user,
                password,
            });
        } else if settings.sasl_username.is_some() {
            return Err(ClientError::Invalid(format!(
                "a SASL user is set but security protocol {protocol} does not use SASL (use SASL_PLAINTEXT or SASL_SSL)"
            )));
        }
        Ok(security)
    }

    /// A cluster configuration for a client named `client_id`.
    pub fn cluster_config(&self, client_id: &str) -> Result<ClusterConfig> {
        let mut config = ClusterConfig::new(self.brokers());
        config.client_id = client_id.to_owned();
        config.expect_cluster_id = self.expect_cluster_id.clone();
        config.security = self.security()?;
        Ok(config)
    }
}

/// `earliest`, `latest`, `offset:N` or `time:RFC3339`: where a consumer
/// starts on a partition without a stored position.
pub fn parse_start_position(text: &str) -> std::result::Result<StartPosition, String> {
    match text {
        "earliest" => Ok(StartPosition::Earliest),
        "latest" => Ok(StartPosition::Latest),
        _ => {
            if let Some(offset) = text.strip_prefix("offset:") {
                let offset: i64 = offset
                    .parse()
                    .map_err(|_| format!("{text:?}: offset:N needs a number"))?;
                if offset < 0 {
                    return Err(format!("{text:?}: offsets are not negative"));
                }
                Ok(StartPosition::Offset(offset))
            } else if let Some(time) = text.strip_prefix("time:") {
                parse_rfc3339_ms(time).map(StartPosition::Timestamp)
            } else {
                Err(format!(
                    "{text:?} is not a position: use earliest, latest, offset:N or time:RFC3339"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_field_by_field() {
        let file = ClientSettings {
            brokers: Some("file:9092".into()),
            sasl_username: Some("file-user".into()),
            ..ClientSettings::default()
        };
        let flags = ClientSettings {
            brokers: Some("flag:9092".into()),
            ..ClientSettings::default()
        };
        let merged = flags.over(&file);
        assert_eq!(merged.brokers(), "flag:9092");
        assert_eq!(merged.sasl_username.as_deref(), Some("file-user"));
        assert_eq!(ClientSettings::default().brokers(), BROKER_DEFAULT);
    }

    #[test]
    fn positions_parse_and_bad_ones_say_why() {
        assert!(matches!(parse_start_position("earliest"), Ok(StartPosition::Earliest)));
        assert!(matches!(
            parse_start_position("offset:42"),
            Ok(StartPosition::Offset(42))
        ));
        assert!(matches!(
            parse_start_position("time:2026-11-22T00:00:00Z"),
            Ok(StartPosition::Timestamp(1_795_305_600_000))
        ));
        assert!(parse_start_position("offset:-1").unwrap_err().contains("not negative"));
        assert!(parse_start_position("yesterday")
            .unwrap_err()
            .contains("not a position"));
    }
}
