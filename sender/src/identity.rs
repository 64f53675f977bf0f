//! Which file is which: device + inode, plus a CRC-32C fingerprint of the
//! file's first bytes (up to [`FINGERPRINT_BYTES_MAX`]). The inode survives a
//! rename (so a rotated file keeps its place); the fingerprint tells a reused
//! inode or a truncated-and-rewritten file from the one read before. A file
//! shorter than the maximum is fingerprinted over what it has, and the
//! fingerprint grows with it.
//!
//! The first bytes alone cannot tell a file rewritten in place with the same
//! banner or CSV header: the bytes just before the acknowledged position
//! ([`BEFORE_BYTES_MAX`] of them, the registry's `<before>`) must match too,
//! else the file holds new content and is read from 0.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Bytes fingerprinted: enough to tell two log files apart by their first
/// lines (timestamps, ids), small enough to read on every check.
pub const FINGERPRINT_BYTES_MAX: u64 = 256;

pub use relay_proto::registry::{FileId, FileKey, Fingerprint, BEFORE_BYTES_MAX};

/// A new identity for content the sender has not seen before.
pub fn new_file_id() -> FileId {
    FileId(uuid::Uuid::new_v4().as_u128())
}

pub fn key_of(file: &File) -> std::io::Result<FileKey> {
    let metadata = file.metadata()?;
    Ok(FileKey {
        device: metadata.dev(),
        inode: metadata.ino(),
    })
}

/// Fingerprint of the first `min(len, FINGERPRINT_BYTES_MAX)` bytes.
pub fn fingerprint(file: &File) -> std::io::Result<Fingerprint> {
    let length = file.metadata()?.len().min(FINGERPRINT_BYTES_MAX);
    fingerprint_of_prefix(file, length)
}

/// Fingerprint of exactly the first `bytes` bytes (fewer if the file is shorter).
pub fn fingerprint_of_prefix(file: &File, bytes: u64) -> std::io::Result<Fingerprint> {
    fingerprint_at(file, 0, bytes)
}

/// Fingerprint of the `bytes` bytes from `start` (fewer if the file ends first).
fn fingerprint_at(file: &File, start: u64, bytes: u64) -> std::io::Result<Fingerprint> {
    let mut buffer = vec![0u8; bytes as usize];
    let mut read = 0;
    while read < buffer.len() {
        match file.read_at(&mut buffer[read..], start + read as u64)? {
            0 => break,
            n => read += n,
        }
    }
    buffer.truncate(read);
    Ok(Fingerprint {
        bytes: read as u64,
        crc: crc32c::crc32c(&buffer),
    })
}

/// Fingerprint of the bytes just before `position` (at most [`BEFORE_BYTES_MAX`]).
pub fn before(file: &File, position: u64) -> std::io::Result<Fingerprint> {
    let bytes = position.min(BEFORE_BYTES_MAX);
    fingerprint_at(file, position - bytes, bytes)
}

/// The bytes just before `position` (at most [`BEFORE_BYTES_MAX`]).
pub fn bytes_before(file: &File, position: u64) -> std::io::Result<Vec<u8>> {
    let start = position.saturating_sub(BEFORE_BYTES_MAX);
    let mut buffer = vec![0u8; (position - start) as usize];
    file.read_exact_at(&mut buffer, start)?;
    Ok(buffer)
}

/// Fingerprint of a file's first bytes (at most [`FINGERPRINT_BYTES_MAX`])
/// from `head`, bytes read from its start: what [`fingerprint`] would take.
pub fn head_of(head: &[u8]) -> Fingerprint {
    let bytes = head.len().min(FINGERPRINT_BYTES_MAX as usize);
    Fingerprint {
        bytes: bytes as u64,
        crc: crc32c::crc32c(&head[..bytes]),
    }
}

/// Fingerprint of the last bytes (at most [`BEFORE_BYTES_MAX`]) of `recent`,
/// the bytes of a file that end at some position.
pub fn before_of(recent: &[u8]) -> Fingerprint {
    let start = recent.len().saturating_sub(BEFORE_BYTES_MAX as usize);
    Fingerprint {
        bytes: (recent.len() - start) as u64,
        crc: crc32c::crc32c(&recent[start..]),
    }
}

/// Whether the bytes before `position` are still those `known` was taken
/// over (`None`: not known, as in a version 2 registry: taken as matching).
pub fn still_before(file: &File, position: u64, known: Option<Fingerprint>) -> std::io::Result<bool> {
    let Some(known) = known else { return Ok(true) };
    if known.bytes > position {
        return Ok(false);
    }
    Ok(fingerprint_at(file, position - known.bytes, known.bytes)? == known)
}

/// Whether `file` still holds the content an entry was read from: the same
/// first bytes, and the same bytes before its acknowledged position.
pub fn still_holds(
    file: &File,
    head: Fingerprint,
    position: u64,
    before: Option<Fingerprint>,
) -> std::io::Result<bool> {
    Ok(still_matches(file, head)? && still_before(file, position, before)?)
}

/// Whether `file` still starts with the bytes `known` was taken over.
pub fn still_matches(file: &File, known: Fingerprint) -> std::io::Result<bool> {
    let now = fingerprint_of_prefix(file, known.bytes)?;
    Ok(now == known)
}

/// The file with identity `key` in `path`'s directory: at `path` itself
/// when it kept its name, else under another name (rotated by rename).
/// Symlinks are followed (a link's identity is its target's). `Ok(None)`
/// only when it is truly not there; a file or directory that cannot be read
/// now (EACCES, EMFILE, EIO) is an error, not a deleted file: the caller
/// keeps what it knows and tries again.
pub fn find_in_directory(path: &Path, key: FileKey) -> std::io::Result<Option<(PathBuf, File)>> {
    let is_key = |metadata: &std::fs::Metadata| metadata.dev() == key.device && metadata.ino() == key.inode;
    let open = |candidate: &Path| -> std::io::Result<Option<File>> {
        let file = match File::open(candidate) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        Ok((key_of(&file)? == key).then_some(file))
    };
    match std::fs::metadata(path) {
        Ok(metadata) if is_key(&metadata) => {
            if let Some(file) = open(path)? {
                return Ok(Some((path.to_owned(), file)));
            }
        }
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let candidate = entry?.path();
        let Ok(metadata) = std::fs::metadata(&candidate) else {
            continue; // gone since the listing, or a dangling link
        };
        if metadata.is_file() && is_key(&metadata) {
            if let Some(file) = open(&candidate)? {
                return Ok(Some((candidate, file)));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_rewrite_with_the_same_first_bytes_differs_before_the_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let banner = "b".repeat(300);
        std::fs::write(&path, format!("{banner}\nline 1\nline 2\n")).unwrap();
        let file = File::open(&path).unwrap();
        let head = fingerprint(&file).unwrap();
        let position = file.metadata().unwrap().len();
        let before = before(&file, position).unwrap();
        assert_eq!(before.bytes, BEFORE_BYTES_MAX);
        assert_eq!(before, before_of(&std::fs::read(&path).unwrap()));
        assert!(still_holds(&file, head, position, Some(before)).unwrap());
        // `app > app.log`: the same banner, other lines, as long or longer.
        let mut rewritten = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        rewritten
            .write_all(format!("{banner}\nLINE 9\nLINE 8\nmore\n").as_bytes())
            .unwrap();
        assert!(still_matches(&file, head).unwrap(), "the first bytes are the same");
        assert!(!still_holds(&file, head, position, Some(before)).unwrap());
        assert!(
            still_holds(&file, head, position, None).unwrap(),
            "unknown (version 2): not checked"
        );
    }
}
