//! [`SenderError`], the one error type of the sender: what failed, on which
//! path, and why. Lines are never part of an error: a line that cannot be
//! sent goes to the rejects file instead.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("path pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: &'static str },
    #[error("no path patterns to watch")]
    NoPatterns,
    #[error("cannot create the state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state directory {path} is in use by another sender (its lock file is held); give each sender its own --state-dir")]
    StateDirInUse { path: PathBuf },
    #[error(transparent)]
    Registry(#[from] relay_proto::registry::RegistryError),
    /// Nothing can be sent to this cluster (a wrong cluster id).
    #[error("stopped, positions unchanged: {0}")]
    Fatal(#[source] relay_client::ClientError),
    /// A line that can be neither sent nor recorded: the sender stops rather
    /// than skip it (its position is not saved past it).
    #[error("cannot write the rejects file {path} for the line at {file}:{position}; stopping so that the line is not skipped: {source}")]
    Rejects {
        path: PathBuf,
        file: PathBuf,
        position: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot save the sender registry in {dir}: {source}")]
    SaveRegistry {
        dir: PathBuf,
        #[source]
        source: relay_proto::durable_file::DurableFileError,
    },
}

pub type Result<T, E = SenderError> = std::result::Result<T, E>;

impl SenderError {
    /// The client's error behind this one, if any.
    pub fn client_error(&self) -> Option<&relay_client::ClientError> {
        match self {
            Self::Fatal(error) => Some(error),
            _ => None,
        }
    }
}
