//! relay-sender: the file sender behind `relay send`: tails every file matching its path
//! patterns and produces each complete line to a topic, saving a file's
//! position only after the broker acknowledged every line before it.
//!
//! # Layout
//! - [`pattern`]: which paths are watched (`*`, `?` in the file name).
//! - [`identity`]: device + inode + fingerprint: which file is which.
//! - [`registry`]: acknowledged positions, saved atomically.
//! - [`lines`]: splitting bytes into lines across reads; over-long lines.
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
//! de-duplicate them. Memory is bounded whatever the file sizes.

pub mod config;
pub mod error;
pub mod identity;
pub mod lines;
pub mod metrics;
pub mod pattern;
pub mod registry;
pub mod rejects;
pub mod tailer;

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
use std::time::Duration;
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

/// How long a truncated file's position waits for its copy to be found.
const HANDOVER_KEEP: Duration = Duration::from_secs(60);

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
    /// Files the last discovery found at a watched path.
    watched: Mutex<HashSet<FileKey>>,
    /// Files truncated in place (copytruncate), for their copies to resume from.
    handovers: Mutex<Vec<Handover>>,
}

/// What a truncated file's tailer had read when the truncation was seen: a
/// copy of the old content (same fingerprint) resumes there instead of
/// sending everything again.
#[derive(Debug, Clone, Copy)]
pub struct Handover {
    pub fingerprint: identity::Fingerprint,
    pub position: u64,
    pub at: std::time::Instant,
}

impl SenderShared {
    pub fn is_watched(&self, key: FileKey) -> bool {
        self.watched.lock().contains(&key)
    }

    pub fn hand_over(&self, handover: Handover) {
        let mut handovers = self.handovers.lock();
        handovers.retain(|h| h.at.elapsed() < HANDOVER_KEEP);
        handovers.push(handover);
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
        let registry = Registry::open(&state_dir)?;
        let rejects = Mutex::new(Rejects::new(&state_dir));
        let shared = Arc::new(SenderShared {
            config,
            producer,
            registry,
            rejects,
            stats: SenderStats::default(),
            host: host_name(),
            watched: Mutex::new(HashSet::new()),
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
        loop {
            while let Some(done) = tailers.try_join_next() {
                if let Ok((key, finished)) = done {
                    self.finish(&mut open, key, finished);
                }
            }
            let found = self.discover();
            *shared.watched.lock() = found.iter().map(|(key, _, _)| *key).collect();
            for (key, path, file) in found {
                if open.contains_key(&key) {
                    continue;
                }
                if open.len() >= shared.config.open_files_max {
                    if !refused_for_limit {
                        tracing::warn!(
                            limit = shared.config.open_files_max,
                            "open_files_max reached; further files wait"
                        );
                        refused_for_limit = true;
                    }
                    break;
                }
                refused_for_limit = false;
                if self.is_copy_of_open_file(key, &file, &open) {
                    continue; // wait for the original's truncation to hand over its position
                }
                let start_position = self.start_position(key, &path, &file);
                tracing::info!(file = %path.display(), position = start_position, "reading file");
                open.insert(key, path.clone());
                let tail = tailer::Tail {
                    path,
                    file: Arc::new(file),
                    key,
                    start_position,
                };
                tailers.spawn(tailer::run(Arc::clone(shared), tail, stop.clone()));
            }
            if let Err(error) = shared.registry.save() {
                tracing::error!(%error, "saving the registry failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(shared.config.discover_interval()) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
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
        shared.registry.save()?;
        tracing::info!("sender stopped; registry saved");
        Ok(())
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
            tailer::Finished::Stopped => {}
        }
    }

    /// Every file at a watched path, opened, with its identity.
    fn discover(&self) -> Vec<(FileKey, PathBuf, std::fs::File)> {
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        for pattern in &self.patterns {
            for path in pattern.matching_files() {
                let Ok(file) = std::fs::File::open(&path) else { continue };
                let Ok(key) = identity::key_of(&file) else { continue };
                if seen.insert(key) {
                    found.push((key, path, file));
                }
            }
        }
        found
    }

    /// A new file whose first bytes equal those of a file being read is a
    /// copy about to be followed by a truncation (copytruncate). It waits up
    /// to `rotate_wait` for the handover; after that it is read as it is.
    fn is_copy_of_open_file(&self, key: FileKey, file: &std::fs::File, open: &HashMap<FileKey, PathBuf>) -> bool {
        if self.shared.registry.get(key).is_some() {
            return false;
        }
        let Ok(fingerprint) = identity::fingerprint(file) else {
            return false;
        };
        if fingerprint.bytes < identity::FINGERPRINT_BYTES_MAX {
            return false;
        }
        let copy = open.keys().any(|open_key| {
            self.shared
                .registry
                .get(*open_key)
                .is_some_and(|e| e.fingerprint == fingerprint)
        });
        if !copy {
            return false;
        }
        let mut waiting = self.copies_waiting.lock();
        let since = *waiting.entry(key).or_insert_with(std::time::Instant::now);
        since.elapsed() < self.shared.config.rotate_wait()
    }

    /// Where to start a file: its acknowledged position when the registry
    /// knows this very file, the handed-over position when it is the copy of
    /// a truncated file, else 0.
    fn start_position(&self, key: FileKey, path: &std::path::Path, file: &std::fs::File) -> u64 {
        let registry = &self.shared.registry;
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        let fingerprint = identity::fingerprint(file).unwrap_or(identity::Fingerprint { bytes: 0, crc: 0 });
        let position = match registry.get(key) {
            Some(entry) if identity::still_matches(file, entry.fingerprint).unwrap_or(false) => {
                if entry.acked_position > length {
                    tracing::warn!(file = %path.display(), position = entry.acked_position, size = length, "file shrank below its saved position (copytruncate); reading it from the start");
                    0
                } else {
                    entry.acked_position
                }
            }
            Some(_) => {
                tracing::info!(file = %path.display(), "a different file now has this inode; reading it from the start");
                0
            }
            None => {
                let handovers = self.shared.handovers.lock();
                match handovers
                    .iter()
                    .rev()
                    .find(|h| h.fingerprint == fingerprint && h.position <= length)
                {
                    Some(handover) => {
                        tracing::info!(file = %path.display(), position = handover.position, "copy of a truncated file; resuming where the original was read to");
                        handover.position
                    }
                    None => 0,
                }
            }
        };
        self.copies_waiting.lock().remove(&key);
        registry.set(
            key,
            Entry {
                fingerprint,
                acked_position: position,
                path: path.to_path_buf(),
            },
        );
        position
    }
}
