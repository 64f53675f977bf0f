//! relay-sender: the file sender behind `relay send`: tails every file matching its path
//! patterns and produces each complete line to a topic, saving a file's
//! position only after the broker acknowledged every line before it.
//!
//! # Layout
//! - [`pattern`]: which paths are watched (`*`, `?` in the file name).
//! - [`identity`]: device + inode + fingerprint: which file is which.
//! - [`registry`]: acknowledged positions, saved atomically.
//! - [`lines`]: splitting bytes into lines across reads; over-long lines.
//! - [`problems`]: paths that cannot be read, reported once, in `/health`.
//! - [`delivery`]: sending a line through any error not about the line.
//! - [`tailer`]: one task per open file: read, produce, acknowledge, watch.
//! - [`rejects`]: the rejects file for lines that cannot be sent.
//! - [`metrics`]: per-file Prometheus counters and the bytes-behind gauge.
//! - [`config`]: [`SenderConfig`], the `[[send]]` section, with its defaults.
//! - [`error`]: [`SenderError`], the one error type of this layer.
//!
//! It builds on relay-client's producer only. The headers it puts on every
//! record and its registry's layout are contracts in relay-proto
//! ([`relay_proto::source_headers`], [`relay_proto::registry`]).
//!
//! Guarantees: a line is sent once it is complete; a restart resumes at the
//! first line not acknowledged, so a crash can only duplicate lines whose
//! acknowledgement was in flight, and those carry the same source headers
//! (`source_host`, `source_file`, `source_position`) so downstream can
//! de-duplicate them. Memory is bounded whatever the file sizes. A line
//! that can never be sent (too long, refused by the broker, or left
//! unterminated by a file that went away) goes to the rejects file with its
//! bytes and reason. Symlinks matching the paths are followed
//! (`follow_symlinks`): identity is the target's, the path shown the link's.

pub mod compressed;
pub mod config;
pub mod delivery;
pub mod error;
pub mod identity;
pub mod lines;
pub mod metrics;
pub mod pattern;
mod placement;
use placement::Seen;
pub mod problems;
pub mod registry;
pub mod rejects;
pub mod tailer;
pub mod wake;

pub use config::{SenderConfig, LINE_BYTES_MAX_DEFAULT};
pub use error::{Result, SenderError};

use bytes::Bytes;
use identity::FileKey;
use parking_lot::Mutex;
use pattern::PathPattern;
use registry::{Entry, Registry};
use rejects::Rejects;
use relay_client::producer::{Producer, ProducerConfig};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The producer's byte budget for all senders of a process: with one read
/// chunk and one unfinished line per open file on top, a process with the
/// default 256 files stays well under 64 MiB.
pub const PRODUCER_BUFFER_BYTES_MAX: usize = 16 * 1024 * 1024;

/// The settings of the producer senders share: the byte budget above, and
/// no delivery timeout, so a broker outage only pauses reading (the file is
/// the buffer) and never drops a line.
pub fn producer_config() -> ProducerConfig {
    ProducerConfig {
        buffer_bytes_max: PRODUCER_BUFFER_BYTES_MAX,
        delivery_timeout: None,
        ..ProducerConfig::default()
    }
}

/// How long discovery waits after a new name's event before it looks, so
/// that a burst of new files is one pass.
const DISCOVER_AFTER_WAKE: std::time::Duration = std::time::Duration::from_millis(10);

/// Truncated files' positions kept for their copies, newest first. Not a
/// time limit: with more files than `open_files_max`, a copy can be opened
/// minutes after its truncation (found by the 200-cut power-loss run: copies
/// opened 150 s late were sent again whole under new ids when positions
/// expired after 60 s). Each is a few dozen bytes.
pub const HANDOVERS_MAX: usize = 16_384;

/// Counters, for logs now and metrics later.
#[derive(Debug, Default)]
pub struct SenderStats {
    pub bytes_read: AtomicU64,
    pub lines_read: AtomicU64,
    pub lines_acked: AtomicU64,
    pub lines_rejected: AtomicU64,
    pub truncations: AtomicU64,
}

