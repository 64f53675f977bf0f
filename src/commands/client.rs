//! What the client commands share: a runtime, connecting to the cluster
//! (with the expected cluster id), and turning errors into a message on
//! stderr and an exit code.

use crate::{exit, overrides};
use relay_broker::error::BrokerError;
use relay_client::{ClientError, ClientSettings, Cluster};
use relay_supervisor::{RelayConfig, SupervisorError};
use std::path::Path;
use std::sync::Arc;

pub use relay_client::settings::parse_start_position as parse_position;

/// The runtime of a client command; also starts logging (warnings by default,
/// so retries and rebalances are visible without drowning the output).
pub fn runtime() -> tokio::runtime::Runtime {
    relay_supervisor::logging::init_logging_at("warn");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Makes `flags` what `command` connects with: the flags over `--config`'s
/// `[client]`, else its `[broker] listen` ([`overrides::client`]). `Err`:
/// the exit code, after saying why the file cannot be used.
pub fn with_config(command: &str, flags: &mut ClientSettings, config: Option<&Path>) -> Result<(), i32> {
    match RelayConfig::load(config) {
        Ok(file) => {
            *flags = overrides::client(flags, &file);
            Ok(())
        }
        Err(error) => {
            eprintln!("relay {command}: {error}");
            Err(exit::USAGE)
        }
    }
}

pub async fn connect(settings: &ClientSettings, client_id: &str) -> Result<Arc<Cluster>, ClientError> {
    Cluster::connect(settings.cluster_config(client_id)?).await
}

/// Prints `error` for `command` and returns its exit code.
pub fn fail(command: &str, error: &ClientError) -> i32 {
    if error.is_not_authorized() {
        eprintln!(
            "relay {command}: {error}: the user this command logs in as (--sasl-username) is not granted this \
             by the broker's [[broker.grants]]; `relay status` shows what it may do"
        );
        return exit::USAGE;
    }
    eprintln!("relay {command}: {error}");
    match error {
        error if error.is_unreachable() => exit::UNREACHABLE,
        ClientError::ClusterMismatch { .. }
        | ClientError::Authentication { .. }
        | ClientError::Tls { .. }
        | ClientError::Invalid(_) => exit::USAGE,
        _ => exit::FAILURE,
    }
}

/// Prints each of a role command's errors and returns the exit code of the
/// first: 3 unreachable, 2 usage (a listen address that cannot be had is
/// one: another address is the fix), else 1 (0 when there is none).
pub fn report(command: &str, errors: &[SupervisorError]) -> i32 {
    for error in errors {
        eprintln!("relay {command}: {error}");
        if let SupervisorError::Broker(BrokerError::Listen { source, .. }) = error {
            if source.kind() == std::io::ErrorKind::AddrInUse {
                eprintln!(
                    "relay {command}: another process (another relay?) listens there; stop it, or give this broker \
                     another address with --listen or [broker] listen"
                );
            }
        }
    }
    errors.first().map_or(exit::SUCCESS, |error| {
        if error.is_unreachable() {
            exit::UNREACHABLE
        } else if error.is_usage() || matches!(error, SupervisorError::Broker(BrokerError::Listen { .. })) {
            exit::USAGE
        } else {
            exit::FAILURE
        }
    })
}
