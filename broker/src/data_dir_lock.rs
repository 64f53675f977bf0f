//! One broker per data directory: an exclusive lock on `<data_dir>/lock`,
//! held for the broker's life (the OS releases it when the process dies, so
//! a kill -9 leaves nothing to clean up). A second broker on the same
//! directory would treat the first one's partitions as orphans and set them
//! aside, losing acknowledged records; it is refused instead, naming the
//! holder's pid.

use crate::error::BrokerError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The lock file's name in the data directory.
pub const LOCK_FILE_NAME: &str = "lock";

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock, or says which process holds it.
    pub fn acquire(data_dir: &Path) -> Result<Self, BrokerError> {
        let path = data_dir.join(LOCK_FILE_NAME);
        let io = |error: std::io::Error| BrokerError::Config(format!("cannot lock {}: {error}", path.display()));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(io)?;
                file.rewind().map_err(io)?;
                writeln!(file, "{}", std::process::id()).map_err(io)?;
                Ok(Self { _file: file })
            }
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Err(BrokerError::Config(format!(
                    "data_dir {} is in use by another broker (pid {}); give each broker its own data_dir",
                    data_dir.display(),
                    holder.trim()
                )))
            }
            Err(TryLockError::Error(error)) => Err(io(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = std::env::temp_dir().join(format!("relay-data-dir-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = DataDirLock::acquire(&dir).unwrap();
        let error = DataDirLock::acquire(&dir).unwrap_err().to_string();
        assert!(error.contains(&format!("pid {}", std::process::id())), "{error}");
        drop(first);
        assert!(DataDirLock::acquire(&dir).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
