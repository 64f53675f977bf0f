//! [`SupervisorError`], the one error type of this layer: which role failed
//! and the error of the library beneath, kept whole so the command can choose
//! its exit code ([`SupervisorError::is_usage`], [`SupervisorError::is_unreachable`]).

use relay_broker::broker::BrokerError;
use relay_client::ClientError;
use relay_loader::loader::LoaderError;
use relay_loader::sink::SinkError;
use relay_sender::SenderError;

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The config file or flags are wrong.
    #[error("{0}")]
    Config(String),
    #[error("metrics endpoint: {0}")]
    Metrics(String),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("[[send]] for topic {topic}: {source}")]
    Sender {
        topic: String,
        #[source]
        source: SenderError,
    },
    #[error("[[load]] {table}: {source}")]
    Loader {
        table: String,
        #[source]
        source: LoaderError,
    },
    /// The broker refused the logged-in user an operation this role needs.
    #[error(
        "{role}: user {user} is not authorized: {source}; the broker's [[broker.grants]] decide what each user \
         may do (roles sender, loader and admin: see config.toml.example). Stopped, nothing skipped."
    )]
    NotAuthorized {
        role: String,
        /// Quoted, or "(none: no SASL)".
        user: String,
        #[source]
        source: ClientError,
    },
    /// A task of the process (the event generator) failed or panicked.
    #[error("{role}: {reason}")]
    Task { role: String, reason: String },
    #[error("{role} did not stop within {seconds} s of the stop signal; exiting without it ({consequence})")]
    StopTimeout {
        role: String,
        seconds: u64,
        consequence: &'static str,
    },
}

pub type Result<T, E = SupervisorError> = std::result::Result<T, E>;

/// [`SupervisorError::NotAuthorized`] when `error` is the broker refusing
/// `user` (named in the message), for `role`; `None` for any other error.
pub fn not_authorized(
    role: impl FnOnce() -> String,
    user: Option<&str>,
    error: Option<&ClientError>,
) -> Option<SupervisorError> {
    let error = error.filter(|e| e.is_not_authorized())?;
    Some(SupervisorError::NotAuthorized {
        role: role(),
        user: user.map_or_else(|| "(none: no SASL)".to_owned(), |u| format!("{u:?}")),
        source: error.copy_for_delivery(),
    })
}

impl SupervisorError {
    /// A mistake in the configuration, flags, credentials or warehouse setup:
    /// fix and rerun. Ask [`Self::is_unreachable`] first.
    pub fn is_usage(&self) -> bool {
        match self {
            Self::Config(_) | Self::Metrics(_) | Self::NotAuthorized { .. } => true,
            // A rejects file or registry that cannot be written is the disk's trouble, not the config's.
            Self::Sender { source, .. } => {
                !matches!(source, SenderError::Rejects { .. } | SenderError::SaveRegistry { .. })
            }
            Self::Broker(BrokerError::Config(_) | BrokerError::Security(_)) => true,
            Self::Client(error)
            | Self::Loader {
                source: LoaderError::Client(error),
                ..
            } => matches!(
                error,
                ClientError::ClusterMismatch { .. }
                    | ClientError::Authentication { .. }
                    | ClientError::Tls { .. }
                    | ClientError::Invalid(_)
            ),
            Self::Loader { source, .. } => matches!(source, LoaderError::Config(_) | LoaderError::Sink(_)),
            _ => false,
        }
    }

    /// The broker or the warehouse cannot be reached.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Client(error)
            | Self::Loader {
                source: LoaderError::Client(error),
                ..
            } => error.is_unreachable(),
            Self::Loader {
                source: LoaderError::Sink(SinkError::Unavailable(_)),
                ..
            } => true,
            _ => false,
        }
    }
}
