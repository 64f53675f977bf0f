//! A tailer at the end of what its file holds: truncated or rewritten
//! (the old content handed over for a copy, then read again from 0 under
//! the id's successor), grown past its fingerprint, deleted, rotated away
//! and quiet, or idle and asked to close; and the drain when it ends, with
//! the unterminated last line of a file that went away set aside.

use super::{source_header, Ack, Finished, Tailer};
use crate::identity::{self, FileId, FileKey, FINGERPRINT_BYTES_MAX};
use crate::lines::LineSplitter;
use crate::metrics::FileMetrics;
use crate::shared::{Handover, SenderShared};
use std::ops::ControlFlow;
use std::os::unix::fs::MetadataExt;
use std::time::Instant;

impl Tailer {
    /// At the end of what is written: what happened to the file? Truncated
    /// or rewritten (read again from 0), grown past its fingerprint,
    /// deleted, rotated away and quiet, or idle and asked to close; else a
    /// wait for an event, the poll or the stop.
    pub(super) async fn at_end(&mut self, rewritten: bool) -> ControlFlow<Finished> {
        let metadata = match self.file.metadata() {
            Ok(metadata) => {
                self.stat_failing = false;
                metadata
            }
            Err(error) => {
                // A deleted file's descriptor still answers fstat: an error is
                // the disk's or the kernel's, and the unsent rest is kept.
                if !std::mem::replace(&mut self.stat_failing, true) {
                    tracing::warn!(file = %self.path.display(), position = self.position, %error, "cannot stat the open file; retrying (its position is kept)");
                }
                tokio::time::sleep(self.shared.config.poll_interval()).await;
                return ControlFlow::Continue(());
            }
        };
        if metadata.len() < self.position || rewritten {
            return self.read_again(metadata.len()).await;
        }
        if self
            .known
            .is_some_and(|f| f.bytes < FINGERPRINT_BYTES_MAX && metadata.len() > f.bytes)
        {
            if let Ok(fingerprint) = identity::fingerprint(&self.file) {
                self.known = Some(fingerprint);
                let _ = self.acks.send(Ack::Fingerprint(fingerprint)).await;
            }
        }
        self.counters.set_size(metadata.len());
        if metadata.nlink() == 0 {
            self.counters.set_size(0);
            return ControlFlow::Break(Finished::Deleted);
        }
        let quiet = *self.quiet_since.get_or_insert_with(Instant::now);
        if !self.shared.is_watched(self.key) && quiet.elapsed() >= self.shared.config.rotate_wait() {
            return ControlFlow::Break(Finished::RotatedAway);
        }
        if self.evicted_while_idle(quiet) {
            return ControlFlow::Break(Finished::Evicted);
        }
        tokio::select! {
            _ = tokio::time::sleep(self.shared.config.poll_interval()) => {}
            _ = self.woken.notified() => {}
            // Once seen, the stop is answered by stop_reached, not by waking here.
            _ = self.stop.stopped(), if self.stopping.is_none() => {}
        }
        ControlFlow::Continue(())
    }

    /// Marks the file idle when every line read is acknowledged and none is
    /// unfinished (busy otherwise); whether it was then asked to close.
    fn evicted_while_idle(&self, quiet: Instant) -> bool {
        let acknowledged = self
            .shared
            .registry
            .get(self.key)
            .is_some_and(|e| e.acked_position == self.position);
        if acknowledged && self.splitter.buffered_bytes() == 0 {
            self.shared.mark_idle(self.key, quiet);
            self.shared.take_eviction(self.key)
        } else {
            self.shared.mark_busy(self.key);
            false
        }
    }

