//! Tailing one file: read from the acknowledged position in chunks, split
//! into lines, produce each chunk's complete lines as one batch with their
//! source headers (`Producer::send_batch`: one answer per chunk; the compact
//! form of `relay_proto::source_headers`: one `relay_source` value shared by
//! every line of the file, which the producer writes once per run in a
//! batch, and each line's position as a varint, all in one buffer), and move
//! the registry's position only as acknowledgements arrive, in file order.
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
//! The loop's steps: [`run`] and the tailer's state here; reading a chunk
//! and sending its lines and over-long pieces in `tailer/read.rs`; the
//! end-of-file checks (truncation, deletion, rotation, idle) and the drain
//! in `tailer/file_end.rs`; the acknowledgements in `tailer/acknowledge.rs`.
//!
//! Memory per file: one read chunk, the unfinished line (at most
//! `line_bytes_max`), and the batches awaited (at most
//! `BATCHES_IN_FLIGHT_MAX`, and across files the producer's byte budget).

use super::identity::{self, FileId, FileKey, Fingerprint};
use super::lines::{LineSplitter, Piece};
use super::metrics::FileMetrics;
use super::shared::SenderShared;
use bytes::Bytes;
use relay_client::producer::{BatchDelivery, BatchRecord};
use relay_proto::source_headers;
use relay_proto::stop::Stop;
use std::fs::File;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

mod acknowledge;
mod file_end;
mod read;
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
const SOURCE: Bytes = Bytes::from_static(source_headers::HEADER_SOURCE.as_bytes());
const POSITION: Bytes = Bytes::from_static(source_headers::HEADER_LINE_POSITION.as_bytes());

/// The header keys the sender's producer writes once per run in a batch.
pub fn sticky_header_keys() -> Vec<Bytes> {
    source_headers::STICKY_HEADER_KEYS
        .iter()
        .map(|key| Bytes::from_static(key.as_bytes()))
        .collect()
}

