//! Which files a sender opens and where each starts: the files at its
//! paths, files it knows that left them with lines still unsent, copies made
//! by copytruncate (which inherit the original's identity and position), a
//! new identity for new content. The methods of [`Sender`] that decide;
//! `sender.rs` holds the loop that calls them.

use super::Sender;
use crate::identity::{self, FileKey};
use crate::pattern::PathPattern;
use crate::problems::Severity;
use crate::registry::{Entry, Previous};
use crate::shared::Handover;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

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

impl Sender {
    /// The identity and position of content that left its inode (truncated
    /// while the file was closed): a copy of it found later inherits them.
    pub(super) fn keep_for_a_copy(&self, entry: &Entry) {
        self.shared.hand_over(Handover {
            fingerprint: entry.fingerprint,
            file_id: entry.file_id,
            position: entry.acked_position,
            before: entry.before,
            original_path: entry.path.clone(),
            at: std::time::Instant::now(),
        });
    }

    /// The registry entry whose content `key` is a copy of, when the
    /// original was truncated or rewritten since (copytruncate while the
    /// original was not open: the sender was down, or it was closed to make
    /// room). A file that merely starts like another one is not a copy: the
    /// original must no longer hold that content.
    fn truncated_original(&self, key: FileKey, is_copy: impl Fn(&Previous, &Path) -> bool) -> Option<Entry> {
        self.shared.registry.entries().into_iter().find_map(|(other, entry)| {
            if other == key || !is_copy(&previous_of(&entry), &entry.path) {
                return None;
            }
            // Unreadable is taken as still there: never claim a copy on an error.
            let still_there = match identity::find_in_directory(&entry.path, other) {
                Ok(Some((_, file))) => {
                    let long_enough = file.metadata().is_ok_and(|m| m.len() >= entry.acked_position);
                    long_enough
                        && identity::still_holds(&file, entry.fingerprint, entry.acked_position, entry.before)
                            .unwrap_or(true)
                }
                Ok(None) => false,
                Err(_) => true,
            };
            (!still_there).then_some(entry)
        })
    }

