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

    /// Kafka's name for this combination.
    pub fn protocol_name(&self) -> &'static str {
        relay_proto::sasl::security_protocol(self.sasl.is_some(), self.tls.is_some())
    }
}

impl Tls {
    /// TLS that trusts exactly the CAs in `ca_path` (a PEM file).
    pub fn trusting(ca_path: PathBuf) -> Result<Self> {
        Ok(Self {
            connector: connector(&ca_path)?,
            ca_path,
        })
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