enum Ack {
    /// Lines sent as one batch: each line's position and bytes (slices of
    /// the read chunk), and their source header, to send them again after a
    /// transient error.
    Lines {
        lines: Vec<(u64, Bytes)>,
        source: Bytes,
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

/// Tails one file until it is deleted, rotated away, closed to make room, or
/// the sender stops; then its acknowledgements are drained.
pub async fn run(shared: Arc<SenderShared>, tail: Tail, stop: Stop) -> (FileKey, Finished) {
    let mut tailer = Tailer::start(shared, tail, stop);
    let finished = loop {
        if tailer.stop_reached() {
            break Finished::Stopped;
        }
        let chunk = tailer.read_next().await;
        // A file rewritten under us (copytruncate with a fast writer) must not
        // be read from the old position: checked before a chunk is used.
        let rewritten = tailer.rewritten(&chunk);
        let next = if !chunk.is_empty() && !rewritten {
            tailer.send_chunk(chunk).await
        } else {
            tailer.at_end(rewritten).await
        };
        if let ControlFlow::Break(finished) = next {
            break finished;
        }
    };
    tailer.finish(finished).await
}

/// A tailer's state between two steps of its loop.
struct Tailer {
    shared: Arc<SenderShared>,
    path: PathBuf,
    path_text: Bytes,
    file: Arc<File>,
    key: FileKey,
    counters: Arc<FileMetrics>,
    acks: mpsc::Sender<Ack>,
    ack_task: tokio::task::JoinHandle<()>,
    stop: Stop,
    /// Events on the file's name wake it before the poll (written lines are
    /// read at once); the poll stays for filesystems without events.
    woken: Arc<Notify>,
    /// The tailer's own view of which content it reads; the registry learns
    /// changes through the acknowledgement queue, in file order, so a
    /// checkpoint never pairs new content with an old identity or position.
    known: Option<Fingerprint>,
    current_id: Option<FileId>,
    /// The `relay_source` header of this file's lines: host, path, `current_id`.
    source: Bytes,
    /// Where the next read starts.
    position: u64,
    splitter: LineSplitter,
    pieces: Vec<Piece>,
    /// Bytes of the over-long line being written to the rejects file.
    overlong_length: u64,
    quiet_since: Option<Instant>,
    /// The bytes just before `position` (at most BEFORE_BYTES_MAX): what the
    /// file must still hold there, and what positions are saved with.
    recent: Vec<u8>,
    /// An fstat failing on the open file (EIO, say) is not a deletion: said once, retried.
    stat_failing: bool,
    read_failing: bool,
    /// At a stop, the file is read on to where it ended at that moment (the
    /// application's last lines go out before the loaders stop), for at most
    /// STOP_READ_WAIT_MAX: that end, and when the stop was seen.
    stopping: Option<(u64, Instant)>,
}

impl Tailer {
    /// Starts the file's acknowledgement task and sets up the reading.
    fn start(shared: Arc<SenderShared>, tail: Tail, stop: Stop) -> Self {
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
        let source = Source {
            key,
            start_position,
            path: path.clone(),
            file: Arc::clone(&file),
        };
        let ack_task = tokio::spawn(acknowledge(
            Arc::clone(&shared),
            source,
            pending,
            Arc::clone(&counters),
            stop.clone(),
        ));
        let entry = shared.registry.get(key);
        let known = entry.as_ref().map(|e| e.fingerprint);
        let current_id = entry.map(|e| e.file_id);
        let splitter = LineSplitter::new(start_position, shared.config.line_bytes_max);
        let recent = identity::bytes_before(&file, start_position).unwrap_or_default();
        let woken = shared.wake.file(&path);
        let line_source = source_header(&shared.host, &path_text, current_id);
        Self {
            shared,
            path,
            path_text,
            file,
            key,
            counters,
            acks,
            ack_task,
            stop,
            woken,
            known,
            current_id,
            source: line_source,
            position: start_position,
            splitter,
            pieces: Vec::new(),
            overlong_length: 0,
            quiet_since: None,
            recent,
            stat_failing: false,
            read_failing: false,
            stopping: None,
        }
    }

    /// Whether a stop ends the reading now: the file is read to where it
    /// ended when the stop was seen, or for STOP_READ_WAIT_MAX.
    fn stop_reached(&mut self) -> bool {
        if !self.stop.is_stopped() {
            return false;
        }
        let file = &self.file;
        let (end, since) = *self
            .stopping
            .get_or_insert_with(|| (file.metadata().map_or(0, |m| m.len()), Instant::now()));
        self.position >= end || since.elapsed() >= STOP_READ_WAIT_MAX
    }
}

/// The `relay_source` header value of a file's lines.
fn source_header(host: &Bytes, path: &Bytes, file_id: Option<FileId>) -> Bytes {
    Bytes::from(source_headers::encode_source(&source_headers::Source {
        host,
        file: path,
        file_id,
    }))
}

/// The records of lines of one file, with their source headers: the names
/// static, the `relay_source` value shared, every position's varint in one
/// buffer.
fn line_records<'a>(
    shared: &SenderShared,
    source: &Bytes,
    lines: impl ExactSizeIterator<Item = &'a (u64, Bytes)> + Clone,
) -> Vec<BatchRecord> {
    let mut varints = Vec::with_capacity(lines.len() * source_headers::POSITION_BYTES_MAX);
    for (position, _) in lines.clone() {
        source_headers::put_position(&mut varints, *position);
    }
    let mut varints = Bytes::from(varints);
    let key_field = shared.config.key_field.as_deref();
    lines
        .map(|(position, line)| {
            let position = varints.split_to(source_headers::position_bytes(*position));
            BatchRecord {
                key: key_field.and_then(|field| super::lines::key_of(line, field)),
                value: Some(line.clone()),
                headers: vec![(SOURCE, Some(source.clone())), (POSITION, Some(position))],
                timestamp_ms: None,
            }
        })
        .collect()
}
