//! What the client commands share: a runtime, connecting to the cluster
//! (with the expected cluster id), parsing positions, and turning errors into
//! a message on stderr and an exit code.

use crate::cli::ClientArgs;
use crate::config_file::ClientSection;
use crate::exit;
use relay_client::consumer::StartPosition;
use relay_client::security::Security;
use relay_client::time::parse_rfc3339_ms;
use relay_client::{ClientError, Cluster, ClusterConfig};
use std::sync::Arc;

/// The runtime of a client command; also starts logging (warnings by default,
/// so retries and rebalances are visible without drowning the output).
pub fn runtime() -> tokio::runtime::Runtime {
    crate::config_file::init_logging_at("warn");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The broker when neither `--broker`, `RELAY_BROKER` nor `[client] brokers` says.
pub const BROKER_DEFAULT: &str = "127.0.0.1:9092";

/// Flags (and `RELAY_BROKER`) over the config file's `[client]` section.
pub fn with_config(args: &ClientArgs, section: &ClientSection) -> ClientArgs {
    ClientArgs {
        broker: args.broker.clone().or_else(|| section.brokers.clone()),
        expect_cluster_id: args
            .expect_cluster_id
            .clone()
            .or_else(|| section.expect_cluster_id.clone()),
        security_protocol: args
            .security_protocol
            .clone()
            .or_else(|| section.security_protocol.clone()),
        sasl_mechanism: args.sasl_mechanism.clone().or_else(|| section.sasl_mechanism.clone()),
        sasl_username: args.sasl_username.clone().or_else(|| section.sasl_username.clone()),
        sasl_password: args.sasl_password.clone().or_else(|| section.sasl_password.clone()),
        tls_ca: args.tls_ca.clone().or_else(|| section.tls_ca_path.clone()),
    }
}

pub async fn connect(args: &ClientArgs, client_id: &str) -> Result<Arc<Cluster>, ClientError> {
    let mut config = ClusterConfig::new(args.broker.as_deref().unwrap_or(BROKER_DEFAULT));
    config.client_id = client_id.to_owned();
    config.expect_cluster_id = args.expect_cluster_id.clone();
    config.security = Security::from_settings(&args.security_settings())?;
    Cluster::connect(config).await
}

/// Prints `error` for `command` and returns its exit code.
pub fn fail(command: &str, error: &ClientError) -> i32 {
    eprintln!("relay {command}: {error}");
    match error {
        error if error.is_unreachable() => exit::UNREACHABLE,
        ClientError::ClusterMismatch { .. } | ClientError::Authentication { .. } | ClientError::Tls { .. } => {
            exit::USAGE
        }
        _ => exit::FAILURE,
    }
}

/// `earliest`, `latest`, `offset:N` or `time:RFC3339`.
pub fn parse_position(text: &str) -> Result<StartPosition, String> {
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
