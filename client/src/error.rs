//! `ClientError`: what went wrong, with the broker address or topic it
//! concerns, and whether retrying can help.

use kafka_protocol::error::ResponseError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach broker at {address}: {source}; is it running, and is the address right?")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connection to {address} lost: {reason}")]
    Disconnected { address: String, reason: String },
    #[error("{api} request to {address} timed out after {timeout_ms} ms")]
    Timeout {
        address: String,
        api: &'static str,
        timeout_ms: u64,
    },
    #[error("broker {address} does not support {api} in any version this client speaks ({ours})")]
    UnsupportedVersion {
        address: String,
        api: &'static str,
        ours: String,
    },
    #[error("protocol error with {address}: {reason}")]
    Protocol { address: String, reason: String },
    #[error("{context}: {error} (Kafka error code {code})", code = error.code())]
    Broker { context: String, error: ResponseError },
    #[error(
        "connected to cluster {actual:?} but expected cluster {expected:?}; refusing to work against the wrong cluster"
    )]
    ClusterMismatch { expected: String, actual: String },
    #[error("topic {0:?} does not exist")]
    UnknownTopic(String),
    #[error("TLS with {address} failed: {reason}")]
    Tls { address: String, reason: String },
    #[error("SASL authentication with {address} failed: {reason}")]
    Authentication { address: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl ClientError {
    pub fn broker(context: impl Into<String>, error: ResponseError) -> Self {
        Self::Broker {
            context: context.into(),
            error,
        }
    }

    /// Whether the same request may succeed later (after a reconnect, a
    /// metadata refresh or a backoff).
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Disconnected { .. } | Self::Timeout { .. } => true,
            Self::Broker { error, .. } => error.is_retriable(),
            _ => false,
        }
    }

    /// Whether the broker could not be reached at all (exit code 3 in the CLI).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Disconnected { .. } | Self::Timeout { .. }
        )
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// The error for a non-zero Kafka error code, if any.
pub fn check(code: i16, context: impl FnOnce() -> String) -> Result<()> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(error) => Err(ClientError::broker(context(), error)),
    }
}
