//! [`Sender`]: one `[[send]]` section at work. Its loop discovers the files
//! at the watched paths (which to open and where each starts: [`placement`]),
//! starts one [`tailer`](crate::tailer) per open file once its identity is
//! saved, closes idle files to make room under `open_files_max`, and saves
//! the registry at every checkpoint. At a stop it lets the tailers drain
//! their acknowledgements (bounded by `drain_timeout`) and saves it last.

use crate::config::SenderConfig;
use crate::error::{Result, SenderError};
use crate::identity::FileKey;
use crate::pattern::PathPattern;
use crate::problems;
use crate::registry::Registry;
use crate::shared::SenderShared;
use crate::tailer;
use bytes::Bytes;
use parking_lot::Mutex;
use relay_client::producer::{Producer, ProducerConfig};
use relay_proto::stop::{stop_signal, Stop};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinSet;

mod discovery;
mod placement;
use discovery::{DiscoveryCache, Seen};

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
        sticky_header_keys: tailer::sticky_header_keys(),
        ..ProducerConfig::default()
    }
}

/// How long discovery waits after a new name's event (or a tailer's end
/// while files wait for room) before it looks, so that a burst is one pass.
const DISCOVER_AFTER_WAKE: std::time::Duration = std::time::Duration::from_millis(10);

/// Time between passes while files wait for room under `open_files_max`:
/// each pass asks the files that went idle since to close, so 10,000 new
/// files are not started 256 per `discover_interval`.
const DISCOVER_WHILE_WAITING: std::time::Duration = std::time::Duration::from_millis(20);

fn host_name() -> Bytes {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| Bytes::from(h.trim().to_owned()))
        .unwrap_or_else(|_| Bytes::from_static(b"unknown"))
}

/// The discovery loop's files: the tailers running, and where each open
/// file was last seen.
#[derive(Default)]
struct Running {
    tailers: JoinSet<(FileKey, tailer::Finished)>,
    open: HashMap<FileKey, PathBuf>,
    /// The `open_files_max` warning was said for the files waiting now.
    refused_for_limit: bool,
    /// Files the last pass found waiting for room.
    waiting: usize,
    /// The last pass found every file settled and nothing failed: without
    /// events or a tailer's end since, the next would find the same.
    settled: bool,
}

/// What a pass did with a file it found.
enum Opened {
    /// Nothing to start: already open, settled, a copy waiting, or unreadable.
    Not,
    /// It needs a tailer, and waits for room under `open_files_max`.
    Waiting,
    /// Opened: its tailer starts once the pass saved its identity.
    Start(tailer::Tail),
}

