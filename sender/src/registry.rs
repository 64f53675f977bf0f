//! The sender's registry in memory: for each file it has read, its
//! fingerprint, the position up to which every line is acknowledged by the
//! broker, and the fingerprint of the bytes just before that position (a
//! rewrite in place with the same first bytes is told by it). Positions only move after the ack; [`Registry::save`] replaces the
//! file atomically, so after any crash it holds positions that were all
//! acknowledged. The file's layout is relay-proto's ([`relay_proto::registry`]),
//! shared with `relay status`.

use crate::error::{Result, SenderError};
use crate::identity::{self, FileId, FileKey, Fingerprint};
use parking_lot::Mutex;
use relay_proto::durable_file::write_atomically;
use relay_proto::registry::{self, Entries};
use std::path::{Path, PathBuf};

pub use relay_proto::registry::{Entry, Previous, FILE_NAME};

/// The lock file in a state directory: one sender per directory.
pub const LOCK_FILE_NAME: &str = "lock";

pub struct Registry {
    dir: PathBuf,
    /// Held (locked) for the registry's life: two senders sharing a state
    /// directory would overwrite each other's positions and read every file
    /// twice under two identities.
    _lock: std::fs::File,
    entries: Mutex<Entries>,
    dirty: Mutex<bool>,
    /// One save at a time: saves share the temporary file.
    saving: Mutex<()>,
}

impl Registry {
    /// Loads `<state_dir>/registry`; a missing file is an empty registry, an
    /// unreadable one an error (starting over would resend everything).
    pub fn open(state_dir: &Path) -> Result<Self> {
        relay_proto::durable_file::create_dir_all(state_dir).map_err(|e| SenderError::StateDir {
            path: e.path,
            source: e.source,
        })?;
        let lock = lock(state_dir)?;
        // A registry renamed in just before a process crash is still only in
        // the page cache: make the directory as it is now durable before
        // sending from the positions it holds.
        relay_proto::durable_file::sync_dir(state_dir).map_err(|e| SenderError::StateDir {
            path: e.path,
            source: e.source,
        })?;
        let entries = registry::read(state_dir, identity::new_file_id)?.unwrap_or_default();
        // Saved again at the first checkpoint: a registry of an earlier
        // version is upgraded in place (its files keep their positions).
        let dirty = !entries.is_empty();
        Ok(Self {
            dir: state_dir.to_path_buf(),
            _lock: lock,
            entries: Mutex::new(entries),
            dirty: Mutex::new(dirty),
            saving: Mutex::new(()),
        })
    }

    pub fn get(&self, key: FileKey) -> Option<Entry> {
        self.entries.lock().get(&key).cloned()
    }

    /// A file's acknowledged position and fingerprint, without copying its entry.
    pub fn acked_at(&self, key: FileKey) -> Option<(u64, Fingerprint)> {
        self.entries
            .lock()
            .get(&key)
            .map(|entry| (entry.acked_position, entry.fingerprint))
    }

    pub fn set(&self, key: FileKey, entry: Entry) {
        self.entries.lock().insert(key, entry);
        *self.dirty.lock() = true;
    }

    /// Moves a file's acknowledged position, with the fingerprint of the
    /// bytes just before it (`None`: could not be read, so not checked).
    pub fn acknowledge(&self, key: FileKey, position: u64, before: Option<Fingerprint>) {
        let mut entries = self.entries.lock();
        if let Some(entry) = entries.get_mut(&key) {
            entry.acked_position = position;
            entry.before = before;
            *self.dirty.lock() = true;
        }
    }

    /// A file truncated in place holds new content under a new identity (its
    /// old content's identity went to the copy): positions restart at 0.
    /// Called in acknowledgement order, after the old content's last ack.
    pub fn reset(&self, key: FileKey, file_id: FileId, fingerprint: Option<Fingerprint>) {
        if let Some(entry) = self.entries.lock().get_mut(&key) {
            // The old content stays known (durably, with the next save) for
            // its copy, found now or after a restart.
            entry.previous = Some(Previous {
                fingerprint: entry.fingerprint,
                acked_position: entry.acked_position,
                file_id: entry.file_id,
                before: entry.before,
            });
            entry.file_id = file_id;
            entry.acked_position = 0;
            entry.before = Some(Fingerprint { bytes: 0, crc: 0 });
            if let Some(fingerprint) = fingerprint {
                entry.fingerprint = fingerprint;
            }
            *self.dirty.lock() = true;
        }
    }