pub struct SenderShared {
    pub config: SenderConfig,
    pub producer: Arc<Producer>,
    pub registry: Registry,
    pub rejects: Mutex<Rejects>,
    pub stats: SenderStats,
    pub host: Bytes,
    /// The topic's ongoing send trouble, shared by every file's tailer.
    pub trouble: delivery::Trouble,
    /// Paths that cannot be read, for the log, `/health` and metrics.
    pub problems: problems::Problems,
    /// File events that wake tailers and discovery before their polls.
    pub wake: wake::Wake,
    /// An error after which nothing can be sent (a wrong cluster): the
    /// sender stops with it, positions unchanged.
    fatal: Mutex<Option<SenderError>>,
    /// Files the last discovery found at a watched path.
    watched: Mutex<HashSet<FileKey>>,
    /// Files truncated in place (copytruncate), for their copies to resume from.
    handovers: Mutex<Vec<Handover>>,
    /// Open files at their end with every line acknowledged, and since when.
    pub idle: Mutex<HashMap<FileKey, std::time::Instant>>,
    /// Open files asked to close to make room under `open_files_max`.
    pub evict: Mutex<HashSet<FileKey>>,
    /// Compressed files at a watched path, left alone (logged once each).
    compressed: Mutex<HashSet<FileKey>>,
}

/// What a truncated file's tailer had read when the truncation was seen: a
/// copy of the old content (same fingerprint) resumes there instead of
/// sending everything again.
#[derive(Debug, Clone)]
pub struct Handover {
    pub fingerprint: identity::Fingerprint,
    /// The truncated content's identity, which its copy inherits.
    pub file_id: identity::FileId,
    pub position: u64,
    /// The bytes just before `position`: a copy must hold them too.
    pub before: Option<identity::Fingerprint>,
    /// Where the truncated file is: a copy is named after it.
    pub original_path: std::path::PathBuf,
    pub at: std::time::Instant,
}

impl SenderShared {
    pub fn is_watched(&self, key: FileKey) -> bool {
        self.watched.lock().contains(&key)
    }

    pub fn hand_over(&self, handover: Handover) {
        let mut handovers = self.handovers.lock();
        if handovers.len() >= HANDOVERS_MAX {
            handovers.remove(0);
        }
        handovers.push(handover);
    }

    /// Records an error after which nothing can be sent; the sender stops.
    pub fn fail(&self, error: SenderError) {
        tracing::error!(topic = %self.config.topic, %error, "stopping the sender (positions unchanged)");
        self.fatal.lock().get_or_insert(error);
    }

    /// Saves a registry that must be durable before the sender goes on (a
    /// file's identity before its first line, a copytruncate handover): a
    /// failure stops the sender, positions unchanged, instead of sending
    /// lines whose identity a crash could change (found by the 200-cut power
    /// loss run under `relay up`: a save failed on the dying disk, the lines
    /// went out anyway, and after the restart the copy got a new id).
    pub fn must_save(&self) -> bool {
        match self.registry.save() {
            Ok(()) => true,
            Err(error) => {
                self.fail(error);
                false
            }
        }
    }

    /// Saves the registry now (a checkpoint); a failure is logged and the
    /// next checkpoint tries again.
    pub fn checkpoint(&self) {
        if let Err(error) = self.registry.save() {
            tracing::error!(%error, "saving the registry failed; retrying at the next checkpoint");
        }
    }
}

/// The key of a JSON line: the field's string, or its JSON text for numbers
/// and booleans; `None` when the line is not a JSON object with that field.
pub fn key_of(line: &[u8], field: &str) -> Option<Bytes> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    match value.get(field)? {
        serde_json::Value::String(text) => Some(Bytes::from(text.clone())),
        serde_json::Value::Null => None,
        other => Some(Bytes::from(other.to_string())),
    }
}

