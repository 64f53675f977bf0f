//! `--security-protocol` and friends for the benches that talk to a broker,
//! so TLS and SASL costs can be measured against the same broker and client
//! code as plaintext (`relay_client::security`).

use clap::Args;
use relay_client::security::{Security, SecuritySettings};
use relay_client::ClusterConfig;

#[derive(Debug, Args, Clone, Default)]
pub struct SecurityArgs {
    /// PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL.
    #[arg(long)]
    pub security_protocol: Option<String>,
    /// SCRAM-SHA-256 (default) or PLAIN.
    #[arg(long)]
    pub sasl_mechanism: Option<String>,
    #[arg(long)]
    pub sasl_username: Option<String>,
    #[arg(long, env = "RELAY_SASL_PASSWORD", hide_env_values = true)]
    pub sasl_password: Option<String>,
    /// PEM file of the CA that signed the broker's certificate.
    #[arg(long)]
    pub tls_ca: Option<std::path::PathBuf>,
}

impl SecurityArgs {
    /// A cluster configuration for `broker` with these settings.
    pub fn cluster_config(&self, broker: &str) -> Result<ClusterConfig, String> {
        let mut config = ClusterConfig::new(broker);
        config.security = Security::from_settings(&SecuritySettings {
            protocol: self.security_protocol.clone(),
            sasl_mechanism: self.sasl_mechanism.clone(),
            sasl_username: self.sasl_username.clone(),
            sasl_password: self.sasl_password.clone(),
            tls_ca_path: self.tls_ca.clone(),
        })
        .map_err(|e| e.to_string())?;
        Ok(config)
    }
}
