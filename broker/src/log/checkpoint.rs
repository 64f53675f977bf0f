//! The two small files that tell recovery how much to trust:
//!
//! - `recovery-point`: text `relay-recovery-point 1\n<offset>\n`, written
//!   atomically (temporary file, fsync, rename, fsync of the directory) after
//!   the segments below `<offset>` were fsynced. Segments wholly below it are
//!   not rescanned after a crash. A missing or unreadable file means 0: scan all.
//! - `clean-shutdown`: empty marker written last by a clean close. When it is
//!   present on open, indexes are checked but the log is not rescanned. It is
//!   removed (and the removal made durable) before the log accepts a write.

use crate::log::error::{io_error, LogError, Result};
use crate::log::file_names::{CLEAN_SHUTDOWN_FILE, RECOVERY_POINT_FILE};
use relay_proto::durable_file;
use std::path::Path;

const RECOVERY_POINT_HEADER: &str = "relay-recovery-point 1";

/// fsyncs a directory so that creations, renames and removals in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    durable_file::sync_dir(dir).map_err(from_durable)
}

/// Writes `contents` to `dir/name` so that a crash leaves either the old file
/// or the new one ([`relay_proto::durable_file`]).
pub fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> Result<()> {
    durable_file::write_atomically(dir, name, contents).map_err(from_durable)
}

/// Creates `dir` and its missing parents durably ([`durable_file::create_dir_all`]).
pub fn create_dir_all(dir: &Path) -> Result<()> {
    durable_file::create_dir_all(dir).map_err(from_durable)
}

/// Renames `from` to `to` durably (both parents fsynced).
pub fn rename(from: &Path, to: &Path) -> Result<()> {
    durable_file::rename(from, to).map_err(from_durable)
}

fn from_durable(error: durable_file::DurableFileError) -> LogError {
    LogError::Io {
        operation: error.step,
        path: error.path,
        source: error.source,
    }
}

pub fn write_recovery_point(dir: &Path, offset: i64) -> Result<()> {
    write_atomically(
        dir,
        RECOVERY_POINT_FILE,
        format!("{RECOVERY_POINT_HEADER}\n{offset}\n").as_bytes(),
    )
}

/// The stored recovery point; 0 (scan everything) when missing or unreadable.
pub fn read_recovery_point(dir: &Path) -> i64 {
    let path = dir.join(RECOVERY_POINT_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return 0;
    };
    let mut lines = text.lines();
    match (lines.next(), lines.next().map(str::parse::<i64>)) {
        (Some(RECOVERY_POINT_HEADER), Some(Ok(offset))) if offset >= 0 => offset,
        _ => {
            tracing::warn!(path = %path.display(), "unreadable recovery point; recovering every segment");
            0
        }
    }
}

pub fn mark_clean_shutdown(dir: &Path) -> Result<()> {
    write_atomically(dir, CLEAN_SHUTDOWN_FILE, b"")
}

/// Whether the last close was clean; removes the marker durably either way.
pub fn take_clean_shutdown(dir: &Path) -> Result<bool> {
    let path = dir.join(CLEAN_SHUTDOWN_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(true)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(io_error("remove", &path)(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_point_round_trips_and_garbage_means_zero() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_recovery_point(dir.path()), 0);
        write_recovery_point(dir.path(), 4711).unwrap();
        assert_eq!(read_recovery_point(dir.path()), 4711);
        std::fs::write(dir.path().join(RECOVERY_POINT_FILE), "garbage").unwrap();
        assert_eq!(read_recovery_point(dir.path()), 0);
    }

    #[test]
    fn clean_marker_is_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!take_clean_shutdown(dir.path()).unwrap());
        mark_clean_shutdown(dir.path()).unwrap();
        assert!(take_clean_shutdown(dir.path()).unwrap());
        assert!(!take_clean_shutdown(dir.path()).unwrap());
    }
}
