//! Which file is which: device + inode, plus a CRC-32C fingerprint of the
//! file's first bytes (up to [`FINGERPRINT_BYTES_MAX`]). The inode survives a
//! rename (so a rotated file keeps its place); the fingerprint tells a reused
//! inode or a truncated-and-rewritten file from the one read before. A file
//! shorter than the maximum is fingerprinted over what it has, and the
//! fingerprint grows with it.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Bytes fingerprinted: enough to tell two log files apart by their first
/// lines (timestamps, ids), small enough to read on every check.
pub const FINGERPRINT_BYTES_MAX: u64 = 256;

pub use relay_proto::registry::{FileId, FileKey, Fingerprint};

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
    let mut buffer = vec![0u8; bytes as usize];
    let mut read = 0;
    while read < buffer.len() {
        match file.read_at(&mut buffer[read..], read as u64)? {
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

/// Whether `file` still starts with the bytes `known` was taken over.
pub fn still_matches(file: &File, known: Fingerprint) -> std::io::Result<bool> {
    let now = fingerprint_of_prefix(file, known.bytes)?;
    Ok(now == known)
}

/// The file with identity `key` in `path`'s directory: at `path` itself
/// when it kept its name, else under another name (rotated by rename).
pub fn find_in_directory(path: &Path, key: FileKey) -> Option<(PathBuf, File)> {
    let here = |candidate: &Path| {
        let file = File::open(candidate).ok()?;
        (key_of(&file).ok()? == key).then_some(file)
    };
    if let Some(file) = here(path) {
        return Some((path.to_owned(), file));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let candidate = entry.path();
        let metadata = entry.metadata().ok()?;
        (metadata.is_file() && metadata.dev() == key.device && metadata.ino() == key.inode)
            .then(|| here(&candidate).map(|file| (candidate, file)))
            .flatten()
    })
}
