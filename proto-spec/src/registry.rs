//! The sender's registry file, `<state_dir>/registry`: for each file the
//! sender has read, which file it is and the byte position up to which every
//! line is acknowledged by the broker. The sender writes it (atomically,
//! through [`crate::durable_file`]); `relay status` reads it to show how far
//! behind each file is. This module owns the text layout and nothing else.
//!
//! ```text
//! relay-sender-registry 1
//! <device> <inode> <fingerprint bytes> <fingerprint crc> <acked position> <path>
//! ```
//!
//! One line per file; the path is last so it may hold spaces.
//! `proto-spec/STORAGE.md` ("Sender state") gives the same layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The first line of every registry file.
pub const HEADER: &str = "relay-sender-registry 1";
/// The registry's file name inside the sender's state directory.
pub const FILE_NAME: &str = "registry";
/// Space-separated fields of an entry line.
const FIELDS: usize = 6;

/// Which file: device and inode, which survive a rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey {
    pub device: u64,
    pub inode: u64,
}

/// CRC-32C of a file's first bytes: tells a reused inode or a rewritten
/// file from the one read before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// How many leading bytes it covers (0 for an empty file).
    pub bytes: u64,
    pub crc: u32,
}

/// What the registry knows of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub fingerprint: Fingerprint,
    /// Every line before this byte position is acknowledged by the broker.
    pub acked_position: u64,
    /// Where the file was when last seen.
    pub path: PathBuf,
}

/// A registry file that cannot be read as one.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{path}: not a sender registry (the first line is not {HEADER:?})")]
    BadHeader { path: PathBuf },
    #[error("{path} line {line}: malformed entry {text:?}")]
    Malformed { path: PathBuf, line: usize, text: String },
    #[error("cannot read the sender registry {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The registry's entries, in file-key order.
pub type Entries = BTreeMap<FileKey, Entry>;

/// Renders entries as the registry file's text.
pub fn encode(entries: &Entries) -> String {
    let mut text = format!("{HEADER}\n");
    for (key, entry) in entries {
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
    text
}

/// Parses a registry file's text; `path` only names it in errors.
pub fn decode(text: &str, path: &Path) -> Result<Entries, RegistryError> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(RegistryError::BadHeader { path: path.to_owned() });
    }
    let mut entries = BTreeMap::new();
    for (index, line) in lines.enumerate() {
        let malformed = || RegistryError::Malformed {
            path: path.to_owned(),
            line: index + 2,
            text: line.to_owned(),
        };
        let fields: Vec<&str> = line.splitn(FIELDS, ' ').collect();
        if fields.len() != FIELDS {
            return Err(malformed());
        }
        let number = |i: usize| fields[i].parse::<u64>().map_err(|_| malformed());
        let key = FileKey {
            device: number(0)?,
            inode: number(1)?,
        };
        let fingerprint = Fingerprint {
            bytes: number(2)?,
            crc: fields[3].parse().map_err(|_| malformed())?,
        };
        let entry = Entry {
            fingerprint,
            acked_position: number(4)?,
            path: PathBuf::from(fields[5]),
        };
        entries.insert(key, entry);
    }
    Ok(entries)
}

/// Reads `<state_dir>/registry`: `Ok(None)` when there is none yet.
pub fn read(state_dir: &Path) -> Result<Option<Entries>, RegistryError> {
    let path = state_dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => decode(&text, &path).map(Some),
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RegistryError::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_entry() -> Entries {
        let mut entries = BTreeMap::new();
        entries.insert(
            FileKey { device: 1, inode: 2 },
            Entry {
                fingerprint: Fingerprint { bytes: 10, crc: 99 },
                acked_position: 4711,
                path: "/a b/c.log".into(),
            },
        );
        entries
    }

    #[test]
    fn entries_round_trip_with_spaces_in_paths() {
        let text = encode(&one_entry());
        assert_eq!(text, "relay-sender-registry 1\n1 2 10 99 4711 /a b/c.log\n");
        assert_eq!(decode(&text, Path::new("r")).unwrap(), one_entry());
    }

    #[test]
    fn garbage_is_refused_with_its_line_number() {
        assert!(matches!(
            decode("garbage", Path::new("r")),
            Err(RegistryError::BadHeader { .. })
        ));
        let text = format!("{HEADER}\n1 2 10 99 4711 /ok\n1 2 x 99 5 /bad\n");
        match decode(&text, Path::new("r")) {
            Err(RegistryError::Malformed { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a malformed line 3, got {other:?}"),
        }
    }
}
