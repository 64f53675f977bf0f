//! `<state_dir>/rejects`: lines the sender could not send, so nothing is
//! dropped silently. Each entry is a header line then the raw bytes:
//!
//! ```text
//! # relay-reject file=<path> position=<byte position> reason=<why>
//! <the line's bytes, streamed as read, then a newline>
//! ```
//!
//! An over-long line is streamed in pieces as it is read, so it never has to
//! fit in memory. A line the broker refuses as too large is written whole,
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
    /// An over-long line is being written.
    streaming: bool,
}

impl Rejects {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join("rejects"),
            file: None,
            streaming: false,
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
        let starting = !self.streaming;
        let file = self.file()?;
        let mut write = || -> std::io::Result<()> {
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
        self.streaming = !last && result.is_ok();
        result
    }

    /// A whole line that cannot be sent (refused by the broker, or never
    /// completed), with its bytes and why, fdatasynced. An error means the
    /// line is not recorded: do not move past it.
    pub fn write_line(&mut self, source: &Path, position: u64, line: &[u8], reason: &str) -> std::io::Result<()> {
        let file = self.file()?;
        let reason = reason.replace('\n', " ");
        let result = writeln!(
            file,
            "# relay-reject file={} position={position} reason={reason}",
            source.display()
        )
        .and_then(|()| file.write_all(line))
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_data());
        result
    }
}
