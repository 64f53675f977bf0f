//! The listener's TLS: a PEM certificate chain and private key become a
//! rustls server configuration (TLS 1.2 and 1.3, ring's safe defaults, no
//! client certificates). Errors name the file and what is wrong with it.

use super::SecurityError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

pub fn acceptor(cert_path: &Path, key_path: &Path) -> Result<TlsAcceptor, SecurityError> {
    let error = |path: &Path, reason: String| SecurityError::Tls {
        path: path.display().to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| error(cert_path, format!("cannot read certificates: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| error(cert_path, format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(error(cert_path, "holds no CERTIFICATE block".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| error(key_path, format!("no usable PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error(cert_path, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            error(
                key_path,
                format!("certificate and key do not make a server identity: {e}"),
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
