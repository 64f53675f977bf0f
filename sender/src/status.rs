//! What a sender's state directory says about its files, for `relay status`:
//! each file the registry knows, where it was, how far it is acknowledged and
//! whether it is still at that path. Reading only: it never takes the state
//! directory's lock and never writes, so it works beside a running sender.

use crate::error::Result;
use crate::identity::{FileId, FileKey};
use relay_proto::registry;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One file of a sender's registry, as `relay status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileStatus {
    /// The path the sender last read the file at.
    pub path: String,
    /// The file's size when the same file (device + inode) is still at
    /// `path`; `None` when it left it (rotated away or deleted).
    pub size: Option<u64>,
    /// The position up to which every line is acknowledged by the broker.
    pub acked_position: u64,
}

/// The files of the registry in `state_dir`, sorted by path; `None` when the
/// directory holds no registry.
pub fn file_statuses(state_dir: &Path) -> Result<Option<Vec<FileStatus>>> {
    // File ids are not shown: a version 1 registry's files need none here.
    let Some(entries) = registry::read(state_dir, || FileId(0))? else {
        return Ok(None);
    };
    let mut files: Vec<FileStatus> = entries
        .into_iter()
        .map(|(key, entry)| FileStatus {
            size: size_if_same_file(&entry.path, key),
            path: entry.path.display().to_string(),
            acked_position: entry.acked_position,
        })
        .collect();
    files.sort();
    Ok(Some(files))
}

/// The size of the file at `path` when it is the file `key` names.
fn size_if_same_file(path: &Path, key: FileKey) -> Option<u64> {
    let metadata = std::fs::metadata(path).ok()?;
    let here = FileKey {
        device: metadata.dev(),
        inode: metadata.ino(),
    };
    (here == key).then_some(metadata.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{key_of, Fingerprint};
    use crate::registry::{Entry, Registry};

    fn entry(path: &Path, acked_position: u64) -> Entry {
        Entry {
            fingerprint: Fingerprint { bytes: 0, crc: 0 },
            acked_position,
            file_id: FileId(1),
            previous: None,
            before: None,
            path: path.to_path_buf(),
        }
    }

    #[test]
    fn empty_directory_holds_no_registry() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(file_statuses(dir.path()).unwrap(), None);
    }

    #[test]
    fn file_still_at_its_path_has_a_size_and_a_moved_one_has_none() {
        let state = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let here = logs.path().join("a.log");
        std::fs::write(&here, b"one\ntwo\n").unwrap();
        let gone = logs.path().join("b.log");
        std::fs::write(&gone, b"x\n").unwrap();
        let gone_key = key_of(&std::fs::File::open(&gone).unwrap()).unwrap();
        let registry = Registry::open(state.path()).unwrap();
        registry.set(key_of(&std::fs::File::open(&here).unwrap()).unwrap(), entry(&here, 4));
        registry.set(gone_key, entry(&gone, 2));
        registry.save().unwrap();
        drop(registry);
        // Another file takes b.log's path: not the file the registry knows.
        std::fs::rename(&gone, logs.path().join("b.log.1")).unwrap();
        std::fs::write(&gone, b"new\n").unwrap();
        let files = file_statuses(state.path()).unwrap().unwrap();
        assert_eq!(
            files,
            [
                FileStatus {
                    path: here.display().to_string(),
                    size: Some(8),
                    acked_position: 4
                },
                FileStatus {
                    path: gone.display().to_string(),
                    size: None,
                    acked_position: 2
                },
            ]
        );
    }
}
