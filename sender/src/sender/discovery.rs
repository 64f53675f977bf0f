//! Discovery: the files at a sender's watched paths, each with its identity
//! and what it needs, found with as little I/O as the last pass allows. A
//! file is opened (and its first bytes read) only when it is new or changed:
//! [`DiscoveryCache`] keeps, per device and inode, the stamp (size,
//! modification and change times) at which the file was last found settled
//! (nothing new after its acknowledged position, or compressed), and the
//! events of [`crate::wake`] say which directories and names changed since,
//! so that a pass over quiet files reuses the last listing and stats nothing.
//! 10,000 files each opened and fingerprinted every 500 ms were the sender's
//! idle CPU.
//!
//! What events cannot report (a write through a hard link in another
//! directory, a symlink's target, network and FUSE filesystems) is caught by
//! a full pass, which lists and stats everything, every
//! [`FULL_PASS_INTERVAL_MS`], and at every pass while events are not running
//! or were lost. A stamp younger than [`STAMP_AGE_MS_MIN`] is not trusted (a
//! write in the same timestamp tick as the check would not move it): such a
//! file is opened again at each pass until its stamp is old enough.

use super::Sender;
use crate::identity::{self, FileKey, Fingerprint};
use crate::pattern::PathPattern;
use crate::problems::Severity;
use crate::wake::Changes;
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// Longest time between two passes that list and stat every file, whatever
/// the events said.
pub const FULL_PASS_INTERVAL_MS: u64 = 10_000;

/// Youngest modification or change time a cached stamp may have.
pub const STAMP_AGE_MS_MIN: u64 = 2_000;

/// A file at a watched path: its identity, path, and what discovery made of it
/// (see [`Sender::discover`]).
pub(super) type Found = (FileKey, PathBuf, Seen);

/// What discovery made of a file.
pub(super) enum Seen {
    /// It may need a tailer: kept open.
    Open(std::fs::File),
    /// Already tailed, or nothing new since its acknowledged position: closed.
    Settled,
    /// It needs a tailer but this pass has no room left under
    /// `open_files_max`: closed, and counted as waiting.
    NoRoom,
}

/// What a file's metadata says about its contents without reading them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(metadata: &std::fs::Metadata) -> Self {
        let ns = |seconds: i64, nanoseconds: i64| i128::from(seconds) * 1_000_000_000 + i128::from(nanoseconds);
        Self {
            size: metadata.len(),
            mtime_ns: ns(metadata.mtime(), metadata.mtime_nsec()),
            ctime_ns: ns(metadata.ctime(), metadata.ctime_nsec()),
        }
    }

    /// Whether no write can have left this stamp unmoved since `now`.
    fn old_enough(&self, now: SystemTime) -> bool {
        let now_ns = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let youngest = now_ns - i128::from(STAMP_AGE_MS_MIN) * 1_000_000;
        self.mtime_ns < youngest && self.ctime_ns < youngest
    }
}

/// Why a closed file needs no tailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// At its acknowledged position, with the content the registry knows.
    NothingNew {
        acked_position: u64,
        fingerprint: Fingerprint,
    },
    /// Compressed bytes: never tailed.
    Compressed,
}

/// What discovery remembers between passes.
#[derive(Default)]
pub(super) struct DiscoveryCache {
    /// Each pattern's last listing.
    listings: Vec<Option<Vec<PathBuf>>>,
    /// The last stat of each listed path that is not a symlink.
    stats: HashMap<PathBuf, (FileKey, Stamp)>,
    /// Files found settled, and the stamp they had then.
    settled: HashMap<FileKey, (Stamp, Settled)>,
    full_pass_at: Option<Instant>,
}

impl DiscoveryCache {
    fn full_pass_due(&self) -> bool {
        self.full_pass_at
            .is_none_or(|at| at.elapsed() >= Duration::from_millis(FULL_PASS_INTERVAL_MS))
    }
}

/// What one pass found, and whether a pass with no new events would find
/// the same (every file settled, nothing failed).
#[derive(Default)]
pub(super) struct Discovered {
    pub found: Vec<Found>,
    pub settled: bool,
    seen: HashSet<FileKey>,
    listed: HashSet<PathBuf>,
}

/// The identity and stamp of the file at `path` (a symlink's target), and
/// whether the path is a symlink (whose target's writes no event reports).
fn stat(path: &std::path::Path) -> Option<(FileKey, Stamp, bool)> {
    let link = std::fs::symlink_metadata(path).ok()?;
    let symlink = link.file_type().is_symlink();
    let metadata = if symlink { std::fs::metadata(path).ok()? } else { link };
    let key = FileKey {
        device: metadata.dev(),
        inode: metadata.ino(),
    };
    Some((key, Stamp::of(&metadata), symlink))
}

