//! The sender's registry in memory: for each file it has read, its
//! fingerprint and the position up to which every line is acknowledged by the
//! broker. Positions only move after the ack; [`Registry::save`] replaces the
//! file atomically, so after any crash it holds positions that were all
//! acknowledged. The file's layout is relay-proto's ([`relay_proto::registry`]),
//! shared with `relay status`.

use crate::error::{Result, SenderError};
use crate::identity::{FileKey, Fingerprint};
use parking_lot::Mutex;
use relay_proto::durable_file::write_atomically;
use relay_proto::registry::{self, Entries};
use std::path::{Path, PathBuf};

pub use relay_proto::registry::{Entry, FILE_NAME};

pub struct Registry {
    dir: PathBuf,
    entries: Mutex<Entries>,
    dirty: Mutex<bool>,
}

impl Registry {
    /// Loads `<state_dir>/registry`; a missing file is an empty registry, an
    /// unreadable one an error (starting over would resend everything).
    pub fn open(state_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(state_dir).map_err(|source| SenderError::StateDir {
            path: state_dir.to_owned(),
            source,
        })?;
        let entries = registry::read(state_dir)?.unwrap_or_default();
        Ok(Self {
            dir: state_dir.to_path_buf(),
            entries: Mutex::new(entries),
            dirty: Mutex::new(false),
        })
    }

    pub fn get(&self, key: FileKey) -> Option<Entry> {
        self.entries.lock().get(&key).cloned()
    }

    pub fn set(&self, key: FileKey, entry: Entry) {
        self.entries.lock().insert(key, entry);
        *self.dirty.lock() = true;
    }

    /// Moves a file's acknowledged position (and refreshes its fingerprint).
    pub fn acknowledge(&self, key: FileKey, position: u64, fingerprint: Option<Fingerprint>) {
        let mut entries = self.entries.lock();
        if let Some(entry) = entries.get_mut(&key) {
            entry.acked_position = position;
            if let Some(fingerprint) = fingerprint {
                entry.fingerprint = fingerprint;
            }
            *self.dirty.lock() = true;
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

    /// Writes the registry if it changed since the last save.
    pub fn save(&self) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_positions_survive_a_reopen_and_garbage_is_refused() {
        let dir = std::env::temp_dir().join(format!("relay-registry-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let registry = Registry::open(&dir).unwrap();
        let key = FileKey { device: 1, inode: 2 };
        registry.set(
            key,
            Entry {
                fingerprint: Fingerprint { bytes: 10, crc: 99 },
                acked_position: 0,
                path: "/a b/c.log".into(),
            },
        );
        registry.acknowledge(key, 4711, None);
        registry.save().unwrap();
        let reopened = Registry::open(&dir).unwrap();
        assert_eq!(reopened.get(key).unwrap().acked_position, 4711);
        assert_eq!(reopened.get(key).unwrap().path, PathBuf::from("/a b/c.log"));
        std::fs::write(dir.join(FILE_NAME), "garbage").unwrap();
        assert!(matches!(Registry::open(&dir), Err(SenderError::Registry(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
