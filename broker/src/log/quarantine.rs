//! Quarantine files: the bytes of a corrupt batch, set aside whole next to
//! its segment (`<first_offset:020>-<end_offset:020>.quarantine`, see
//! [`crate::log::file_names`]) so that a corrupt batch costs only itself.
//! The name keeps the offsets the bytes held, which are a gap for consumers
//! and are never handed out again: the log's next offset after recovery is
//! at least the highest end named here.
//!
//! Setting aside is idempotent: a crash between writing the file and
//! rewriting the segment finds the same bytes again on the next open, and a
//! file of that name holding the same bytes is reused. Copies stream in
//! chunks of [`COPY_CHUNK_BYTES_MAX`], so memory does not grow with the span.

use crate::log::checkpoint::sync_dir;
use crate::log::error::{io_error, Result};
use crate::log::file_names::{parse_quarantine_file, quarantine_file};
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes copied per read when moving bytes between files.
pub const COPY_CHUNK_BYTES_MAX: usize = 1 << 20;

/// Suffix of a quarantine file being written.
pub const QUARANTINE_TEMPORARY_SUFFIX: &str = ".quarantine.tmp";
/// Suffix of a segment copy being written without its corrupt spans.
pub const REWRITE_SUFFIX: &str = ".log.rewrite";

/// Name suffixes tried before giving up on finding a free quarantine name.
pub const NAME_ATTEMPTS_MAX: u32 = 1000;

/// Copies `length` bytes of `source` at `from` to `destination` at `to`.
pub(crate) fn copy_range(source: &File, from: u64, length: u64, destination: &File, to: u64) -> io::Result<()> {
    let mut buffer = vec![0u8; COPY_CHUNK_BYTES_MAX.min(length as usize)];
    let mut done = 0u64;
    while done < length {
        let chunk = (length - done).min(buffer.len() as u64) as usize;
        source.read_exact_at(&mut buffer[..chunk], from + done)?;
        destination.write_all_at(&buffer[..chunk], to + done)?;
        done += chunk as u64;
    }
    Ok(())
}

fn holds_same_bytes(path: &Path, source: &File, from: u64, length: u64) -> io::Result<bool> {
    let existing = File::open(path)?;
    if existing.metadata()?.len() != length {
        return Ok(false);
    }
    let chunk_max = COPY_CHUNK_BYTES_MAX.min(length as usize);
    let (mut ours, mut theirs) = (vec![0u8; chunk_max], vec![0u8; chunk_max]);
    let mut done = 0u64;
    while done < length {
        let chunk = (length - done).min(chunk_max as u64) as usize;
        source.read_exact_at(&mut ours[..chunk], from + done)?;
        existing.read_exact_at(&mut theirs[..chunk], done)?;
        if ours[..chunk] != theirs[..chunk] {
            return Ok(false);
        }
        done += chunk as u64;
    }
    Ok(true)
}

/// Copies bytes `[from, from + length)` of `source` into the quarantine file
/// for `offsets` in `dir`, durably (temporary file, fsync, rename, fsync of
/// the directory), and returns its path.
pub fn set_aside(dir: &Path, offsets: &Range<i64>, source: &File, from: u64, length: u64) -> Result<PathBuf> {
    for attempt in 0..NAME_ATTEMPTS_MAX {
        let path = quarantine_file(dir, offsets, attempt);
        if path.exists() {
            if holds_same_bytes(&path, source, from, length).map_err(io_error("compare", &path))? {
                return Ok(path);
            }
            continue;
        }
        let temporary = path.with_extension(&QUARANTINE_TEMPORARY_SUFFIX[1..]);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)
            .map_err(io_error("create", &temporary))?;
        copy_range(source, from, length, &file, 0).map_err(io_error("copy into", &temporary))?;
        file.sync_all().map_err(io_error("fsync", &temporary))?;
        std::fs::rename(&temporary, &path).map_err(io_error("rename", &temporary))?;
        sync_dir(dir)?;
        return Ok(path);
    }
    Err(io_error("name a quarantine file in", dir)(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{NAME_ATTEMPTS_MAX} quarantine files already exist for offsets {offsets:?}; move them away"),
    )))
}

/// The offset ranges of every quarantine file in `dir`.
pub fn offset_ranges(dir: &Path) -> Result<Vec<Range<i64>>> {
    let mut ranges = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error("list", dir))? {
        let entry = entry.map_err(io_error("list", dir))?;
        if let Some(range) = entry.file_name().to_str().and_then(parse_quarantine_file) {
            ranges.push(range);
        }
    }
    ranges.sort_by_key(|range| (range.start, range.end));
    Ok(ranges)
}

/// One past the highest offset any quarantine file in `dir` held.
pub fn highest_end(dir: &Path) -> Result<Option<i64>> {
    Ok(offset_ranges(dir)?.into_iter().map(|range| range.end).max())
}
