//! The sender's registry: for each file it has read (by device and inode),
//! the fingerprint of its first bytes and the position up to which every
//! line is acknowledged by the broker. Positions only move after the ack;
//! the file is replaced atomically (write, fsync, rename, fsync directory),
//! so after any crash it holds positions that were all acknowledged.
//!
//! Layout of `<state_dir>/registry` (text, one file per line):
//! ```text
//! relay-sender-registry 1
//! <device> <inode> <fingerprint bytes> <fingerprint crc> <acked position> <path>
//! ```

use super::identity::{FileKey, Fingerprint};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const HEADER: &str = "relay-sender-registry 1";
pub const FILE_NAME: &str = "registry";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub fingerprint: Fingerprint,
    pub acked_position: u64,
    pub path: PathBuf,
}

pub struct Registry {
    dir: PathBuf,
    entries: Mutex<BTreeMap<FileKey, Entry>>,
    dirty: Mutex<bool>,
}

impl Registry {
    /// Loads `<state_dir>/registry`; a missing file is an empty registry, an
    /// unreadable one an error (starting over would resend everything).
    pub fn open(state_dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| format!("cannot create state dir {}: {e}", state_dir.display()))?;
        let path = state_dir.join(FILE_NAME);
        let mut entries = BTreeMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let mut lines = text.lines();
                if lines.next() != Some(HEADER) {
                    return Err(format!("{} is not a sender registry (bad header)", path.display()));
                }
                for (number, line) in lines.enumerate() {
                    let bad = || format!("{} line {} is malformed: {line:?}", path.display(), number + 2);
                    let fields: Vec<&str> = line.splitn(6, ' ').collect();
                    if fields.len() != 6 {
                        return Err(bad());
                    }
                    let number = |i: usize| fields[i].parse::<u64>().map_err(|_| bad());
                    let key = FileKey {
                        device: number(0)?,
                        inode: number(1)?,
                    };
                    let fingerprint = Fingerprint {
                        bytes: number(2)?,
                        crc: fields[3].parse().map_err(|_| bad())?,
                    };
                    entries.insert(
                        key,
                        Entry {
                            fingerprint,
                            acked_position: number(4)?,
                            path: PathBuf::from(fields[5]),
                        },
                    );
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
        }
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
    pub fn save(&self) -> Result<(), String> {
        {
            let mut dirty = self.dirty.lock();
            if !*dirty {
                return Ok(());
            }
            *dirty = false;
        }
        let mut text = format!("{HEADER}\n");
        for (key, entry) in self.entries.lock().iter() {
            text.push_str(&format!(
                "{} {} {} {} {} {}\n",
                key.device,
                key.inode,
                entry.fingerprint.bytes,
                entry.fingerprint.crc,
                entry.acked_position,
                entry.path.display()
            ));
        }
        let result = write_atomically(&self.dir, FILE_NAME, text.as_bytes());
        if result.is_err() {
            *self.dirty.lock() = true;
        }
        result
    }
}

fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> Result<(), String> {
    let temporary = dir.join(format!("{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temporary, dir.join(name))?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| format!("cannot save the registry in {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_round_trips_and_rejects_garbage() {
        let dir = tempfile_dir();
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
        assert!(Registry::open(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("relay-registry-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