impl Sender {
    /// Whether a pass now would find what the last one did: events running
    /// for every watched directory and reporting nothing, and no full pass
    /// due.
    pub(super) fn nothing_changed(&self, changes: Option<&Changes>) -> bool {
        let Some(changes) = changes else { return false };
        let quiet = !changes.lost && changes.dirs.is_empty() && changes.names.is_empty();
        quiet
            && !self.discovery.lock().full_pass_due()
            && self.patterns.iter().all(|p| self.shared.wake.is_watching(p.dir()))
    }

    /// Every file at a watched path, with its identity; kept open only when
    /// it may need a tailer and fits in `room` (what `open_files_max` leaves):
    /// a file already in `open`, with nothing new since its acknowledged
    /// position, or beyond the room is closed again at once, so a pass over
    /// 100,000 files holds at most `open_files_max` descriptors more. Only
    /// files new or changed since they were last found settled are opened;
    /// `changes` (none: unknown) say which those can be.
    pub(super) fn discover(
        &self,
        open: &HashMap<FileKey, PathBuf>,
        mut room: usize,
        changes: Option<&Changes>,
    ) -> Discovered {
        let mut cache = self.discovery.lock();
        let full = cache.full_pass_due() || changes.is_none_or(|c| c.lost);
        if full {
            cache.full_pass_at = Some(Instant::now());
        }
        cache.listings.resize(self.patterns.len(), None);
        let mut pass = Discovered {
            settled: true,
            ..Discovered::default()
        };
        for (slot, pattern) in self.patterns.iter().enumerate() {
            let dir_quiet = !full
                && self.shared.wake.is_watching(pattern.dir())
                && changes.is_some_and(|c| !c.dirs.contains(pattern.dir()));
            let paths = match &cache.listings[slot] {
                Some(paths) if dir_quiet => paths.clone(),
                _ => {
                    let paths = self.matching(pattern);
                    cache.listings[slot] = Some(paths.clone());
                    paths
                }
            };
            for path in paths {
                let name_quiet = dir_quiet && changes.is_some_and(|c| !c.names.contains(&path));
                self.discover_file(&mut cache, path, name_quiet, open, &mut room, &mut pass);
            }
        }
        let DiscoveryCache { stats, settled, .. } = &mut *cache;
        stats.retain(|path, _| pass.listed.contains(path));
        settled.retain(|key, _| pass.seen.contains(key));
        pass
    }

    /// One listed file: settled from what the cache and `open` say when they
    /// can, else opened and looked at.
    fn discover_file(
        &self,
        cache: &mut DiscoveryCache,
        path: PathBuf,
        name_quiet: bool,
        open: &HashMap<FileKey, PathBuf>,
        room: &mut usize,
        pass: &mut Discovered,
    ) {
        let cached = cache.stats.get(&path).filter(|_| name_quiet).copied();
        let stat = cached.or_else(|| {
            let (key, stamp, symlink) = stat(&path)?;
            if !symlink {
                cache.stats.insert(path.clone(), (key, stamp));
            }
            Some((key, stamp))
        });
        pass.listed.insert(path.clone());
        if let Some((key, stamp)) = stat {
            if pass.seen.contains(&key) {
                return;
            }
            // A tailed file whose name changed is opened all the same: that
            // it can no longer be opened (chmod) is a problem to report.
            let tailed = open.contains_key(&key) && name_quiet;
            if tailed || self.still_settled(cache, key, stamp) {
                pass.seen.insert(key);
                pass.found.push((key, path, Seen::Settled));
                return;
            }
            // A file the registry does not know needs a tailer: no need to
            // open it to learn that there is no room for one.
            let unknown = self.shared.registry.acked_at(key).is_none();
            if *room == 0 && unknown && crate::compressed::format_of_name(&path).is_none() {
                pass.seen.insert(key);
                pass.settled = false;
                pass.found.push((key, path, Seen::NoRoom));
                return;
            }
        }
        self.open_and_look(cache, path, open, room, pass);
    }

    /// Whether `key`, now at `stamp`, is as it was when found settled.
    fn still_settled(&self, cache: &DiscoveryCache, key: FileKey, stamp: Stamp) -> bool {
        match cache.settled.get(&key) {
            Some((settled_at, _)) if *settled_at != stamp => false,
            Some((
                _,
                Settled::NothingNew {
                    acked_position,
                    fingerprint,
                },
            )) => self.shared.registry.acked_at(key) == Some((*acked_position, *fingerprint)),
            Some((_, Settled::Compressed)) => true,
            None => false,
        }
    }

