//! `<state_dir>/rejects`: lines the sender could not send, so nothing is
//! dropped silently. Each entry is a header line then the raw bytes:
//!
//! ```text
//! # relay-reject file=<path> position=<byte position> reason=<why>
//! <the line's bytes, streamed as read, then a newline>
//! ```
//!
//! An over-long line is streamed in pieces as it is read, so it never has to
//! fit in memory. A line the broker refuses as too large is written whole.
//! Nothing else ever lands here: a line that fails for any other reason is
//! retried, never skipped.

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

    fn file(&mut self) -> Option<&mut File> {
        if self.file.is_none() {
            match OpenOptions::new().create(true).append(true).open(&self.path) {
                Ok(file) => self.file = Some(file),
                Err(error) => tracing::error!(path = %self.path.display(), %error, "cannot open the rejects file"),
            }
        }
        self.file.as_mut()
    }

    pub fn write_overlong(&mut self, source: &Path, position: u64, bytes: &[u8], last: bool) {
        let starting = !self.streaming;
        let Some(file) = self.file() else { return };
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
        if let Err(error) = write() {
            tracing::error!(path = %self.path.display(), %error, "cannot write the rejects file");
        }
        self.streaming = !last;
    }

    /// A whole line the broker refused, with its bytes.
    pub fn write_refused(&mut self, source: &Path, position: u64, line: &[u8], reason: &str) {
        let Some(file) = self.file() else { return };
        let reason = reason.replace('\n', " ");
        let result = writeln!(
            file,
            "# relay-reject file={} position={position} reason={reason}",
            source.display()
        )
        .and_then(|()| file.write_all(line))
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_data());
        if let Err(error) = result {
            tracing::error!(path = %self.path.display(), %error, "cannot write the rejects file");
        }
    }
}
