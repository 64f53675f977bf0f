//! Files at a watched path that hold compressed bytes, not lines: a rotated
//! copy compressed by logrotate's `compress` (`app.log.1.gz`) matches a
//! pattern like `app.log*` as well as the plain copies do. Tailing it would
//! send its bytes as lines of garbage, so it is told by the magic number at
//! its start, or by a compressor's extension while it is still being
//! written (gzip makes `app.log.1.gz` empty first, then fills it), and left
//! alone. Reads at most [`MAGIC_BYTES_MAX`] bytes; never moves a file's
//! position.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// The longest magic number below (xz's).
pub const MAGIC_BYTES_MAX: usize = 6;

/// (format, magic number at byte 0) of the compressors logrotate is set up with.
const MAGIC_NUMBERS: [(&str, &[u8]); 5] = [
    ("gzip", &[0x1f, 0x8b]),
    ("zstd", &[0x28, 0xb5, 0x2f, 0xfd]),
    ("xz", &[0xfd, b'7', b'z', b'X', b'Z', 0x00]),
    ("bzip2", b"BZh"),
    ("lz4", &[0x04, 0x22, 0x4d, 0x18]),
];
const _: () = assert!(MAGIC_NUMBERS[2].1.len() == MAGIC_BYTES_MAX);

/// File name endings of the compressors below.
const EXTENSIONS: [(&str, &str); 6] = [
    ("gzip", ".gz"),
    ("zstd", ".zst"),
    ("xz", ".xz"),
    ("bzip2", ".bz2"),
    ("lz4", ".lz4"),
    ("zip", ".zip"),
];

/// The compression a file name says, if any.
pub fn format_of_name(name: &std::path::Path) -> Option<&'static str> {
    let name = name.file_name()?.to_str()?;
    EXTENSIONS
        .iter()
        .find(|(_, extension)| name.ends_with(extension))
        .map(|(format, _)| *format)
}

/// The compression `start` (a file's first bytes) begins with, if any.
pub fn format_of_start(start: &[u8]) -> Option<&'static str> {
    MAGIC_NUMBERS
        .iter()
        .find(|(_, magic)| start.starts_with(magic))
        .map(|(format, _)| *format)
}

/// The compression `file` holds, if any; `None` also when it cannot be read
/// (the tailer then meets the error itself).
pub fn format_of(file: &File) -> Option<&'static str> {
    let mut start = [0u8; MAGIC_BYTES_MAX];
    let read = file.read_at(&mut start, 0).ok()?;
    format_of_start(&start[..read])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_starts_are_told_by_their_magic_number() {
        assert_eq!(format_of_start(&[0x1f, 0x8b, 8, 0]), Some("gzip"));
        assert_eq!(format_of_start(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Some("zstd"));
        assert_eq!(format_of_start(b"BZh91AY"), Some("bzip2"));
        assert_eq!(format_of_start(&[0xfd, b'7', b'z', b'X', b'Z', 0]), Some("xz"));
        assert_eq!(format_of_start(&[0x04, 0x22, 0x4d, 0x18]), Some("lz4"));
    }

    #[test]
    fn compressors_extensions_are_told_while_the_file_is_still_empty() {
        assert_eq!(format_of_name(std::path::Path::new("/l/app.log.1.gz")), Some("gzip"));
        assert_eq!(
            format_of_name(std::path::Path::new("/l/app.log-20261207.zst")),
            Some("zstd")
        );
        assert_eq!(format_of_name(std::path::Path::new("/l/app.log.1")), None);
        assert_eq!(format_of_name(std::path::Path::new("/l/app.gz.log")), None);
    }

    #[test]
    fn lines_and_short_files_are_not_compressed() {
        assert_eq!(format_of_start(b"{\"a\":1}\n"), None);
        assert_eq!(format_of_start(b"BZ"), None);
        assert_eq!(format_of_start(&[0x1f]), None);
        assert_eq!(format_of_start(b""), None);
    }
}
