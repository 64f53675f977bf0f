//! Tailing one file: read from the acknowledged position in chunks, split
//! into lines, produce each chunk's complete lines as one batch with their
//! source headers (`Producer::send_batch`: one answer per chunk, header
//! names static, positions' digits in one buffer), and move the registry's
//! position only as acknowledgements arrive, in file order.
//!
//! At the end of the file it watches for growth, truncation or rewriting
//! (copytruncate, or new content with the same first bytes: start again
//! from 0 under the id's successor, saved before any line goes out under
//! it, counted), deletion (finish what was written, then close), and
//! rotation away from the watched paths (close after `rotate_wait` of
//! quiet). A file "goes away" exactly then: deleted (no name left) or
//! rotated away and quiet; its unterminated last line, which can no longer
//! be completed, goes whole to the rejects file. An fstat or read error on
//! the open file is neither: it is retried, the position kept.
//!
//! Memory per file: one read chunk, the unfinished line (at most
//! `line_bytes_max`), and the batches awaited (at most
//! `BATCHES_IN_FLIGHT_MAX`, and across files the producer's byte budget).

use super::delivery::{self, Outcome};
use super::error::SenderError;
use super::identity::{self, FileId, FileKey, Fingerprint, BEFORE_BYTES_MAX, FINGERPRINT_BYTES_MAX};
use super::lines::{LineSplitter, Piece};
use super::metrics::FileMetrics;
use super::shared::{Handover, SenderShared};
use bytes::{Bytes, BytesMut};
use relay_client::producer::{BatchDelivery, BatchRecord};
use relay_proto::source_headers;
use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

mod acknowledge;
use acknowledge::{acknowledge, Source};

/// Bytes read per chunk: large enough for few syscalls, small enough that a
/// hundred open files stay within the memory budget.
pub const READ_CHUNK_BYTES: usize = 256 * 1024;
/// How long a stop lets a file be read on to where it ended at the stop.
pub const STOP_READ_WAIT_MAX: Duration = Duration::from_secs(5);
/// Batches (each at most one read chunk's lines) awaited per file before
/// reading pauses; the producer's byte budget bounds all files together.
pub const BATCHES_IN_FLIGHT_MAX: usize = 64;

/// The source headers' names, shared by every record.
const HOST: Bytes = Bytes::from_static(source_headers::HEADER_HOST.as_bytes());
const FILE: Bytes = Bytes::from_static(source_headers::HEADER_FILE.as_bytes());
const FILE_ID: Bytes = Bytes::from_static(source_headers::HEADER_FILE_ID.as_bytes());
const POSITION: Bytes = Bytes::from_static(source_headers::HEADER_POSITION.as_bytes());

enum Ack {
    /// Lines sent as one batch: each line's position and bytes (slices of
    /// the read chunk), and their source, to send them again after a
    /// transient error.
    Lines {
        lines: Vec<(u64, Bytes)>,
        file_id: Bytes,
        delivery: BatchDelivery,
        /// The bytes before the last line's end, saved with the position.
        before: Fingerprint,
    },
    /// A line that went to the rejects file: the position moves past it.
    Skip { end: u64, before: Fingerprint },
    /// The file grew past its fingerprint: a longer one, for its content now.
    Fingerprint(Fingerprint),
    /// The file was truncated or rewritten: new content, under a new
    /// identity, from position 0.
    /// The tailer sends no line under the new identity before it is saved
    /// (`saved` answers): a kill before the save must not let a second
    /// rewrite reuse the identity whose positions already carry other lines.
    Reset {
        file_id: FileId,
        fingerprint: Option<Fingerprint>,
        saved: tokio::sync::oneshot::Sender<bool>,
    },
}

pub struct Tail {
    pub path: PathBuf,
    pub file: Arc<File>,
    pub key: FileKey,
    pub start_position: u64,
}

/// Why a tailer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Stopped,
    Deleted,
    RotatedAway,
    /// Idle and fully acknowledged, closed to make room under `open_files_max`.
    Evicted,
}