pub struct Sender {
    shared: Arc<SenderShared>,
    patterns: Vec<PathPattern>,
    /// Copies of open files seen, and since when.
    copies_waiting: Mutex<HashMap<FileKey, std::time::Instant>>,
    discovery: Mutex<DiscoveryCache>,
    /// Files discovery opened ([`crate::metrics::DISCOVERY_OPENS`]).
    discovery_opens: metrics::Counter,
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
        let registry = Registry::open(&config.state_dir())?;
        let opens = metrics::counter!(crate::metrics::DISCOVERY_OPENS, "topic" => config.topic.clone());
        let shared = Arc::new(SenderShared::new(config, producer, registry, host_name()));
        Ok(Self {
            shared,
            patterns,
            copies_waiting: Mutex::new(HashMap::new()),
            discovery: Mutex::new(DiscoveryCache::default()),
            discovery_opens: opens,
        })
    }

    pub fn shared(&self) -> &Arc<SenderShared> {
        &self.shared
    }

    /// Runs until `stop` is on; then drains acknowledgements (bounded by
    /// `drain_timeout`) and saves the registry.
    pub async fn run(self, mut stop: Stop) -> Result<()> {
        let shared = &self.shared;
        let mut running = Running::default();
        tracing::info!(topic = %shared.config.topic, patterns = ?shared.config.paths, state_dir = %shared.config.state_dir().display(), "sender started");
        // Tailers stop with the sender (a stop, or a fatal error), not only on
        // a stop.
        let (halt, halted) = stop_signal();
        let checkpoints = tokio::spawn(checkpoint_while_running(Arc::clone(shared), halted.clone()));
        shared.wake.start();
        loop {
            self.discovery_pass(&mut running, &halted);
            if shared.has_failed() {
                break;
            }
            let interval = if running.waiting > 0 {
                DISCOVER_WHILE_WAITING
            } else {
                shared.config.discover_interval()
            };
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shared.wake.new_name() => {
                    // A burst of new files is taken in one pass, not one each.
                    tokio::time::sleep(DISCOVER_AFTER_WAKE).await;
                }
                Some(done) = running.tailers.join_next(), if running.waiting > 0 => {
                    // Room for a waiting file: taken at once, with the ends close behind.
                    if let Ok((key, finished)) = done {
                        self.finish(&mut running.open, key, finished);
                    }
                    running.settled = false;
                    tokio::time::sleep(DISCOVER_AFTER_WAKE).await;
                }
                _ = stop.stopped() => {}
            }
            if stop.is_stopped() {
                break;
            }
        }
        halt.stop();
        self.drain(&mut running).await;
        checkpoints.abort();
        shared.registry.save()?;
        tracing::info!("sender stopped; registry saved");
        match shared.take_failure() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// One pass: finished tailers reaped, the watched paths (and files that
    /// left them with lines unsent) looked at, a tailer started for each
    /// file that needs one and fits under `open_files_max`.
    /// A pass is skipped when the last one found everything settled and
    /// neither events nor a tailer's end say anything changed since.
    fn discovery_pass(&self, running: &mut Running, halted: &Stop) {
        let shared = &self.shared;
        for pattern in &self.patterns {
            shared.wake.watch_dir(pattern.dir());
        }
        while let Some(done) = running.tailers.try_join_next() {
            if let Ok((key, finished)) = done {
                self.finish(&mut running.open, key, finished);
            }
            running.settled = false;
        }
        let changes = shared.wake.take_changes();
        if running.settled && self.nothing_changed(changes.as_ref()) {
            return;
        }
        let room = shared.config.open_files_max.saturating_sub(running.open.len());
        let discovered = self.discover(&running.open, room, changes.as_ref());
        let mut found = discovered.found;
        let watched: std::collections::HashSet<FileKey> = found.iter().map(|(key, _, _)| *key).collect();
        let behind = self.left_behind(&watched, &running.open);
        shared.set_watched(watched);
        running.settled = discovered.settled && behind.is_empty() && self.copies_waiting.lock().is_empty();
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
            match self.open_found(key, path, file, &mut running.open) {
                Opened::Not => {}
                Opened::Waiting => waiting += 1,
                Opened::Start(tail) => starting.push(tail),
            }
        }
        running.settled &= starting.is_empty() && waiting == 0;
        running.waiting = waiting;
        self.start_tailers(starting, running, halted);
        self.note_waiting(waiting, running);
    }

    /// What to do with one file discovery found: follow a rename of an open
    /// one, leave a settled one, count one without room, or open it where
    /// it starts (its identity recorded, not yet saved).
    fn open_found(&self, key: FileKey, path: PathBuf, file: Seen, open: &mut HashMap<FileKey, PathBuf>) -> Opened {
        let shared = &self.shared;
        if let Some(known) = open.get_mut(&key) {
            if *known != path {
                // Renamed (rotated): the registry shows where the file is now.
                shared.registry.moved(key, &path);
                *known = path;
            }
            return Opened::Not;
        }
        let file = match file {
            Seen::Open(file) => file,
            Seen::Settled => {
                shared.registry.moved_if_elsewhere(key, &path); // renamed while closed
                return Opened::Not; // fully acknowledged, and not grown since
            }
            Seen::NoRoom => return Opened::Waiting,
        };
        if open.len() >= shared.config.open_files_max {
            return Opened::Waiting;
        }
        if self.is_copy_of_open_file(key, &path, &file, open) {
            return Opened::Not; // wait for the original's truncation to hand over its position
        }
        let start_position = match self.start_position(key, &path, &file) {
            Ok(position) => position,
            Err(error) => {
                // Not new content: tried again at the next pass.
                let problem = format!("cannot read its identity: {error}");
                shared
                    .problems
                    .report(&path.display().to_string(), problem, problems::Severity::Unreadable);
                return Opened::Not;
            }
        };
        open.insert(key, path.clone());
        Opened::Start(tailer::Tail {
            path,
            file: Arc::new(file),
            key,
            start_position,
        })
    }

    /// Starts the tailers of the files a pass opened, once their identities
    /// are saved.
    fn start_tailers(&self, mut starting: Vec<tailer::Tail>, running: &mut Running, halted: &Stop) {
        let shared = &self.shared;
        // The identities files are read under are saved before their
        // first lines go out (a kill must not give the same lines another
        // identity after the restart): once per pass for all the files it
        // opens, not once per file (10,000 files were 10,000 rewrites of
        // the whole registry at start-up).
        if !starting.is_empty() && !shared.must_save() {
            for tail in starting.drain(..) {
                running.open.remove(&tail.key);
            }
        }
        for tail in starting.drain(..) {
            tracing::info!(file = %tail.path.display(), position = tail.start_position, "reading file");
            running
                .tailers
                .spawn(tailer::run(Arc::clone(shared), tail, halted.clone()));
        }
    }

    /// Files wait for room under `open_files_max`: said once while they do,
    /// and as many idle files asked to close, woken to do it now.
    fn note_waiting(&self, waiting: usize, running: &mut Running) {
        let refused_for_limit = &mut running.refused_for_limit;
        if waiting == 0 {
            *refused_for_limit = false;
            return;
        }
        if !*refused_for_limit {
            tracing::warn!(
                limit = self.shared.config.open_files_max,
                waiting,
                "open_files_max reached; further files wait (idle, fully acknowledged files are closed to make room)"
            );
            *refused_for_limit = true;
        }
        // As many as wait, at once: files can appear faster than one per pass.
        for key in self.shared.evict_idlest(waiting) {
            if let Some(path) = running.open.get(&key) {
                self.shared.wake.wake_file(path);
            }
        }
    }

    /// Waits for the tailers to stop; their acknowledgement tasks drain what
    /// is in flight, for at most `drain_timeout`.
    async fn drain(&self, running: &mut Running) {
        let Running { tailers, open, .. } = running;
        let drained = tokio::time::timeout(self.shared.config.drain_timeout(), async {
            while let Some(done) = tailers.join_next().await {
                if let Ok((key, finished)) = done {
                    self.finish(open, key, finished);
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
async fn checkpoint_while_running(shared: Arc<SenderShared>, mut stop: Stop) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(shared.config.checkpoint_interval()) => {}
            _ = stop.stopped() => return,
        }
        let saving = Arc::clone(&shared);
        let _ = tokio::task::spawn_blocking(move || saving.checkpoint()).await;
    }
}
