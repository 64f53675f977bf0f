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

/// Creates `dir` and any missing parents so that they survive a crash: after
/// each directory it creates, its parent is fsynced (a new directory's entry
/// is only durable once its parent is). An existing `dir` is left as it is.
pub fn create_dir_all(dir: &Path) -> Result<(), DurableFileError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(at("create directory", dir)(e)),
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    sync_dir(parent)
}

/// Renames `from` to `to` (in the same directory or not) and fsyncs both
/// parents, so that the move survives a crash.
pub fn rename(from: &Path, to: &Path) -> Result<(), DurableFileError> {
    std::fs::rename(from, to).map_err(at("rename into", to))?;
    let parent = |p: &Path| {
        p.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned()
    };
    let (old_parent, new_parent) = (parent(from), parent(to));
    sync_dir(&new_parent)?;
    if old_parent != new_parent {
        sync_dir(&old_parent)?;
    }
    Ok(())
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
    fn nested_directories_are_created_and_an_existing_one_is_fine() {
        let dir = std::env::temp_dir().join(format!("relay-durable-dirs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        create_dir_all(&dir.join("a/b/c")).unwrap();
        assert!(dir.join("a/b/c").is_dir());
        create_dir_all(&dir.join("a/b/c")).unwrap();
        std::fs::write(dir.join("file"), b"x").unwrap();
        let err = create_dir_all(&dir.join("file/sub")).unwrap_err();
        assert_eq!(err.step, "create directory");
        rename(&dir.join("a/b/c"), &dir.join("c")).unwrap();
        assert!(dir.join("c").is_dir() && !dir.join("a/b/c").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