    /// Opens a listed file and decides what it needs; a settled one is
    /// remembered with its stamp.
    fn open_and_look(
        &self,
        cache: &mut DiscoveryCache,
        path: PathBuf,
        open: &HashMap<FileKey, PathBuf>,
        room: &mut usize,
        pass: &mut Discovered,
    ) {
        let problems = &self.shared.problems;
        let shown_file = path.display().to_string();
        self.discovery_opens.increment(1);
        let opened = std::fs::File::open(&path).and_then(|file| Ok((file.metadata()?, file)));
        let (metadata, file) = match opened {
            Ok(opened) => {
                problems.clear(&shown_file);
                opened
            }
            Err(error) => {
                problems.report(&shown_file, format!("cannot open: {error}"), Severity::Unreadable);
                pass.settled = false;
                // Still at a watched path (EACCES, EMFILE): not rotated
                // away, so an open tailer keeps it and the registry its
                // position (else it would be read again as a new file).
                if let Some((key, _, _)) = stat(&path) {
                    if pass.seen.insert(key) {
                        pass.found.push((key, path, Seen::Settled));
                    }
                }
                return;
            }
        };
        let key = FileKey {
            device: metadata.dev(),
            inode: metadata.ino(),
        };
        if !pass.seen.insert(key) {
            return;
        }
        let seen = if open.contains_key(&key) {
            Seen::Settled
        } else if let Some(settled) = self.settled_now(key, &path, &file, metadata.len()) {
            let stamp = Stamp::of(&metadata);
            if stamp.old_enough(SystemTime::now()) {
                cache.settled.insert(key, (stamp, settled));
            } else {
                pass.settled = false; // looked at again next pass
            }
            Seen::Settled
        } else if *room == 0 {
            pass.settled = false;
            Seen::NoRoom
        } else {
            *room -= 1;
            pass.settled = false;
            Seen::Open(file)
        };
        pass.found.push((key, path, seen));
    }

    /// Why the closed file `file` (`length` bytes) needs no tailer, if it
    /// does not: fully acknowledged and not grown since, or compressed.
    fn settled_now(&self, key: FileKey, path: &std::path::Path, file: &std::fs::File, length: u64) -> Option<Settled> {
        if let Some(entry) = self.shared.registry.get(key) {
            let same = identity::still_holds(file, entry.fingerprint, entry.acked_position, entry.before);
            if length == entry.acked_position && same.unwrap_or(false) {
                return Some(Settled::NothingNew {
                    acked_position: entry.acked_position,
                    fingerprint: entry.fingerprint,
                });
            }
        }
        self.compressed(key, path, file).then_some(Settled::Compressed)
    }

    /// The files `pattern` matches now; none, after reporting why, when it
    /// matches nothing yet or its directory cannot be listed.
    fn matching(&self, pattern: &PathPattern) -> Vec<PathBuf> {
        let problems = &self.shared.problems;
        let shown = pattern.display();
        match pattern.matching_files(self.shared.config.follow_symlinks) {
            Ok(paths) if paths.is_empty() => {
                problems.report(&shown, "matches no file yet; waiting for one".into(), Severity::Waiting);
                Vec::new()
            }
            Ok(paths) => {
                problems.clear(&shown);
                paths
            }
            // A directory the pattern names that does not exist yet (an
            // application that has not logged yet) is waiting, not broken.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let problem = format!(
                    "matches no file yet (directory {} does not exist yet); waiting for one",
                    pattern.dir().display()
                );
                problems.report(&shown, problem, Severity::Waiting);
                Vec::new()
            }
            Err(error) => {
                let problem = format!("cannot list directory {}: {error}", pattern.dir().display());
                problems.report(&shown, problem, Severity::Unreadable);
                Vec::new()
            }
        }
    }

    /// Whether `file` holds compressed bytes (a rotated copy compressed by
    /// logrotate): never tailed, logged once.
    fn compressed(&self, key: FileKey, path: &std::path::Path, file: &std::fs::File) -> bool {
        let compressed = crate::compressed::format_of_name(path).or_else(|| crate::compressed::format_of(file));
        let Some(format) = compressed else {
            return false;
        };
        if self.shared.first_seen_compressed(key) {
            tracing::info!(
                topic = %self.shared.config.topic,
                file = %path.display(),
                format,
                "compressed file at a watched path (a rotated copy compressed after it was read): not tailed"
            );
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_trusted_only_once_old_enough() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, b"line\n").unwrap();
        let (_, stamp, symlink) = stat(&path).unwrap();
        assert!(!symlink);
        assert!(!stamp.old_enough(SystemTime::now()), "just written");
        let later = SystemTime::now() + Duration::from_millis(STAMP_AGE_MS_MIN + 1_000);
        assert!(stamp.old_enough(later));
        std::fs::write(&path, b"LINE\n").unwrap();
        let (_, rewritten, _) = stat(&path).unwrap();
        assert_eq!(rewritten.size, stamp.size);
        assert!(rewritten.ctime_ns >= stamp.ctime_ns);
    }
}