    /// The previous content of some file that `is_copy` says a file copies
    /// (its first bytes, and the bytes before its position), taken (a copy
    /// inherits it once).
    pub fn take_previous(&self, is_copy: impl Fn(&Previous, &Path) -> bool) -> Option<Previous> {
        let mut entries = self.entries.lock();
        let entry = entries
            .values_mut()
            .find(|e| e.previous.as_ref().is_some_and(|previous| is_copy(previous, &e.path)))?;
        *self.dirty.lock() = true;
        entry.previous.take()
    }

    /// Records where a file is now, after a rename.
    pub fn moved(&self, key: FileKey, path: &Path) {
        if let Some(entry) = self.entries.lock().get_mut(&key) {
            entry.path = path.to_owned();
            *self.dirty.lock() = true;
        }
    }

    /// Records where a known file is now, when it was renamed since.
    pub fn moved_if_elsewhere(&self, key: FileKey, path: &Path) {
        if let Some(entry) = self.entries.lock().get_mut(&key) {
            if entry.path != path {
                entry.path = path.to_owned();
                *self.dirty.lock() = true;
            }
        }
    }

    /// Records a longer fingerprint as a short file grows (or a new one after a rewrite).
    pub fn refresh_fingerprint(&self, key: FileKey, fingerprint: Fingerprint) {
        if let Some(entry) = self.entries.lock().get_mut(&key) {
            if entry.fingerprint != fingerprint {
                entry.fingerprint = fingerprint;
                *self.dirty.lock() = true;
            }
        }
    }

    pub fn remove(&self, key: FileKey) {
        if self.entries.lock().remove(&key).is_some() {
            *self.dirty.lock() = true;
        }
    }

    pub fn entries(&self) -> Vec<(FileKey, Entry)> {
        self.entries.lock().iter().map(|(k, e)| (*k, e.clone())).collect()
    }

    /// The entries `wanted` picks, copied (the others are not: a check per
    /// new file over 10,000 entries copied all of them each time).
    pub fn entries_where(&self, wanted: impl Fn(FileKey, &Entry) -> bool) -> Vec<(FileKey, Entry)> {
        let entries = self.entries.lock();
        entries
            .iter()
            .filter(|(k, e)| wanted(**k, e))
            .map(|(k, e)| (*k, e.clone()))
            .collect()
    }

    /// Writes the registry if it changed since the last save.
    pub fn save(&self) -> Result<()> {
        let _one_at_a_time = self.saving.lock();
        {
            let mut dirty = self.dirty.lock();
            if !*dirty {
                return Ok(());
            }
            *dirty = false;
        }
        let text = registry::encode(&self.entries.lock());
        write_atomically(&self.dir, FILE_NAME, text.as_bytes()).map_err(|source| {
            *self.dirty.lock() = true;
            SenderError::SaveRegistry {
                dir: self.dir.clone(),
                source,
            }
        })
    }
}

/// Takes the state directory's lock, or says who holds it.
fn lock(state_dir: &Path) -> Result<std::fs::File> {
    let path = state_dir.join(LOCK_FILE_NAME);
    let io = |source| SenderError::StateDir {
        path: path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(SenderError::StateDirInUse {
            path: state_dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(io(source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_positions_survive_a_reopen_and_a_second_sender_or_garbage_is_refused() {
        let dir = std::env::temp_dir().join(format!("relay-registry-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let registry = Registry::open(&dir).unwrap();
        let key = FileKey { device: 1, inode: 2 };
        registry.set(
            key,
            Entry {
                fingerprint: Fingerprint { bytes: 10, crc: 99 },
                acked_position: 0,
                file_id: FileId(42),
                previous: None,
                before: None,
                path: "/a b/c.log".into(),
            },
        );
        registry.acknowledge(key, 4711, None);
        registry.save().unwrap();
        assert!(
            matches!(Registry::open(&dir), Err(SenderError::StateDirInUse { .. })),
            "a second registry on one state directory must be refused"
        );
        drop(registry);
        let reopened = Registry::open(&dir).unwrap();
        assert_eq!(reopened.get(key).unwrap().acked_position, 4711);
        assert_eq!(reopened.get(key).unwrap().path, PathBuf::from("/a b/c.log"));
        assert_eq!(reopened.get(key).unwrap().file_id, FileId(42));
        drop(reopened);
        std::fs::write(dir.join(FILE_NAME), "garbage").unwrap();
        assert!(matches!(Registry::open(&dir), Err(SenderError::Registry(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