fn host_name() -> Bytes {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| Bytes::from(h.trim().to_owned()))
        .unwrap_or_else(|_| Bytes::from_static(b"unknown"))
}

pub struct Sender {
    shared: Arc<SenderShared>,
    patterns: Vec<PathPattern>,
    /// Copies of open files seen, and since when.
    copies_waiting: Mutex<HashMap<FileKey, std::time::Instant>>,
}

impl Sender {
    pub fn new(config: SenderConfig, producer: Arc<Producer>) -> Result<Self> {
        let patterns = config
            .paths
            .iter()
            .map(|p| PathPattern::parse(p))
            .collect::<Result<Vec<_>, _>>()?;
        if patterns.is_empty() {
            return Err(SenderError::NoPatterns);
        }
        let state_dir = config.state_dir();
        let topic = config.topic.clone();
        let registry = Registry::open(&state_dir)?;
        let rejects = Mutex::new(Rejects::new(&state_dir));
        let shared = Arc::new(SenderShared {
            config,
            producer,
            registry,
            rejects,
            stats: SenderStats::default(),
            host: host_name(),
            trouble: delivery::Trouble::new(&topic),
            problems: problems::Problems::new(&topic),
            wake: wake::Wake::default(),
            fatal: Mutex::new(None),
            watched: Mutex::new(HashSet::new()),
            idle: Mutex::new(HashMap::new()),
            evict: Mutex::new(HashSet::new()),
            compressed: Mutex::new(HashSet::new()),
            handovers: Mutex::new(Vec::new()),
        });
        Ok(Self {
            shared,
            patterns,
            copies_waiting: Mutex::new(HashMap::new()),
        })
    }

    pub fn shared(&self) -> &Arc<SenderShared> {
        &self.shared
    }

