//! Who may talk to the broker: TLS on the listener and SASL users, loaded
//! from `[broker.tls]` and `[broker.sasl]` once at start. A connection's
//! login state is `server::session`, the exchange `server::api::sasl_*`; the
//! SASL messages themselves are `relay_proto::sasl`.
//!
//! # Layout
//! - [`tls`]: PEM certificate chain and key into a rustls acceptor.
//! - [`Users`]: the configured users' parsed credentials and offered mechanisms.
//! - [`authorization`]: what each user may do (`[[broker.grants]]`).

pub mod authorization;
pub mod tls;

use crate::config::BrokerConfig;
use relay_proto::sasl::scram::ScramServer;
use relay_proto::sasl::{Credential, PLAIN};
use std::collections::HashMap;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("broker.tls: {path}: {reason}")]
    Tls { path: String, reason: String },
    #[error("broker.sasl: {0}")]
    Sasl(String),
    #[error("{0}")]
    Grants(String),
}

/// The listener's security, as Kafka names it: PLAINTEXT, SSL,
/// SASL_PLAINTEXT or SASL_SSL.
pub struct Security {
    pub tls: Option<TlsAcceptor>,
    pub tls_handshake_timeout: Duration,
    pub sasl: Option<Users>,
    /// What each user may do; everything without SASL.
    pub authorizer: authorization::Authorizer,
}

/// SASL users and what they may use.
pub struct Users {
    credentials: HashMap<String, Credential>,
    /// Mechanism names offered, as clients spell them.
    pub mechanisms: Vec<&'static str>,
    /// Stand-in salts for unknown users come from this (see `ScramServer`).
    pub scram_secret: [u8; 32],
    pub authentication_timeout: Duration,
}

impl Users {
    pub fn credential(&self, user: &str) -> Option<Credential> {
        self.credentials.get(user).cloned()
    }
}

impl Security {
    /// No TLS, no SASL: the zero-config loopback default.
    pub fn plaintext() -> Self {
        Self {
            tls: None,
            tls_handshake_timeout: Duration::from_secs(10),
            sasl: None,
            authorizer: authorization::Authorizer::open(),
        }
    }

    pub fn load(config: &BrokerConfig) -> Result<Self, SecurityError> {
        let mut security = Self::plaintext();
        if let Some(tls) = &config.tls {
            security.tls = Some(tls::acceptor(&tls.cert_path, &tls.key_path)?);
            security.tls_handshake_timeout = Duration::from_millis(tls.handshake_timeout_ms);
        }
        if config.sasl.is_none() && !config.grants.is_empty() {
            return Err(SecurityError::Grants(
                "[[broker.grants]] without [broker.sasl]: without logins there are no users to apply them to, \
                 and everyone may do everything; add [broker.sasl] (see config.toml.example)"
                    .into(),
            ));
        }
        if let Some(sasl) = &config.sasl {
            let mut credentials = HashMap::new();
            for (user, text) in &sasl.users {
                let credential =
                    Credential::parse(text).map_err(|e| SecurityError::Sasl(format!("users.{user}: {e}")))?;
                credentials.insert(user.clone(), credential);
            }
            let mechanisms = sasl
                .mechanisms
                .iter()
                .map(|name| {
                    relay_proto::sasl::mechanism(name)
                        .ok_or_else(|| SecurityError::Sasl(format!("mechanism {name:?} is not supported")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if mechanisms.contains(&PLAIN) && security.tls.is_none() {
                tracing::warn!(
                    "broker.sasl offers PLAIN without [broker.tls]: passwords cross the network in clear text"
                );
            }
            let names = sasl.users.keys().cloned().collect();
            security.authorizer =
                authorization::Authorizer::new(&config.grants, &names).map_err(SecurityError::Grants)?;
            security.sasl = Some(Users {
                credentials,
                mechanisms,
                scram_secret: ScramServer::new_secret(),
                authentication_timeout: Duration::from_millis(sasl.authentication_timeout_ms),
            });
        }
        Ok(security)
    }

    /// Kafka's name for this listener's security protocol.
    pub fn protocol_name(&self) -> &'static str {
        relay_proto::sasl::security_protocol(self.sasl.is_some(), self.tls.is_some())
    }
}
