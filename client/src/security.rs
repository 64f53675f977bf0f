//! How a client proves itself to brokers and checks them: Kafka's
//! `security.protocol` (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), the CA
//! that signs the brokers' certificates, and SASL PLAIN or SCRAM-SHA-256
//! credentials. [`crate::connection`] applies it to every connection it opens.

use crate::error::{ClientError, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsConnector;

/// Used when TLS is on and no CA file is given: Debian's system bundle.
pub const SYSTEM_CA_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The client side of a listener's security, as the `--security-protocol`,
/// `--sasl-*` and `--tls-ca` settings describe it.
#[derive(Clone, Default)]
pub struct Security {
    pub tls: Option<Tls>,
    pub sasl: Option<SaslLogin>,
}

#[derive(Clone)]
pub struct Tls {
    pub connector: TlsConnector,
    pub ca_path: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha256,
}

impl Mechanism {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Plain => relay_proto::sasl::PLAIN,
            Self::ScramSha256 => relay_proto::sasl::SCRAM_SHA_256,
        }
    }
}

#[derive(Clone)]
pub struct SaslLogin {
    pub mechanism: Mechanism,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// What a user writes, before files are read and names checked.
#[derive(Clone, Debug, Default)]
pub struct SecuritySettings {
    /// PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL.
    pub protocol: Option<String>,
    /// SCRAM-SHA-256 (default) or PLAIN.
    pub sasl_mechanism: Option<String>,
    pub sasl_username: Option<String>,
    pub sasl_password: Option<String>,
    /// PEM file of the CA(s) that sign the brokers' certificates.
    pub tls_ca_path: Option<PathBuf>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("protocol", &self.protocol_name())
            .field("tls_ca", &self.tls.as_ref().map(|t| &t.ca_path))
            .field("sasl", &self.sasl)
            .finish()
    }
}

impl Security {
    pub fn plaintext() -> Self {
        Self::default()
    }

    pub fn from_settings(settings: &SecuritySettings) -> Result<Self> {
        let protocol = settings.protocol.as_deref().unwrap_or("PLAINTEXT").to_ascii_uppercase();
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
        let mut security = Self::default();
        if tls {
            let ca_path = settings
                .tls_ca_path
                .clone()
                .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_PATH));
            security.tls = Some(Tls {
                connector: connector(&ca_path)?,
                ca_path,
            });
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

    /// Kafka's name for this combination.
    pub fn protocol_name(&self) -> &'static str {
        relay_proto::sasl::security_protocol(self.sasl.is_some(), self.tls.is_some())
    }
}

/// A rustls connector trusting exactly the CAs in `ca_path`.
fn connector(ca_path: &Path) -> Result<TlsConnector> {
    let invalid = |reason: String| ClientError::Invalid(format!("TLS CA file {}: {reason}", ca_path.display()));
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_path)
        .map_err(|e| invalid(format!("cannot read: {e}")))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not PEM certificates: {e}")))?;
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(invalid("holds no usable CA certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}
