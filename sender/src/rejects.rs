//! `<state_dir>/rejects`: lines the sender could not send, so nothing is
//! dropped silently. Each entry is a header line then the raw bytes:
//!
//! ```text
//! # relay-reject file=<path> position=<byte position> reason=<why>
//! <the line's bytes, streamed as read, then a newline>
//! ```
//!
//! An over-long line is streamed in pieces as it is read, so it never has to
//! fit in memory. Entries never mix: when another line must be written while
//! an over-long line's entry is open (two files' over-long lines at once),
//! that entry is ended and the rest of its line opens another entry with the
//! same file and position (concatenated in order, they are the line); the
//! entry of a line cut by its file's truncation is ended there. A line the broker refuses as too large is written whole,
//! and so is the unterminated last line of a file that goes away (deleted,
//! or rotated away and quiet for `rotate_wait`): it can never be completed.
//! Nothing else ever lands here: a line that fails for any other reason is
//! retried, never skipped. A line that cannot be written here is not
//! skipped either: the write's error stops the sender, the line's position
//! unsaved, so it is read again at the next start.
//!
//! Each entry is fdatasynced before the line's position may move past it. A
//! power cut while an entry is being written can leave it cut short (on a
//! disk that tears writes, followed by zeros); the line is then read again
//! and written again, whole, after the start.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Rejects {
    path: PathBuf,
    file: Option<File>,
    /// The over-long line whose entry is open (its file and position). A
    /// piece of another line ends that entry first: the rest of the line
    /// then opens an entry of its own, with the same file and position.
    streaming: Option<(PathBuf, u64)>,
}

impl Rejects {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("rejects"),
            file: None,
            streaming: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            self.file = Some(OpenOptions::new().create(true).append(true).open(&self.path)?);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    /// A piece of an over-long line (`last`: its end, then the entry is
    /// fdatasynced). An error means the line is not recorded: do not move past it.
    pub fn write_overlong(&mut self, source: &Path, position: u64, bytes: &[u8], last: bool) -> std::io::Result<()> {
        let line = (source.to_path_buf(), position);
        let starting = self.streaming.as_ref() != Some(&line);
        let interrupting = starting && self.streaming.is_some();
        let file = self.file()?;
        let mut write = || -> std::io::Result<()> {
            if interrupting {
                file.write_all(b"\n")?;
            }
            if starting {
                writeln!(
                    file,
                    "# relay-reject file={} position={position} reason=line longer than line_bytes_max",
                    source.display()
                )?;
            }
            file.write_all(bytes)?;
            if last {
                file.write_all(b"\n")?;
                file.sync_data()?;
            }
            Ok(())
        };
        let result = write();
        // After a failure the next entry starts with a header again.
        self.streaming = (!last && result.is_ok()).then_some(line);
        result
    }

    /// Ends the open entry of an over-long line of `source` that will never
    /// be continued (its file was truncated under it): the next entry must
    /// not be taken for its rest.
    pub fn end_overlong(&mut self, source: &Path) -> std::io::Result<()> {
        if self.streaming.as_ref().is_none_or(|(open, _)| open != source) {
            return Ok(());
        }
        self.streaming = None;
        let file = self.file()?;
        file.write_all(b"\n")?;
        file.sync_data()
    }

    /// A whole line that cannot be sent (refused by the broker, or never
    /// completed), with its bytes and why, fdatasynced. An error means the
    /// line is not recorded: do not move past it.
    pub fn write_line(&mut self, source: &Path, position: u64, line: &[u8], reason: &str) -> std::io::Result<()> {
        // An over-long line's open entry ends here; its rest opens another.
        let interrupting = self.streaming.take().is_some();
        let file = self.file()?;
        let reason = reason.replace('\n', " ");
        let result = (if interrupting { file.write_all(b"\n") } else { Ok(()) })
            .and_then(|()| {
                writeln!(
                    file,
                    "# relay-reject file={} position={position} reason={reason}",
                    source.display()
                )
            })
            .and_then(|()| file.write_all(line))
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_data());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries of the rejects file: (header, bytes).
    fn entries(rejects: &Rejects) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(rejects.path()).unwrap();
        let mut entries: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            match line.strip_prefix("# relay-reject ") {
                Some(header) => entries.push((header.to_owned(), String::new())),
                None => entries.last_mut().expect("bytes follow a header").1.push_str(line),
            }
        }
        entries
    }

    #[test]
    fn entries_of_lines_written_at_once_never_mix() {
        let dir = tempfile::tempdir().unwrap();
        let mut rejects = Rejects::new(dir.path());
        let (a, b) = (Path::new("/logs/a.log"), Path::new("/logs/b.log"));
        rejects.write_overlong(a, 10, b"aaa", false).unwrap();
        rejects.write_overlong(b, 0, b"bbb", false).unwrap();
        rejects.write_line(a, 99, b"whole", "refused").unwrap();
        rejects.write_overlong(a, 10, b"AAA", true).unwrap();
        rejects.write_overlong(b, 0, b"BBB", true).unwrap();
        let found = entries(&rejects);
        let of = |file: &str, position: u64| -> String {
            found
                .iter()
                .filter(|(header, _)| header.starts_with(&format!("file={file} position={position} ")))
                .map(|(_, bytes)| bytes.as_str())
                .collect()
        };
        assert_eq!(of("/logs/a.log", 10), "aaaAAA", "{found:?}");
        assert_eq!(of("/logs/b.log", 0), "bbbBBB", "{found:?}");
        assert_eq!(of("/logs/a.log", 99), "whole", "{found:?}");
    }

    #[test]
    fn a_line_cut_by_a_truncation_ends_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        let mut rejects = Rejects::new(dir.path());
        let a = Path::new("/logs/a.log");
        rejects.write_overlong(a, 0, b"old", false).unwrap();
        rejects.end_overlong(a).unwrap();
        // The new content's over-long line, at the same position.
        rejects.write_overlong(a, 0, b"new", true).unwrap();
        let found = entries(&rejects);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].1.as_str(), found[1].1.as_str()), ("old", "new"));
    }
}
