//! Replacing a small state file so that a crash at any instant leaves either
//! the old contents or the new ones, never a mix: write a temporary file,
//! fsync it, rename it over the old one, fsync the directory (the rename is
//! only durable once the directory entry is). The one implementation, used by
//! the broker's checkpoints, topic files and metadata, and by the sender's
//! registry.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Suffix of the temporary file written next to the target.
pub const TEMPORARY_SUFFIX: &str = ".tmp";

/// Which step of a replacement failed, on which path.
#[derive(Debug, thiserror::Error)]
#[error("cannot {step} {path}: {source}")]
pub struct DurableFileError {
    /// `create`, `write`, `fsync`, `rename into` or `fsync directory`.
    pub step: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn at(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DurableFileError {
    let path = path.to_owned();
    move |source| DurableFileError { step, path, source }
}

/// fsyncs a directory so that creations, renames and removals in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<(), DurableFileError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(at("fsync directory", dir))
}

/// Atomically replaces `dir/name` with `contents`.
pub fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> Result<(), DurableFileError> {
    let temporary = dir.join(format!("{name}{TEMPORARY_SUFFIX}"));
    let path = dir.join(name);
    let mut file = std::fs::File::create(&temporary).map_err(at("create", &temporary))?;
    file.write_all(contents).map_err(at("write", &temporary))?;
    file.sync_all().map_err(at("fsync", &temporary))?;
    std::fs::rename(&temporary, &path).map_err(at("rename into", &path))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_leaves_only_the_new_contents() {
        let dir = std::env::temp_dir().join(format!("relay-durable-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        write_atomically(&dir, "state", b"old").unwrap();
        write_atomically(&dir, "state", b"new contents").unwrap();
        assert_eq!(std::fs::read(dir.join("state")).unwrap(), b"new contents");
        assert!(!dir.join(format!("state{TEMPORARY_SUFFIX}")).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_names_the_step_and_path() {
        let dir = std::env::temp_dir().join(format!("relay-durable-missing-{}", std::process::id()));
        let error = write_atomically(&dir, "state", b"x").unwrap_err();
        assert_eq!(error.step, "create");
        assert_eq!(error.path, dir.join("state.tmp"));
    }
}
