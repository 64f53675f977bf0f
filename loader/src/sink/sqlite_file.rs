//! The SQLite warehouse's file on disk: its directory, made at open like
//! data_dir; its identity (device and inode) checked before every batch, so
//! a file deleted or replaced under a running loader stops it instead of
//! taking commits into an inode no reader will ever see again (and, after a
//! restart, loading everything again into a new file without a word); and
//! what an error on it means to an operator: the path and the likely fix.

use super::{Result, SinkError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The file the loader opened, as the path named it then.
#[derive(Debug, Clone)]
pub struct WarehouseFile {
    path: PathBuf,
    device: u64,
    inode: u64,
}

/// Makes the directory `path` goes in (a fresh host with a warehouse under
/// a directory nobody made yet), naming it when that fails.
pub fn make_parent(path: &str) -> Result<()> {
    let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    std::fs::create_dir_all(parent).map_err(|error| {
        SinkError::Setup(format!(
            "SQLite {path}: cannot make its directory {}: {error} (make it, or give this user write access to its parent)",
            parent.display()
        ))
    })
}

impl WarehouseFile {
    /// The identity of the file at `path`, just opened.
    pub fn identify(path: &str) -> Result<Self> {
        let metadata = std::fs::metadata(path).map_err(|error| {
            SinkError::Setup(format!(
                "SQLite {path}: cannot read the opened file's identity: {error}"
            ))
        })?;
        Ok(Self {
            path: PathBuf::from(path),
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }

    /// Whether `path` still leads to the opened file: a file deleted or
    /// replaced is [`SinkError::Vanished`] (the loader stops before
    /// committing anything into it).
    pub fn check(&self) -> Result<()> {
        let path = self.path.display();
        let found = match std::fs::metadata(&self.path) {
            Ok(metadata) => (metadata.dev(), metadata.ino()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(SinkError::Vanished(format!(
                    "SQLite {path} was deleted while the loader ran; {VANISHED_ADVICE}"
                )))
            }
            Err(error) => {
                return Err(SinkError::Unavailable(format!(
                    "SQLite {path}: cannot check the file is still there: {error}"
                )))
            }
        };
        if found != (self.device, self.inode) {
            return Err(SinkError::Vanished(format!(
                "SQLite {path} is another file than the one the loader opened (device {} inode {} now, {} {} at open): \
                 it was replaced while the loader ran; {VANISHED_ADVICE}",
                found.0, found.1, self.device, self.inode
            )));
        }
        Ok(())
    }

    /// `message` (an outage's) with the path it happened to.
    pub fn name(&self, error: SinkError) -> SinkError {
        match error {
            SinkError::Unavailable(message) if !message.starts_with("SQLite ") => {
                SinkError::Unavailable(format!("SQLite {}: {message}", self.path.display()))
            }
            other => other,
        }
    }
}

/// What to do about a warehouse file that went away under the loader.
const VANISHED_ADVICE: &str = "stopped before committing into it (rows committed into a deleted file are lost to \
     every reader). Put the file back and start the loader again, or start it on a new file: it then loads what the \
     broker still holds, from `from`";

/// The likely fix for an SQLite error, as a parenthesis to append ("" when
/// the error says it all).
pub fn likely_fix(error: &rusqlite::Error) -> &'static str {
    use rusqlite::ErrorCode;
    match error.sqlite_error_code() {
        Some(ErrorCode::ReadOnly) => {
            " (the database is read-only for this user: the loader writes the file, its -wal and -shm files and \
             their directory; check their owner and mode, and that the file system is mounted read-write)"
        }
        Some(ErrorCode::SystemIoFailure) => {
            " (check that this user may write the file, its -wal and -shm files and their directory (a read-only \
             file shows as this), that the disk has space, and the kernel log for disk errors)"
        }
        Some(ErrorCode::DiskFull) => " (the disk is full: free space on the warehouse's file system)",
        Some(ErrorCode::CannotOpen) => {
            " (cannot open the file: check that its directory exists and that this user may read and write there)"
        }
        Some(ErrorCode::PermissionDenied) => " (permission denied: check the file's owner and mode)",
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            " (the file is not a healthy SQLite database: restore it from a backup, or point the loader at a new file)"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_or_replaced_file_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        std::fs::write(&path, b"one").unwrap();
        // Held open (as SQLite holds it), the old inode is not reused by the new file.
        let _held = std::fs::File::open(&path).unwrap();
        let file = WarehouseFile::identify(path.to_str().unwrap()).unwrap();
        file.check().unwrap();
        std::fs::remove_file(&path).unwrap();
        let deleted = file.check().unwrap_err().to_string();
        assert!(deleted.contains("was deleted") && deleted.contains("w.db"), "{deleted}");
        std::fs::write(dir.path().join("other"), b"two").unwrap();
        std::fs::rename(dir.path().join("other"), &path).unwrap();
        let replaced = file.check().unwrap_err().to_string();
        assert!(replaced.contains("another file"), "{replaced}");
    }

    #[test]
    fn the_directory_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/w.db");
        make_parent(path.to_str().unwrap()).unwrap();
        assert!(dir.path().join("a/b").is_dir());
        make_parent("w.db").unwrap();
    }
}
