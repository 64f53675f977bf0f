//! [`SenderShared`]: what a sender's discovery loop ([`crate::Sender`]) and
//! its files' tailers share: the producer, the registry, the rejects file,
//! the topic's send trouble, and the bookkeeping between them (idle files
//! and the ones asked to close, files at watched paths, truncated files'
//! handovers, a fatal error). Every lock is taken here, in one method, never
//! held across an await, and never two at once except `idle` then `evict`.

use crate::config::SenderConfig;
use crate::delivery;
use crate::error::SenderError;
use crate::identity::{self, FileKey};
use crate::problems;
use crate::registry::Registry;
use crate::rejects::Rejects;
use crate::wake;
use bytes::Bytes;
use parking_lot::Mutex;
use relay_client::producer::Producer;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Truncated files' positions kept for their copies, newest first. Not a
/// time limit: with more files than `open_files_max`, a copy can be opened
/// minutes after its truncation (found by the 200-cut power-loss run: copies
/// opened 150 s late were sent again whole under new ids when positions
/// expired after 60 s). Each is a few dozen bytes.
pub const HANDOVERS_MAX: usize = 16_384;

/// Compressed files remembered as logged: 4,096 keys of 16 bytes, 64 KiB,
/// more than a year of daily rotations of a dozen files.
const COMPRESSED_REMEMBERED_MAX: usize = 4096;

pub struct SenderShared {
    pub config: SenderConfig,
    pub producer: Arc<Producer>,
    pub registry: Registry,
    rejects: Mutex<Rejects>,
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
    idle: Mutex<HashMap<FileKey, Instant>>,
    /// Open files asked to close to make room under `open_files_max`.
    evict: Mutex<HashSet<FileKey>>,
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
    pub original_path: PathBuf,
    pub at: Instant,
}

impl SenderShared {
    /// The state of a sender that has not looked at any file yet.
    pub(crate) fn new(config: SenderConfig, producer: Arc<Producer>, registry: Registry, host: Bytes) -> Self {
        let topic = config.topic.clone();
        let rejects = Mutex::new(Rejects::new(&config.state_dir()));
        Self {
            config,
            producer,
            registry,
            rejects,
            host,
            trouble: delivery::Trouble::new(&topic),
            problems: problems::Problems::new(&topic),
            wake: wake::Wake::default(),
            fatal: Mutex::new(None),
            watched: Mutex::new(HashSet::new()),
            idle: Mutex::new(HashMap::new()),
            evict: Mutex::new(HashSet::new()),
            compressed: Mutex::new(HashSet::new()),
            handovers: Mutex::new(Vec::new()),
        }
    }

    /// Whether the last discovery found `key` at a watched path.
    pub fn is_watched(&self, key: FileKey) -> bool {
        self.watched.lock().contains(&key)
    }

    /// Records the files a discovery found at the watched paths.
    pub fn set_watched(&self, keys: HashSet<FileKey>) {
        *self.watched.lock() = keys;
    }

    /// Keeps what a truncated file's content had acknowledged, for its copy.
    pub fn hand_over(&self, handover: Handover) {
        let mut handovers = self.handovers.lock();
        if handovers.len() >= HANDOVERS_MAX {
            handovers.remove(0);
        }
        handovers.push(handover);
    }

    /// The newest handover that `matches`.
    pub fn find_handover(&self, matches: impl Fn(&Handover) -> bool) -> Option<Handover> {
        self.handovers.lock().iter().rev().find(|h| matches(h)).cloned()
    }

    /// An open file is at its end with every line acknowledged, since
    /// `since` (kept if it already was): it may be asked to close.
    pub fn mark_idle(&self, key: FileKey, since: Instant) {
        self.idle.lock().entry(key).or_insert(since);
    }

    /// An open file has lines to read or to acknowledge: not idle.
    pub fn mark_busy(&self, key: FileKey) {
        self.idle.lock().remove(&key);
    }

    /// Whether `key` was asked to close to make room (the request is taken).
    pub fn take_eviction(&self, key: FileKey) -> bool {
        self.evict.lock().remove(&key)
    }

    /// A file's tailer ended: neither idle nor asked to close any more.
    pub fn closed(&self, key: FileKey) {
        self.idle.lock().remove(&key);
        self.evict.lock().remove(&key);
    }

    /// Asks the `wanted` open files idle the longest (at their end, every
    /// line acknowledged) to close, so files waiting for a slot, the live one
    /// after a rotation above all, are not starved by old ones. Returns the
    /// files asked now.
    pub fn evict_idlest(&self, wanted: usize) -> Vec<FileKey> {
        let idle = self.idle.lock();
        let mut evict = self.evict.lock();
        if !evict.is_empty() {
            return Vec::new(); // the last request is not served yet
        }
        // The longest idle first, as many as files wait to be opened.
        let mut oldest: Vec<(&FileKey, &Instant)> = idle.iter().collect();
        oldest.sort_by_key(|(_, since)| **since);
        evict.extend(oldest.into_iter().take(wanted).map(|(key, _)| *key));
        evict.iter().copied().collect()
    }

    /// Whether the compressed file `key` is seen for the first time (to log it once).
    pub fn first_seen_compressed(&self, key: FileKey) -> bool {
        let mut logged = self.compressed.lock();
        if logged.len() >= COMPRESSED_REMEMBERED_MAX {
            // Old copies are deleted by logrotate long before this many pile
            // up; forgetting them only logs a survivor once more.
            logged.clear();
        }
        logged.insert(key)
    }

    /// Writes a piece of an over-long line to the rejects file (`last`: its end).
    pub fn reject_overlong(&self, path: &Path, position: u64, bytes: &[u8], last: bool) -> Result<(), SenderError> {
        let mut rejects = self.rejects.lock();
        rejects
            .write_overlong(path, position, bytes, last)
            .map_err(|source| rejects_error(rejects.path().to_owned(), path, position, source))
    }

    /// Ends the rejects entry of an over-long line of `path` cut by a
    /// truncation (never continued).
    pub fn end_overlong(&self, path: &Path) -> Result<(), SenderError> {
        let mut rejects = self.rejects.lock();
        rejects
            .end_overlong(path)
            .map_err(|source| rejects_error(rejects.path().to_owned(), path, 0, source))
    }

    /// Writes a whole line to the rejects file with why it cannot be sent.
    pub fn reject_line(&self, path: &Path, position: u64, line: &[u8], reason: &str) -> Result<(), SenderError> {
        let mut rejects = self.rejects.lock();
        rejects
            .write_line(path, position, line, reason)
            .map_err(|source| rejects_error(rejects.path().to_owned(), path, position, source))
    }

    /// Records an error after which nothing can be sent; the sender stops.
    pub fn fail(&self, error: SenderError) {
        tracing::error!(topic = %self.config.topic, %error, "stopping the sender (positions unchanged)");
        self.fatal.lock().get_or_insert(error);
    }

    /// Whether the sender must stop with an error.
    pub fn has_failed(&self) -> bool {
        self.fatal.lock().is_some()
    }

    /// The error the sender stops with, if any.
    pub fn take_failure(&self) -> Option<SenderError> {
        self.fatal.lock().take()
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

fn rejects_error(rejects: PathBuf, file: &Path, position: u64, source: std::io::Error) -> SenderError {
    SenderError::Rejects {
        path: rejects,
        file: file.to_owned(),
        position,
        source,
    }
}
