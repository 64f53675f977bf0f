//! The broker's top-level error: what can stop [`crate::broker::Broker`] from
//! starting (bad configuration, an address that cannot be bound, storage,
//! topics or security that cannot be opened). Below `broker` and
//! `data_dir_lock`, which both return it.

use crate::log::LogError;
use crate::security::SecurityError;
use crate::topics::TopicError;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] LogError),
    #[error(transparent)]
    Topics(#[from] TopicError),
    #[error(transparent)]
    Security(#[from] SecurityError),
}
