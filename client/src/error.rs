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

    /// Whether the broker refused a record as larger than it accepts
    /// (MESSAGE_TOO_LARGE or RECORD_LIST_TOO_LARGE, Kafka's
    /// `max.message.bytes`). The producer splits a refused batch of several
    /// records and sends the halves again, so a delivery fails with this only
    /// for a single record too large on its own: sending it again cannot help.
    pub fn is_record_too_large(&self) -> bool {
        matches!(
            self,
            Self::Broker {
                error: ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge,
                ..
            }
        )
    }

    /// A copy for another record's delivery when one error fails a whole
    /// batch: broker errors and a cluster mismatch keep their kind (so
    /// [`Self::is_record_too_large`], [`Self::is_retriable`] and a sender's
    /// "wrong cluster: stop" answer as for the original); the others
    /// carry an `io::Error` that cannot be copied and become [`Self::Invalid`]
    /// with the same message.
    pub fn copy_for_delivery(&self) -> Self {
        match self {
            Self::Broker { context, error } => Self::Broker {
                context: context.clone(),
                error: *error,
            },
            Self::ClusterMismatch { expected, actual } => Self::ClusterMismatch {
                expected: expected.clone(),
                actual: actual.clone(),
            },
            other => Self::Invalid(other.to_string()),
        }
    }

    /// Whether the broker refused the logged-in user this operation (its
    /// grants, Kafka's ACLs): asking again cannot help; the grants must change.
    pub fn is_not_authorized(&self) -> bool {
        matches!(
            self,
            Self::Broker {
                error: ResponseError::TopicAuthorizationFailed
                    | ResponseError::GroupAuthorizationFailed
                    | ResponseError::ClusterAuthorizationFailed
                    | ResponseError::TransactionalIdAuthorizationFailed,
                ..
            }
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_too_large_broker_answers_are_record_too_large() {
        assert!(ClientError::broker("producing to t/0", ResponseError::MessageTooLarge).is_record_too_large());
        assert!(ClientError::broker("producing to t/0", ResponseError::RecordListTooLarge).is_record_too_large());
        assert!(!ClientError::broker("producing to t/0", ResponseError::CorruptMessage).is_record_too_large());
        assert!(!ClientError::Invalid("record too large".into()).is_record_too_large());
    }

    #[test]
    fn delivery_copies_keep_broker_kinds_and_every_message() {
        let too_large = ClientError::broker("producing to t/0", ResponseError::MessageTooLarge);
        let copy = too_large.copy_for_delivery();
        assert!(copy.is_record_too_large());
        assert_eq!(copy.to_string(), too_large.to_string());
        let lost = ClientError::Disconnected {
            address: "b:9092".into(),
            reason: "reset".into(),
        };
        let copy = lost.copy_for_delivery();
        assert!(matches!(&copy, ClientError::Invalid(message) if message == "connection to b:9092 lost: reset"));
    }
}
