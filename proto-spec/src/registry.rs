//! The sender's registry file, `<state_dir>/registry`: for each file the
//! sender has read, which file it is and the byte position up to which every
//! line is acknowledged by the broker. The sender writes it (atomically,
//! through [`crate::durable_file`]); `relay status` reads it to show how far
//! behind each file is. This module owns the text layout and nothing else.
//!
//! ```text
//! relay-sender-registry 3
//! <device> <inode> <fingerprint bytes> <fingerprint crc> <acked position> <file id> <previous> <before> <path>
//! ```
//!
//! `<previous>` is `-`, or the content this file held before it was
//! truncated in place (copytruncate), for its copy to inherit even after a
//! restart: `<fingerprint bytes>,<fingerprint crc>,<acked position>,<file id>`,
//! then (version 3) `,<before bytes>,<before crc>` when the bytes before its
//! position are known: a copy must hold them too.
//!
//! `<before>` is `-` (not known), or `<bytes>,<crc>`: the CRC-32C of the
//! `<bytes>` bytes just before the acknowledged position (at most
//! [`BEFORE_BYTES_MAX`]). A file whose first bytes still match but whose
//! bytes before the position do not was rewritten in place (`app > app.log`
//! with the same banner): new content, read from 0.
//!
//! One line per file; the path is last so it may hold spaces. The file id is
//! 32 lowercase hex digits: the file's identity, which the `source_file_id`
//! header carries to the loader. Version 1 (the same without the file id) is
//! still read: its files get a new id each ([`decode`]'s `new_id`); version 2
//! (the same without `<before>`) is read with `<before>` unknown. The next
//! save writes version 3.
//! `proto-spec/STORAGE.md` ("Sender state") gives the same layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The first line of every registry file this version writes.
pub const HEADER: &str = "relay-sender-registry 3";
/// The first line of a registry written before `<before>`.
pub const HEADER_V2: &str = "relay-sender-registry 2";
/// The first line of a registry written before files had ids.
pub const HEADER_V1: &str = "relay-sender-registry 1";
/// The registry's file name inside the sender's state directory.
pub const FILE_NAME: &str = "registry";
/// Space-separated fields of an entry line (version 3, 2, 1).
const FIELDS: usize = 9;
const FIELDS_V2: usize = 8;
const FIELDS_V1: usize = 6;
/// Bytes before the acknowledged position that `<before>` covers: a whole
/// line or two of a typical log, one small read per check.
pub const BEFORE_BYTES_MAX: u64 = 256;

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

/// A source file's identity: assigned at random when the sender first sees
/// the file, kept through renames and restarts, inherited by a copytruncate
/// copy, and never given to other content (a reused inode or a truncated
/// file gets a new one). 128 random bits: no two files collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u128);

impl FileId {
    /// The identity of the content that replaces this file's content in
    /// place (truncated and written again). Derived, not drawn at random, so
    /// a sender killed before it saved the new identity derives the same one
    /// again after the restart: lines it had sent under it keep their keys.
    /// A fixed 128-bit mix (no std hasher, whose output may change between
    /// Rust releases).
    pub fn successor(self) -> FileId {
        const MULTIPLIER: u128 = 0x2360_ed05_1fc6_5da4_4385_df64_9fcc_f645;
        let mut x = self.0 ^ 0x5851_f42d_4c95_7f2d_1405_7b7e_f767_814f;
        x ^= x >> 64;
        x = x.wrapping_mul(MULTIPLIER);
        x ^= x >> 61;
        x = x.wrapping_mul(MULTIPLIER);
        x ^= x >> 67;
        FileId(x)
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl std::str::FromStr for FileId {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(());
        }
        u128::from_str_radix(text, 16).map(FileId).map_err(|_| ())
    }
}

/// Content a file held before it was truncated in place: what its copy
/// inherits (identity, and every line before `acked_position` acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Previous {
    pub fingerprint: Fingerprint,
    pub acked_position: u64,
    pub file_id: FileId,
    /// The bytes just before `acked_position`, as [`Entry::before`].
    pub before: Option<Fingerprint>,
}