    /// Runs until `stop` turns true; then drains acknowledgements (bounded by
    /// `drain_timeout`) and saves the registry.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<()> {
        let shared = &self.shared;
        let mut tailers: JoinSet<(FileKey, tailer::Finished)> = JoinSet::new();
        let mut open: HashMap<FileKey, PathBuf> = HashMap::new();
        let mut refused_for_limit = false;
        tracing::info!(topic = %shared.config.topic, patterns = ?shared.config.paths, state_dir = %shared.config.state_dir().display(), "sender started");
        // Tailers stop with the sender (a stop, or a fatal error), not only on a stop.
        let (halt, halted) = watch::channel(false);
        let checkpoints = tokio::spawn(checkpoint_while_running(Arc::clone(shared), halted.clone()));
        shared.wake.start();
        loop {
            for pattern in &self.patterns {
                shared.wake.watch_dir(pattern.dir());
            }
            while let Some(done) = tailers.try_join_next() {
                if let Ok((key, finished)) = done {
                    self.finish(&mut open, key, finished);
                }
            }
            let room = shared.config.open_files_max.saturating_sub(open.len());
            let mut found = self.discover(&open, room);
            *shared.watched.lock() = found.iter().map(|(key, _, _)| *key).collect();
            let behind = self.left_behind(&found, &open);
            found.extend(
                behind
                    .into_iter()
                    .map(|(key, path, file)| (key, path, Seen::Open(file))),
            );
            // Files with new lines that cannot be opened this pass (open_files_max).
            let mut waiting = 0;
            // Files opened this pass, started once their identities are saved.
            let mut starting: Vec<tailer::Tail> = Vec::new();
            for (key, path, file) in found {
                if let Some(known) = open.get_mut(&key) {
                    if *known != path {
                        // Renamed (rotated): the registry shows where the file is now.
                        shared.registry.moved(key, &path);
                        *known = path;
                    }
                    continue;
                }
                let file = match file {
                    Seen::Open(file) => file,
                    Seen::Settled => {
                        if shared.registry.get(key).is_some_and(|entry| entry.path != path) {
                            shared.registry.moved(key, &path); // renamed while closed
                        }
                        continue; // fully acknowledged, and not grown since
                    }
                    Seen::NoRoom => {
                        waiting += 1;
                        continue;
                    }
                };
                if open.len() >= shared.config.open_files_max {
                    waiting += 1;
                    continue;
                }
                if self.is_copy_of_open_file(key, &path, &file, &open) {
                    continue; // wait for the original's truncation to hand over its position
                }
                let start_position = match self.start_position(key, &path, &file) {
                    Ok(position) => position,
                    Err(error) => {
                        // Not new content: tried again at the next pass.
                        let problem = format!("cannot read its identity: {error}");
                        shared
                            .problems
                            .report(&path.display().to_string(), problem, problems::Severity::Unreadable);
                        continue;
                    }
                };
                open.insert(key, path.clone());
                starting.push(tailer::Tail {
                    path,
                    file: Arc::new(file),
                    key,
                    start_position,
                });
            }
            // The identities files are read under are saved before their
            // first lines go out (a kill must not give the same lines another
            // identity after the restart): once per pass for all the files it
            // opens, not once per file (10,000 files were 10,000 rewrites of
            // the whole registry at start-up).
            if !starting.is_empty() && !shared.must_save() {
                for tail in starting.drain(..) {
                    open.remove(&tail.key);
                }
            }
            for tail in starting.drain(..) {
                tracing::info!(file = %tail.path.display(), position = tail.start_position, "reading file");
                tailers.spawn(tailer::run(Arc::clone(shared), tail, halted.clone()));
            }
            if waiting > 0 {
                if !refused_for_limit {
                    tracing::warn!(
                        limit = shared.config.open_files_max,
                        waiting,
                        "open_files_max reached; further files wait (idle, fully acknowledged files are closed to make room)"
                    );
                    refused_for_limit = true;
                }
                // As many as wait, at once: files can appear faster than one per pass.
                self.make_room(waiting);
            } else {
                refused_for_limit = false;
            }
            if shared.fatal.lock().is_some() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(shared.config.discover_interval()) => {}
                _ = shared.wake.new_name() => {
                    // A burst of new files is taken in one pass, not one each.
                    tokio::time::sleep(DISCOVER_AFTER_WAKE).await;
                }
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
        let _ = halt.send(true);
        // Tailers stop reading; their acknowledgement tasks drain what is in flight.
        let drained = tokio::time::timeout(shared.config.drain_timeout(), async {
            while let Some(done) = tailers.join_next().await {
                if let Ok((key, finished)) = done {
                    self.finish(&mut open, key, finished);
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                files = tailers.len(),
                "acknowledgements still missing at shutdown; those lines are sent again next time"
            );
            tailers.abort_all();
        }
        checkpoints.abort();
        shared.registry.save()?;
        tracing::info!("sender stopped; registry saved");
        match shared.fatal.lock().take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn finish(&self, open: &mut HashMap<FileKey, PathBuf>, key: FileKey, finished: tailer::Finished) {
        let path = open.remove(&key).unwrap_or_default();
        match finished {
            tailer::Finished::Deleted => {
                tracing::info!(file = %path.display(), "file deleted; finished and closed");
                self.shared.registry.remove(key);
            }
            tailer::Finished::RotatedAway => {
                tracing::info!(file = %path.display(), "file rotated away; finished and closed");
                self.shared.registry.remove(key);
            }
            tailer::Finished::Evicted => {
                tracing::info!(file = %path.display(), "idle and fully acknowledged; closed to make room (read again when it grows)");
            }
            tailer::Finished::Stopped => {}
        }
    }
}

/// Saves the registry whenever acknowledged positions moved, at most every
/// `checkpoint_interval_ms`, so a kill -9 re-sends little more than what was
/// in flight. The fsyncs run on a blocking thread.
async fn checkpoint_while_running(shared: Arc<SenderShared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(shared.config.checkpoint_interval()) => {}
            _ = stop.changed() => return,
        }
        let saving = Arc::clone(&shared);
        let _ = tokio::task::spawn_blocking(move || saving.checkpoint()).await;
    }
}