    /// A file closed to make room that has not grown since: nothing to read.
    pub(super) fn nothing_new(&self, key: FileKey, file: &std::fs::File) -> bool {
        let Some(entry) = self.shared.registry.get(key) else {
            return false;
        };
        let length = file.metadata().map_or(u64::MAX, |m| m.len());
        length == entry.acked_position
            && identity::still_holds(file, entry.fingerprint, entry.acked_position, entry.before).unwrap_or(false)
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

    /// Every file at a watched path, with its identity; kept open only when
    /// it may need a tailer and fits in `room` (what `open_files_max` leaves):
    /// a file already in `open`, with nothing new since its acknowledged
    /// position, or beyond the room is closed again at once, so a pass over
    /// 100,000 files holds at most `open_files_max` descriptors more.
    pub(super) fn discover(&self, open: &HashMap<FileKey, PathBuf>, mut room: usize) -> Vec<Found> {
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        let problems = &self.shared.problems;
        for pattern in &self.patterns {
            for path in self.matching(pattern) {
                let shown_file = path.display().to_string();
                let file = match std::fs::File::open(&path) {
                    Ok(file) => {
                        problems.clear(&shown_file);
                        file
                    }
                    Err(error) => {
                        problems.report(&shown_file, format!("cannot open: {error}"), Severity::Unreadable);
                        // Still at a watched path (EACCES, EMFILE): not rotated
                        // away, so an open tailer keeps it and the registry its
                        // position (else it would be read again as a new file).
                        if let Some(key) = key_at(&path) {
                            if seen.insert(key) {
                                found.push((key, path, Seen::Settled));
                            }
                        }
                        continue;
                    }
                };
                let Some(key) = identity::key_of(&file).ok().or_else(|| key_at(&path)) else {
                    continue;
                };
                if seen.insert(key) {
                    let seen = if open.contains_key(&key)
                        || self.nothing_new(key, &file)
                        || self.compressed(key, &path, &file)
                    {
                        Seen::Settled
                    } else if room == 0 {
                        Seen::NoRoom
                    } else {
                        room -= 1;
                        Seen::Open(file)
                    };
                    found.push((key, path, seen));
                }
            }
        }
        found
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

    /// Files the registry knows that no longer match the paths (rotated
    /// away while the sender was down, say) and still hold lines not
    /// acknowledged: found by identity in their directory, they are read to
    /// their end and then closed like any rotated file. An entry whose file
    /// is gone (deleted, or its inode holds other content) is forgotten.
    pub(super) fn left_behind(
        &self,
        watched: &[Found],
        open: &HashMap<FileKey, PathBuf>,
    ) -> Vec<(FileKey, PathBuf, std::fs::File)> {
        let registry = &self.shared.registry;
        let watched: std::collections::HashSet<FileKey> = watched.iter().map(|(key, _, _)| *key).collect();
        let mut found = Vec::new();
        for (key, entry) in registry.entries() {
            if open.contains_key(&key) || watched.contains(&key) {
                continue;
            }
            let found_here = identity::find_in_directory(&entry.path, key).and_then(|found| match found {
                Some((path, file)) => {
                    let same = identity::still_holds(&file, entry.fingerprint, entry.acked_position, entry.before)?;
                    Ok(same.then_some((path, file)))
                }
                None => Ok(None),
            });
            match found_here {
                Ok(Some((path, file))) => {
                    if file.metadata().is_ok_and(|m| m.len() > entry.acked_position) {
                        tracing::info!(file = %path.display(), position = entry.acked_position, "a file that left the watched paths still has lines to send; finishing it");
                        found.push((key, path, file));
                    }
                }
                Err(error) => {
                    // Not gone: its unsent rest must not be forgotten.
                    let shown = entry.path.display().to_string();
                    let problem = format!("cannot look for a file that left the watched paths: {error}");
                    self.shared.problems.report(&shown, problem, Severity::Unreadable);
                }
                Ok(None) => {
                    tracing::info!(file = %entry.path.display(), "a file the registry knew is gone; forgetting it");
                    registry.remove(key);
                }
            }
        }
        found
    }

    /// A new file named after a file being read, whose first bytes are that
    /// file's — all of them, or while `cp` is still writing it a prefix
    /// (an empty file too) — is a copy about to be followed by a truncation
    /// (copytruncate). It waits up to `rotate_wait` for the handover; after
    /// that it is read as it is. A copy caught half-written and read as new
    /// content would load every line it holds a second time.
    pub(super) fn is_copy_of_open_file(
        &self,
        key: FileKey,
        path: &Path,
        file: &std::fs::File,
        open: &HashMap<FileKey, PathBuf>,
    ) -> bool {
        // A known inode is not a copy, unless it was reused for other content.
        let known = self.shared.registry.get(key);
        if known.is_some_and(|entry| identity::still_matches(file, entry.fingerprint).unwrap_or(true)) {
            return false;
        }
        let Ok(fingerprint) = identity::fingerprint(file) else {
            return false;
        };
        let copy = open.iter().any(|(open_key, open_path)| {
            named_as_copy_of(path, open_path)
                && self
                    .shared
                    .registry
                    .get(*open_key)
                    .is_some_and(|original| starts_as(file, fingerprint, *open_key, &original))
        });
        if !copy {
            return false;
        }
        let mut waiting = self.copies_waiting.lock();
        let since = *waiting.entry(key).or_insert_with(std::time::Instant::now);
        since.elapsed() < self.shared.config.rotate_wait()
    }

    /// Where to start a file, and which identity it has: its acknowledged
    /// position and id when the registry knows this very file (the same
    /// first bytes and the same bytes before the position); the handed-over
    /// position and the original's id when it is the copy of a truncated
    /// file (also at a reused inode); else 0 and a new id (a new file, a
    /// reused inode, a file rewritten in place, or one that shrank below its
    /// position: all new content). An error reading the file starts nothing: it is tried again
    /// at the next pass, never taken as new content (that would send it again).
    pub(super) fn start_position(
        &self,
        key: FileKey,
        path: &std::path::Path,
        file: &std::fs::File,
    ) -> std::io::Result<u64> {
        let registry = &self.shared.registry;
        let length = file.metadata()?.len();
        let fingerprint = identity::fingerprint(file)?;
        // Content that left this inode stays known, durably, for its copy.
        let left = |entry: &Entry| Some(previous_of(entry));
        let mut previous = None;
        let (position, file_id) = match registry.get(key) {
            Some(entry) if identity::still_matches(file, entry.fingerprint)? && entry.acked_position > length => {
                tracing::warn!(file = %path.display(), position = entry.acked_position, size = length, "file shrank below its saved position (copytruncate); reading it from the start as a new file");
                self.keep_for_a_copy(&entry);
                previous = left(&entry);
                (0, entry.file_id.successor())
            }
            Some(entry) if identity::still_holds(file, entry.fingerprint, entry.acked_position, entry.before)? => {
                previous = entry.previous;
                (entry.acked_position, entry.file_id)
            }
            Some(entry) => {
                self.keep_for_a_copy(&entry);
                previous = left(&entry);
                // A reused inode may hold a copytruncate's copy: it inherits.
                self.copy_of_truncated(key, path, file, length).unwrap_or_else(|| {
                    tracing::info!(file = %path.display(), position = entry.acked_position, "new content at this inode (rewritten in place, or a new file); reading it from the start");
                    (0, entry.file_id.successor())
                })
            }
            None => self
                .copy_of_truncated(key, path, file, length)
                .unwrap_or_else(|| (0, identity::new_file_id())),
        };
        let before = identity::before(file, position)?;
        self.copies_waiting.lock().remove(&key);
        registry.set(
            key,
            Entry {
                fingerprint,
                acked_position: position,
                file_id,
                previous,
                before: Some(before),
                path: path.to_path_buf(),
            },
        );
        Ok(position)
    }

    /// Where and as what to resume a file that holds content the registry
    /// does not know at its inode (a new file, or a reused inode) when it is
    /// the copy of a truncated file (same first bytes, and the same bytes
    /// before the position it inherits); `None` for new content.
    fn copy_of_truncated(
        &self,
        key: FileKey,
        path: &std::path::Path,
        file: &std::fs::File,
        length: u64,
    ) -> Option<(u64, identity::FileId)> {
        // A copy starts with the content's known first bytes (all of them
        // for a file shorter than the fingerprint's maximum) and holds the
        // same bytes before the position it inherits.
        let is_copy = |content: &Previous, original: &Path| {
            named_as_copy_of(path, original)
                && content.fingerprint.bytes > 0
                && content.acked_position <= length
                && identity::still_matches(file, content.fingerprint).unwrap_or(false)
                && identity::still_before(file, content.acked_position, content.before).unwrap_or(false)
        };
        let handover = self.shared.find_handover(|h| {
            is_copy(
                &Previous {
                    fingerprint: h.fingerprint,
                    acked_position: h.position,
                    file_id: h.file_id,
                    before: h.before,
                },
                &h.original_path,
            )
        });
        if let Some(handover) = handover {
            tracing::info!(file = %path.display(), position = handover.position, "copy of a truncated file; resuming where the original was acknowledged to, with its identity");
            return Some((handover.position, handover.file_id));
        }
        if let Some(original) = self.truncated_original(key, is_copy) {
            tracing::info!(file = %path.display(), position = original.acked_position, "copy of a file truncated while it was closed; resuming where the original was acknowledged to, with its identity");
            return Some((original.acked_position, original.file_id));
        }
        if let Some(previous) = self.shared.registry.take_previous(is_copy) {
            tracing::info!(file = %path.display(), position = previous.acked_position, "copy of a truncated file's earlier content; resuming where it was acknowledged to, with its identity");
            return Some((previous.acked_position, previous.file_id));
        }
        None
    }
}

/// Whether `copy` is named as a rotation tool names the copy of `original`:
/// its file name is the original's and more (`app.log.1`,
/// `app.log-20261207`), in any directory (logrotate's `olddir`). Content
/// alone is not enough: another file that starts with the same banner or
/// CSV header, holding no more than the truncated content did, is not its
/// copy, and taking it for one would skip its lines.
fn named_as_copy_of(copy: &Path, original: &Path) -> bool {
    match (copy.file_name(), original.file_name()) {
        (Some(copy), Some(original)) => {
            copy.len() > original.len() && copy.as_encoded_bytes().starts_with(original.as_encoded_bytes())
        }
        _ => false,
    }
}

/// Whether `copy` (first bytes `fingerprint`) starts as `original`'s content
/// does: its fingerprint's bytes, or for a copy still shorter than those,
/// as many of the original file's first bytes.
fn starts_as(copy: &std::fs::File, fingerprint: identity::Fingerprint, key: FileKey, original: &Entry) -> bool {
    if fingerprint.bytes >= original.fingerprint.bytes {
        return identity::still_matches(copy, original.fingerprint).unwrap_or(false);
    }
    match identity::find_in_directory(&original.path, key) {
        Ok(Some((_, file))) => {
            identity::fingerprint_of_prefix(&file, fingerprint.bytes).is_ok_and(|f| f == fingerprint)
        }
        _ => false,
    }
}

/// An entry's content as a copy of it would inherit it.
fn previous_of(entry: &Entry) -> Previous {
    Previous {
        fingerprint: entry.fingerprint,
        acked_position: entry.acked_position,
        file_id: entry.file_id,
        before: entry.before,
    }
}

/// The identity of the file at `path` by `stat`, which needs no descriptor
/// and no read permission.
fn key_at(path: &std::path::Path) -> Option<FileKey> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some(FileKey {
        device: metadata.dev(),
        inode: metadata.ino(),
    })
}

#[cfg(test)]
mod tests {
    use super::named_as_copy_of;
    use std::path::Path;

    #[test]
    fn a_copy_is_named_after_its_original() {
        let original = Path::new("/var/log/app.log");
        for copy in [
            "/var/log/app.log.1",
            "/var/log/app.log-20261207",
            "/var/log/old/app.log.1",
        ] {
            assert!(named_as_copy_of(Path::new(copy), original), "{copy}");
        }
    }

    #[test]
    fn another_file_with_the_same_content_is_not_a_copy() {
        let original = Path::new("/var/log/c.log");
        for other in [
            "/var/log/b.log",
            "/var/log/c.log",
            "/var/log/app-c.log.1",
            "/var/log/c.lo",
        ] {
            assert!(!named_as_copy_of(Path::new(other), original), "{other}");
        }
    }
}