    /// A truncated or rewritten file: its old content handed over for a
    /// copy, then read again from 0 under the id's successor, which is saved
    /// before any line goes out under it.
    async fn read_again(&mut self, size: u64) -> ControlFlow<Finished> {
        tracing::warn!(file = %self.path.display(), position = self.position, size, "file truncated or rewritten (copytruncate); reading it again from the start");
        self.counters.truncations.increment(1);
        self.hand_over_old_content();
        self.position = 0;
        self.recent = Vec::new();
        self.splitter = LineSplitter::new(0, self.shared.config.line_bytes_max);
        // An over-long line cut by the truncation ends with the old content:
        // its rejects entry ends here, and its length must not count in the
        // next over-long line's.
        if std::mem::take(&mut self.overlong_length) > 0 {
            if let Err(error) = self.shared.end_overlong(&self.path) {
                self.shared.fail(error);
                return ControlFlow::Break(Finished::Stopped);
            }
        }
        let new_id = self.current_id.map_or_else(identity::new_file_id, FileId::successor);
        self.source = source_header(&self.shared.host, &self.path_text, Some(new_id));
        self.current_id = Some(new_id);
        self.known = identity::fingerprint(&self.file).ok();
        let (saved, is_saved) = tokio::sync::oneshot::channel();
        let reset = Ack::Reset {
            file_id: new_id,
            fingerprint: self.known,
            saved,
        };
        let _ = self.acks.send(reset).await;
        if is_saved.await != Ok(true) {
            return ControlFlow::Break(Finished::Stopped);
        }
        ControlFlow::Continue(())
    }

    /// Keeps the truncated content's identity for its copy.
    fn hand_over_old_content(&self) {
        let (Some(old), Some(old_id)) = (self.known, self.current_id) else {
            return;
        };
        // The copy resumes where the original is acknowledged, not
        // where it was read: lines in flight may never be delivered
        // (a kill before their ack). Sending them again under the
        // same identity loads them once.
        let (acknowledged, before) = self
            .shared
            .registry
            .get(self.key)
            .map_or((0, None), |e| (e.acked_position, e.before));
        self.shared.hand_over(Handover {
            fingerprint: old,
            file_id: old_id,
            position: acknowledged.min(self.splitter.resume_position()),
            before,
            original_path: self.path.to_path_buf(),
            at: Instant::now(),
        });
    }

    /// Drains the acknowledgements and, for a file that went away, sets its
    /// unterminated last line aside.
    pub(super) async fn finish(self, finished: Finished) -> (FileKey, Finished) {
        let Tailer {
            shared,
            path,
            key,
            counters,
            acks,
            ack_task,
            mut splitter,
            ..
        } = self;
        shared.wake.forget(&path);
        drop(acks);
        let _ = ack_task.await;
        shared.closed(key);
        let gone = finished == Finished::Deleted || finished == Finished::RotatedAway;
        if gone && !set_aside_unterminated(&shared, &path, &mut splitter, finished, &counters) {
            // Not recorded: the registry keeps the file, to read the line again.
            return (key, Finished::Stopped);
        }
        (key, finished)
    }
}

/// The unterminated last line of a file that went away can never be
/// completed: it goes whole to the rejects file with its reason, said in a
/// WARN and counted. A failed write stops the sender (the registry keeps
/// the file, so the line is read again at the next start).
fn set_aside_unterminated(
    shared: &SenderShared,
    path: &std::path::Path,
    splitter: &mut LineSplitter,
    finished: Finished,
    counters: &FileMetrics,
) -> bool {
    let Some((position, bytes, streamed)) = splitter.take_unterminated() else {
        return true;
    };
    let reason = match finished {
        Finished::Deleted => "unterminated last line of a deleted file",
        _ => "unterminated last line of a file rotated away and quiet for rotate_wait",
    };
    let written = if streamed {
        shared.reject_overlong(path, position, &bytes, true)
    } else {
        shared.reject_line(path, position, &bytes, reason)
    };
    if let Err(error) = written {
        shared.fail(error);
        return false;
    }
    counters.lines_rejected.increment(1);
    tracing::warn!(file = %path.display(), position, bytes = bytes.len(), reason, "a line that never ended was written whole to the rejects file");
    true
}