/// What the registry knows of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub fingerprint: Fingerprint,
    /// Every line before this byte position is acknowledged by the broker.
    pub acked_position: u64,
    pub file_id: FileId,
    /// The content it held before a copytruncate, until a copy inherits it.
    pub previous: Option<Previous>,
    /// CRC-32C of the bytes just before `acked_position` (`bytes` of them,
    /// ending there); `None` when not known (a version 2 registry).
    pub before: Option<Fingerprint>,
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
            "{} {} {} {} {} {} {} {} {}\n",
            key.device,
            key.inode,
            entry.fingerprint.bytes,
            entry.fingerprint.crc,
            entry.acked_position,
            entry.file_id,
            entry.previous.map_or_else(
                || "-".to_owned(),
                |p| format!(
                    "{},{},{},{}{}",
                    p.fingerprint.bytes,
                    p.fingerprint.crc,
                    p.acked_position,
                    p.file_id,
                    p.before.map_or_else(String::new, |b| format!(",{},{}", b.bytes, b.crc))
                )
            ),
            entry
                .before
                .map_or_else(|| "-".to_owned(), |b| format!("{},{}", b.bytes, b.crc)),
            entry.path.display()
        ));
    }
    text
}

/// Parses a registry file's text; `path` only names it in errors. Files of a
/// version 1 registry get their ids from `new_id`.
pub fn decode(text: &str, path: &Path, mut new_id: impl FnMut() -> FileId) -> Result<Entries, RegistryError> {
    let mut lines = text.lines();
    let fields_per_line = match lines.next() {
        Some(HEADER) => FIELDS,
        Some(HEADER_V2) => FIELDS_V2,
        Some(HEADER_V1) => FIELDS_V1,
        _ => return Err(RegistryError::BadHeader { path: path.to_owned() }),
    };
    let mut entries = BTreeMap::new();
    for (index, line) in lines.enumerate() {
        let malformed = || RegistryError::Malformed {
            path: path.to_owned(),
            line: index + 2,
            text: line.to_owned(),
        };
        let fields: Vec<&str> = line.splitn(fields_per_line, ' ').collect();
        if fields.len() != fields_per_line {
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
        let (file_id, previous) = match fields_per_line {
            FIELDS_V1 => (new_id(), None),
            _ => (
                fields[5].parse().map_err(|_| malformed())?,
                parse_previous(fields[6]).ok_or_else(malformed)?,
            ),
        };
        let before = match fields_per_line {
            FIELDS => parse_before(fields[7]).ok_or_else(malformed)?,
            _ => None,
        };
        let entry = Entry {
            fingerprint,
            acked_position: number(4)?,
            file_id,
            previous,
            before,
            path: PathBuf::from(fields[fields_per_line - 1]),
        };
        entries.insert(key, entry);
    }
    Ok(entries)
}

/// `-` (none), or `bytes,crc,acked,id`; `None` when malformed.
fn parse_previous(text: &str) -> Option<Option<Previous>> {
    if text == "-" {
        return Some(None);
    }
    let mut parts = text.split(',');
    let mut next = || parts.next();
    let previous = Previous {
        fingerprint: Fingerprint {
            bytes: next()?.parse().ok()?,
            crc: next()?.parse().ok()?,
        },
        acked_position: next()?.parse().ok()?,
        file_id: next()?.parse().ok()?,
        before: match (next(), next()) {
            (None, None) => None,
            (Some(bytes), Some(crc)) => parse_before(&format!("{bytes},{crc}"))?,
            _ => return None,
        },
    };
    if parts.next().is_some() {
        return None;
    }
    Some(Some(previous))
}

/// `-` (not known), or `bytes,crc`; `None` when malformed.
fn parse_before(text: &str) -> Option<Option<Fingerprint>> {
    if text == "-" {
        return Some(None);
    }
    let (bytes, crc) = text.split_once(',')?;
    let before = Fingerprint {
        bytes: bytes.parse().ok()?,
        crc: crc.parse().ok()?,
    };
    (before.bytes <= BEFORE_BYTES_MAX).then_some(Some(before))
}

/// Reads `<state_dir>/registry`: `Ok(None)` when there is none yet.
pub fn read(state_dir: &Path, new_id: impl FnMut() -> FileId) -> Result<Option<Entries>, RegistryError> {
    let path = state_dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => decode(&text, &path, new_id).map(Some),
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
                file_id: FileId(0xabc),
                previous: None,
                before: Some(Fingerprint { bytes: 5, crc: 7 }),
                path: "/a b/c.log".into(),
            },
        );
        entries
    }

    #[test]
    fn entries_round_trip_with_spaces_in_paths() {
        let text = encode(&one_entry());
        assert_eq!(
            text,
            "relay-sender-registry 3\n1 2 10 99 4711 00000000000000000000000000000abc - 5,7 /a b/c.log\n"
        );
        assert_eq!(decode(&text, Path::new("r"), no_new_ids).unwrap(), one_entry());
        let mut truncated = one_entry();
        truncated.values_mut().next().unwrap().previous = Some(Previous {
            fingerprint: Fingerprint { bytes: 256, crc: 7 },
            acked_position: 80_113,
            file_id: FileId(5),
            before: Some(Fingerprint { bytes: 256, crc: 1 }),
        });
        assert_eq!(
            decode(&encode(&truncated), Path::new("r"), no_new_ids).unwrap(),
            truncated
        );
    }

    fn no_new_ids() -> FileId {
        panic!("a version 2 or 3 registry names every file's id")
    }

    #[test]
    fn a_version_2_registry_keeps_its_ids_with_the_bytes_before_unknown() {
        let text = "relay-sender-registry 2\n1 2 10 99 4711 00000000000000000000000000000abc - /a b/c.log\n";
        let mut expected = one_entry();
        expected.values_mut().next().unwrap().before = None;
        assert_eq!(decode(text, Path::new("r"), no_new_ids).unwrap(), expected);
    }

    #[test]
    fn a_version_1_registry_keeps_its_positions_and_gets_new_ids() {
        let text = "relay-sender-registry 1\n1 2 10 99 4711 /a b/c.log\n";
        let entries = decode(text, Path::new("r"), || FileId(0xabc)).unwrap();
        let mut expected = one_entry();
        expected.values_mut().next().unwrap().before = None;
        assert_eq!(entries, expected);
    }

    #[test]
    fn a_successor_is_stable_and_differs_from_its_predecessor() {
        let id = FileId(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(id.successor(), id.successor());
        assert_ne!(id.successor(), id);
        assert_ne!(id.successor().successor(), id.successor());
        // Fixed across releases: a registry written today derives the same.
        assert_eq!(id.successor(), FileId(id.successor().0));
    }

    #[test]
    fn file_ids_print_and_parse_as_32_hex_digits() {
        let id = FileId(u128::MAX - 5);
        assert_eq!(id.to_string().len(), 32);
        assert_eq!(id.to_string().parse::<FileId>(), Ok(id));
        assert!("ABC".parse::<FileId>().is_err());
        assert!("0000000000000000000000000000000g".parse::<FileId>().is_err());
    }

    #[test]
    fn garbage_is_refused_with_its_line_number() {
        assert!(matches!(
            decode("garbage", Path::new("r"), no_new_ids),
            Err(RegistryError::BadHeader { .. })
        ));
        let id = FileId(7);
        let text = format!("{HEADER}\n1 2 10 99 4711 {id} - - /ok\n1 2 x 99 5 {id} - - /bad\n");
        match decode(&text, Path::new("r"), no_new_ids) {
            Err(RegistryError::Malformed { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a malformed line 3, got {other:?}"),
        }
    }
}
