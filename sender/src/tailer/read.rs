//! A tailer's reading steps: the next chunk past its position (a read
//! error keeps the position), whether the file still holds what was read,
//! and sending a chunk's pieces in file order: each run of complete lines as
//! one batch, an over-long line's pieces to the rejects file in between.

use super::{line_records, Ack, Finished, Tailer, READ_CHUNK_BYTES};
use crate::delivery::{self, Outcome};
use crate::error::SenderError;
use crate::identity::{self, Fingerprint, BEFORE_BYTES_MAX, FINGERPRINT_BYTES_MAX};
use crate::lines::Piece;
use bytes::Bytes;
use std::fs::File;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// How handing one piece of a chunk on went.
enum Handed {
    /// On to the next piece.
    Next,
    /// The acknowledgement task has ended (a stop, or a fatal error): the
    /// rest of the chunk is left.
    AcksGone,
    /// The tailer ends.
    Finish(Finished),
}

impl Tailer {
    /// The next chunk past the position; empty at the end of the file or
    /// after a read error (the position is kept, never skipped).
    pub(super) async fn read_next(&mut self) -> Bytes {
        // Only what the file holds past the position is read: an idle file
        // costs one fstat per poll, not a read buffer.
        let position = self.position;
        let available = self
            .file
            .metadata()
            .map_or(u64::MAX, |m| m.len())
            .saturating_sub(position);
        let chunk = if available == 0 {
            Ok(Bytes::new())
        } else {
            let reader = Arc::clone(&self.file);
            let bytes = available.min(READ_CHUNK_BYTES as u64) as usize;
            tokio::task::spawn_blocking(move || read_chunk(&reader, position, bytes))
                .await
                .expect("read task")
        };
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                // EIO and the like: the position is kept, never skipped.
                if !std::mem::replace(&mut self.read_failing, true) {
                    tracing::warn!(file = %self.path.display(), position, %error, "read failed; retrying (its position is kept)");
                }
                Bytes::new()
            }
        };
        if !chunk.is_empty() {
            self.read_failing = false;
        }
        chunk
    }

    /// Whether the file no longer holds the content read so far: its first
    /// bytes changed, or (with a chunk to use) the bytes before the
    /// position did, as a rewrite with the same banner keeps the first bytes.
    pub(super) fn rewritten(&self, chunk: &Bytes) -> bool {
        let file = &self.file;
        self.known
            .is_some_and(|f| f.bytes > 0 && !identity::still_matches(file, f).unwrap_or(true))
            || (!chunk.is_empty()
                && !identity::still_before(file, self.position, Some(identity::before_of(&self.recent)))
                    .unwrap_or(true))
    }

    /// Content whose fingerprint was taken while it was shorter than the
    /// fingerprint (an empty file just after a truncation) learns its first
    /// bytes from the chunk that reads them. Else a copytruncate before the
    /// tailer is back at the end would hand the content over known by no
    /// byte: its copy would match nothing and be read again as new content.
    async fn learn_first_bytes(&mut self, chunk: &Bytes, chunk_start: u64) {
        let Some(known) = self.known else { return };
        if chunk_start != 0 || known.bytes >= FINGERPRINT_BYTES_MAX || (chunk.len() as u64) <= known.bytes {
            return;
        }
        let fingerprint = identity::head_of(chunk);
        self.known = Some(fingerprint);
        let _ = self.acks.send(Ack::Fingerprint(fingerprint)).await;
    }

    /// Splits a chunk into lines and sends them, the chunk's complete lines
    /// as one batch per run between over-long lines' pieces, which go to
    /// the rejects file in between, in file order.
    pub(super) async fn send_chunk(&mut self, chunk: Bytes) -> ControlFlow<Finished> {
        let chunk_start = self.position;
        self.learn_first_bytes(&chunk, chunk_start).await;
        self.quiet_since = None;
        self.shared.mark_busy(self.key);
        self.position += chunk.len() as u64;
        self.counters.bytes_read.increment(chunk.len() as u64);
        if let Ok(metadata) = self.file.metadata() {
            self.counters.set_size(metadata.len());
        }
        self.splitter.push(&chunk, &mut self.pieces);
        // Taken out to be drained while the pieces are handed on; put back
        // to keep its allocation.
        let mut pieces = std::mem::take(&mut self.pieces);
        let mut pieces_left = pieces.drain(..);
        let mut run: Vec<(u64, Bytes)> = Vec::new();
        loop {
            let piece = pieces_left.next();
            if let Some(Piece::Line { position, line }) = piece {
                run.push((position, line));
                continue;
            }
            if !run.is_empty() {
                match self.send_lines(std::mem::take(&mut run), &chunk, chunk_start).await {
                    Handed::Next => {}
                    Handed::AcksGone => break,
                    Handed::Finish(finished) => return ControlFlow::Break(finished),
                }
            }
            let Some(Piece::Overlong {
                line_position,
                bytes,
                last,
            }) = piece
            else {
                break;
            };
            match self
                .reject_piece(line_position, &bytes, last, &chunk, chunk_start)
                .await
            {
                Handed::Next => {}
                Handed::AcksGone => break,
                Handed::Finish(finished) => return ControlFlow::Break(finished),
            }
        }
        drop(pieces_left);
        self.pieces = pieces;
        self.recent = keep_last(&self.recent, &chunk);
        ControlFlow::Continue(())
    }

    /// Sends a run of complete lines as one batch and queues its acknowledgement.
    async fn send_lines(&mut self, lines: Vec<(u64, Bytes)>, chunk: &[u8], chunk_start: u64) -> Handed {
        let before = lines
            .last()
            .map(|(p, l)| before_end(&self.recent, chunk, chunk_start, p + l.len() as u64 + 1))
            .expect("a run has lines");
        self.counters.lines_read.increment(lines.len() as u64);
        let (shared, source) = (&self.shared, &self.source);
        let sent = delivery::send(
            &shared.producer,
            &shared.trouble,
            || line_records(shared, source, lines.iter()),
            &mut self.stop,
        )
        .await;
        let ack = match sent {
            Ok(delivery) => Ack::Lines {
                lines,
                source: self.source.clone(),
                delivery,
                before,
            },
            Err(Outcome::Fatal(error)) => {
                self.shared.fail(SenderError::Fatal(error));
                return Handed::Finish(Finished::Stopped);
            }
            Err(_) => return Handed::Finish(Finished::Stopped),
        };
        if self.acks.send(ack).await.is_err() {
            return Handed::AcksGone;
        }
        Handed::Next
    }

    /// Writes a piece of an over-long line to the rejects file; at the
    /// line's end, queues the position's move past it.
    async fn reject_piece(
        &mut self,
        line_position: u64,
        bytes: &[u8],
        last: bool,
        chunk: &[u8],
        chunk_start: u64,
    ) -> Handed {
        self.overlong_length += bytes.len() as u64;
        if let Err(error) = self.shared.reject_overlong(&self.path, line_position, bytes, last) {
            self.shared.fail(error);
            return Handed::Finish(Finished::Stopped);
        }
        if !last {
            return Handed::Next;
        }
        self.counters.lines_rejected.increment(1);
        tracing::warn!(file = %self.path.display(), position = line_position, bytes = self.overlong_length,
            limit = self.shared.config.line_bytes_max, "line longer than line_bytes_max written to the rejects file");
        let end = line_position + std::mem::take(&mut self.overlong_length) + 1;
        let before = before_end(&self.recent, chunk, chunk_start, end);
        if self.acks.send(Ack::Skip { end, before }).await.is_err() {
            return Handed::AcksGone;
        }
        Handed::Next
    }
}

/// The bytes before `end`, a position in the chunk read from `chunk_start`:
/// `recent` (the bytes before the chunk) then the chunk.
fn before_end(recent: &[u8], chunk: &[u8], chunk_start: u64, end: u64) -> Fingerprint {
    let in_chunk = &chunk[..(end - chunk_start) as usize];
    if in_chunk.len() >= BEFORE_BYTES_MAX as usize {
        identity::before_of(in_chunk)
    } else {
        identity::before_of(&[recent, in_chunk].concat())
    }
}

/// The last (at most BEFORE_BYTES_MAX) bytes of `recent` then `chunk`.
fn keep_last(recent: &[u8], chunk: &[u8]) -> Vec<u8> {
    let keep = BEFORE_BYTES_MAX as usize;
    if chunk.len() >= keep {
        return chunk[chunk.len() - keep..].to_vec();
    }
    let mut kept = [recent, chunk].concat();
    kept.drain(..kept.len().saturating_sub(keep));
    kept
}

fn read_chunk(file: &File, position: u64, bytes: usize) -> std::io::Result<Bytes> {
    let mut buffer = vec![0u8; bytes];
    let read = file.read_at(&mut buffer, position)?;
    buffer.truncate(read);
    Ok(Bytes::from(buffer))
}