pub async fn run(shared: Arc<SenderShared>, tail: Tail, mut stop: watch::Receiver<bool>) -> (FileKey, Finished) {
    let Tail {
        path,
        file,
        key,
        start_position,
    } = tail;
    let counters = Arc::new(FileMetrics::new(&shared.config.topic, &path, start_position));
    if let Ok(metadata) = file.metadata() {
        counters.set_size(metadata.len());
    }
    let (acks, pending) = mpsc::channel(BATCHES_IN_FLIGHT_MAX);
    let path_text = Bytes::from(path.display().to_string());
    let ack_task = tokio::spawn(acknowledge(
        Arc::clone(&shared),
        Source {
            key,
            path: path.clone(),
            path_text: path_text.clone(),
            file: Arc::clone(&file),
        },
        pending,
        Arc::clone(&counters),
        stop.clone(),
    ));
    // The tailer's own view of which content it reads; the registry learns
    // changes through the acknowledgement queue, in file order, so a
    // checkpoint never pairs new content with an old identity or position.
    let entry = shared.registry.get(key);
    let mut known: Option<Fingerprint> = entry.as_ref().map(|e| e.fingerprint);
    let mut current_id: Option<FileId> = entry.map(|e| e.file_id);
    let mut file_id = file_id_header(current_id);
    let mut position = start_position;
    let mut splitter = LineSplitter::new(position, shared.config.line_bytes_max);
    let mut pieces = Vec::new();
    let mut overlong_length = 0u64;
    let mut quiet_since: Option<Instant> = None;
    // The bytes just before `position` (at most BEFORE_BYTES_MAX): what the
    // file must still hold there, and what positions are saved with.
    let mut recent = identity::bytes_before(&file, position).unwrap_or_default();
    // An fstat failing on the open file (EIO, say) is not a deletion: said once, retried.
    let mut stat_failing = false;
    let mut read_failing = false;
    // Events on the file's name wake it before the poll (written lines are
    // read at once); the poll stays for filesystems without events.
    let woken = shared.wake.file(&path);
    // At a stop, the file is read on to where it ended at that moment (the
    // application's last lines go out before the loaders stop), for at most
    // STOP_READ_WAIT_MAX.
    let mut stopping: Option<(u64, Instant)> = None;
    let finished = 'reading: loop {
        if *stop.borrow() {
            let (end, since) =
                *stopping.get_or_insert_with(|| (file.metadata().map_or(0, |m| m.len()), Instant::now()));
            if position >= end || since.elapsed() >= STOP_READ_WAIT_MAX {
                break Finished::Stopped;
            }
        }
        // Only what the file holds past the position is read: an idle file
        // costs one fstat per poll, not a read buffer.
        let available = file.metadata().map_or(u64::MAX, |m| m.len()).saturating_sub(position);
        let chunk = if available == 0 {
            Ok(Bytes::new())
        } else {
            let reader = Arc::clone(&file);
            let bytes = available.min(READ_CHUNK_BYTES as u64) as usize;
            tokio::task::spawn_blocking(move || read_chunk(&reader, position, bytes))
                .await
                .expect("read task")
        };
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                // EIO and the like: the position is kept, never skipped.
                if !std::mem::replace(&mut read_failing, true) {
                    tracing::warn!(file = %path.display(), position, %error, "read failed; retrying (its position is kept)");
                }
                Bytes::new()
            }
        };
        if !chunk.is_empty() {
            read_failing = false;
        }
        // A file rewritten under us (copytruncate with a fast writer) must not
        // be read from the old position: check its first bytes before using a chunk.
        // The bytes before the position must match too: a rewrite with the
        // same banner keeps the first bytes.
        let rewritten = known.is_some_and(|f| f.bytes > 0 && !identity::still_matches(&file, f).unwrap_or(true))
            || (!chunk.is_empty()
                && !identity::still_before(&file, position, Some(identity::before_of(&recent))).unwrap_or(true));
        if !chunk.is_empty() && !rewritten {
            let chunk_start = position;
            quiet_since = None;
            shared.mark_busy(key);
            position += chunk.len() as u64;
            shared.stats.bytes_read.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            counters.bytes_read.increment(chunk.len() as u64);
            if let Ok(metadata) = file.metadata() {
                counters.set_size(metadata.len());
            }
            splitter.push(&chunk, &mut pieces);
            // The bytes before any position in this chunk: `recent` then the chunk.
            let before_end = |end: u64| {
                let in_chunk = &chunk[..(end - chunk_start) as usize];
                if in_chunk.len() >= BEFORE_BYTES_MAX as usize {
                    identity::before_of(in_chunk)
                } else {
                    identity::before_of(&[&recent[..], in_chunk].concat())
                }
            };
            // Complete lines gather into one batch; an over-long line's
            // pieces go to the rejects file in between, in file order.
            let mut run: Vec<(u64, Bytes)> = Vec::new();
            let mut pieces_left = pieces.drain(..);
            loop {
                let piece = pieces_left.next();
                if let Some(Piece::Line { position, line }) = piece {
                    run.push((position, line));
                    continue;
                }
                if !run.is_empty() {
                    let lines = std::mem::take(&mut run);
                    let before = lines
                        .last()
                        .map(|(p, l)| before_end(p + l.len() as u64 + 1))
                        .expect("a run has lines");
                    shared.stats.lines_read.fetch_add(lines.len() as u64, Ordering::Relaxed);
                    counters.lines_read.increment(lines.len() as u64);
                    let sent = delivery::send(
                        &shared.producer,
                        &shared.trouble,
                        || line_records(&shared, &path_text, &file_id, lines.iter()),
                        &mut stop,
                    )
                    .await;
                    let ack = match sent {
                        Ok(delivery) => Ack::Lines {
                            lines,
                            file_id: file_id.clone(),
                            delivery,
                            before,
                        },
                        Err(Outcome::Fatal(error)) => {
                            shared.fail(SenderError::Fatal(error));
                            break 'reading Finished::Stopped;
                        }
                        Err(_) => break 'reading Finished::Stopped,
                    };
                    if acks.send(ack).await.is_err() {
                        break;
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
                overlong_length += bytes.len() as u64;
                if let Err(error) = shared.reject_overlong(&path, line_position, &bytes, last) {
                    shared.fail(error);
                    break 'reading Finished::Stopped;
                }
                if !last {
                    continue;
                }
                shared.stats.lines_rejected.fetch_add(1, Ordering::Relaxed);
                counters.lines_rejected.increment(1);
                tracing::warn!(file = %path.display(), position = line_position, bytes = overlong_length,
                    limit = shared.config.line_bytes_max, "line longer than line_bytes_max written to the rejects file");
                let end = line_position + std::mem::take(&mut overlong_length) + 1;
                let before = before_end(end);
                if acks.send(Ack::Skip { end, before }).await.is_err() {
                    break;
                }
            }
            recent = keep_last(&recent, &chunk);
            continue;
        }
        // At the end of what is written: what happened to the file?
        let metadata = match file.metadata() {
            Ok(metadata) => {
                stat_failing = false;
                metadata
            }
            Err(error) => {
                // A deleted file's descriptor still answers fstat: an error is
                // the disk's or the kernel's, and the unsent rest is kept.
                if !std::mem::replace(&mut stat_failing, true) {
                    tracing::warn!(file = %path.display(), position, %error, "cannot stat the open file; retrying (its position is kept)");
                }
                tokio::time::sleep(shared.config.poll_interval()).await;
                continue;
            }
        };
        if metadata.len() < position || rewritten {
            tracing::warn!(file = %path.display(), position, size = metadata.len(), "file truncated or rewritten (copytruncate); reading it again from the start");
            shared.stats.truncations.fetch_add(1, Ordering::Relaxed);
            counters.truncations.increment(1);
            if let (Some(old), Some(old_id)) = (known, current_id) {
                // The copy resumes where the original is acknowledged, not
                // where it was read: lines in flight may never be delivered
                // (a kill before their ack). Sending them again under the
                // same identity loads them once.
                let (acknowledged, before) = shared
                    .registry
                    .get(key)
                    .map_or((0, None), |e| (e.acked_position, e.before));
                shared.hand_over(Handover {
                    fingerprint: old,
                    file_id: old_id,
                    position: acknowledged.min(splitter.resume_position()),
                    before,
                    original_path: path.to_path_buf(),
                    at: Instant::now(),
                });
            }
            position = 0;
            recent = Vec::new();
            splitter = LineSplitter::new(0, shared.config.line_bytes_max);
            let new_id = current_id.map_or_else(identity::new_file_id, FileId::successor);
            file_id = file_id_header(Some(new_id));
            current_id = Some(new_id);
            known = identity::fingerprint(&file).ok();
            let (saved, is_saved) = tokio::sync::oneshot::channel();
            let reset = Ack::Reset {
                file_id: new_id,
                fingerprint: known,
                saved,
            };
            let _ = acks.send(reset).await;
            if is_saved.await != Ok(true) {
                break Finished::Stopped;
            }
            continue;
        }
        if known.is_some_and(|f| f.bytes < FINGERPRINT_BYTES_MAX && metadata.len() > f.bytes) {
            if let Ok(fingerprint) = identity::fingerprint(&file) {
                known = Some(fingerprint);
                let _ = acks.send(Ack::Fingerprint(fingerprint)).await;
            }
        }
        counters.set_size(metadata.len());
        if metadata.nlink() == 0 {
            counters.set_size(0);
            break Finished::Deleted;
        }
        let quiet = *quiet_since.get_or_insert_with(Instant::now);
        if !shared.is_watched(key) && quiet.elapsed() >= shared.config.rotate_wait() {
            break Finished::RotatedAway;
        }
        let acknowledged = shared.registry.get(key).is_some_and(|e| e.acked_position == position);
        if acknowledged && splitter.buffered_bytes() == 0 {
            shared.mark_idle(key, quiet);
            if shared.take_eviction(key) {
                break Finished::Evicted;
            }
        } else {
            shared.mark_busy(key);
        }
        tokio::select! {
            _ = tokio::time::sleep(shared.config.poll_interval()) => {}
            _ = woken.notified() => {}
            _ = stop.changed() => {}
        }
    };
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
    shared.stats.lines_rejected.fetch_add(1, Ordering::Relaxed);
    counters.lines_rejected.increment(1);
    tracing::warn!(file = %path.display(), position, bytes = bytes.len(), reason, "a line that never ended was written whole to the rejects file");
    true
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

fn file_id_header(file_id: Option<FileId>) -> Bytes {
    Bytes::from(file_id.map_or_else(String::new, |id| id.to_string()))
}

/// The records of lines of one file, with their source headers: the names
/// static, path, id and host shared, every position's digits in one buffer.
fn line_records<'a>(
    shared: &SenderShared,
    path: &Bytes,
    file_id: &Bytes,
    lines: impl ExactSizeIterator<Item = &'a (u64, Bytes)> + Clone,
) -> Vec<BatchRecord> {
    let mut digits = BytesMut::with_capacity(lines.len() * 12);
    for (position, _) in lines.clone() {
        let _ = write!(digits, "{position}");
    }
    let mut digits = digits.freeze();
    let key_field = shared.config.key_field.as_deref();
    lines
        .map(|(position, line)| {
            let position = digits.split_to(digits_len(*position));
            BatchRecord {
                key: key_field.and_then(|field| super::lines::key_of(line, field)),
                value: Some(line.clone()),
                headers: vec![
                    (HOST, Some(shared.host.clone())),
                    (FILE, Some(path.clone())),
                    (FILE_ID, Some(file_id.clone())),
                    (POSITION, Some(position)),
                ],
                timestamp_ms: None,
            }
        })
        .collect()
}

/// Decimal digits of `value`.
fn digits_len(value: u64) -> usize {
    value.checked_ilog10().map_or(1, |log| log as usize + 1)
}
