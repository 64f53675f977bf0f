//! Which files a sender opens and where each starts: the files at its
//! paths, files it knows that left them with lines still unsent, copies made
//! by copytruncate (which inherit the original's identity and position), a
//! new identity for new content, and room under `open_files_max`. The
//! methods of [`Sender`] that decide; `lib.rs` holds the loop that calls them.

use super::problems::Severity;
use super::registry::Previous;
use super::{identity, Entry, FileKey, Handover, Sender};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

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
    /// Asks the `wanted` open files idle the longest (at their end, every
    /// line acknowledged) to close, so files waiting for a slot, the live one
    /// after a rotation above all, are not starved by old ones.
    pub(super) fn make_room(&self, wanted: usize) {
        let idle = self.shared.idle.lock();
        let mut evict = self.shared.evict.lock();
        if !evict.is_empty() {
            return; // the last request is not served yet
        }
        // The longest idle first, as many as files wait to be opened.
        let mut oldest: Vec<(&FileKey, &std::time::Instant)> = idle.iter().collect();
        oldest.sort_by_key(|(_, since)| **since);
        evict.extend(oldest.into_iter().take(wanted).map(|(key, _)| *key));
    }

    /// The identity and position of content that left its inode (truncated
    /// while the file was closed): a copy of it found later inherits them.
    pub(super) fn keep_for_a_copy(&self, entry: &Entry) {
        self.shared.hand_over(Handover {
            fingerprint: entry.fingerprint,
            file_id: entry.file_id,
            position: entry.acked_position,
            at: std::time::Instant::now(),
        });
    }

    /// The registry entry whose content `key` is a copy of, when the
    /// original was truncated or rewritten since (copytruncate while the
    /// original was not open: the sender was down, or it was closed to make
    /// room). A file that merely starts like another one is not a copy: the
    /// original must no longer hold that content.
    pub(super) fn truncated_original(
        &self,
        key: FileKey,
        fingerprint: identity::Fingerprint,
        length: u64,
    ) -> Option<Entry> {
        if fingerprint.bytes < identity::FINGERPRINT_BYTES_MAX {
            return None;
        }
        self.shared.registry.entries().into_iter().find_map(|(other, entry)| {
            if other == key || entry.fingerprint != fingerprint || entry.acked_position > length {
                return None;
            }
            let still_there = identity::find_in_directory(&entry.path, other).is_some_and(|(_, file)| {
                let long_enough = file.metadata().is_ok_and(|m| m.len() >= entry.acked_position);
                long_enough && identity::still_matches(&file, entry.fingerprint).unwrap_or(false)
            });
            (!still_there).then_some(entry)
        })
    }

    /// A file closed to make room that has not grown since: nothing to read.
    pub(super) fn nothing_new(&self, key: FileKey, file: &std::fs::File) -> bool {
        let Some(entry) = self.shared.registry.get(key) else {
            return false;
        };
        let length = file.metadata().map_or(u64::MAX, |m| m.len());
        length == entry.acked_position && identity::still_matches(file, entry.fingerprint).unwrap_or(false)
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
            let shown = pattern.display();
            let paths = match pattern.matching_files() {
                Ok(paths) if paths.is_empty() => {
                    problems.report(&shown, "matches no file yet; waiting for one".into(), Severity::Waiting);
                    continue;
                }
                Ok(paths) => {
                    problems.clear(&shown);
                    paths
                }
                Err(error) => {
                    let problem = format!("cannot list directory {}: {error}", pattern.dir().display());
                    problems.report(&shown, problem, Severity::Unreadable);
                    continue;
                }
            };
            for path in paths {
                let shown_file = path.display().to_string();
                let file = match std::fs::File::open(&path) {
                    Ok(file) => {
                        problems.clear(&shown_file);
                        file
                    }
                    Err(error) => {
                        problems.report(&shown_file, format!("cannot open: {error}"), Severity::Unreadable);
                        continue;
                    }
                };
                let Ok(key) = identity::key_of(&file) else { continue };
                if seen.insert(key) {
                    let seen = if open.contains_key(&key) || self.nothing_new(key, &file) {
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
            match identity::find_in_directory(&entry.path, key) {
                Some((path, file)) if identity::still_matches(&file, entry.fingerprint).unwrap_or(false) => {
                    if file.metadata().is_ok_and(|m| m.len() > entry.acked_position) {
                        tracing::info!(file = %path.display(), position = entry.acked_position, "a file that left the watched paths still has lines to send; finishing it");
                        found.push((key, path, file));
                    }
                }
                _ => {
                    tracing::info!(file = %entry.path.display(), "a file the registry knew is gone; forgetting it");
                    registry.remove(key);
                }
            }
        }
        found
    }

    /// A new file whose first bytes equal those of a file being read is a
    /// copy about to be followed by a truncation (copytruncate). It waits up
    /// to `rotate_wait` for the handover; after that it is read as it is.
    pub(super) fn is_copy_of_open_file(
        &self,
        key: FileKey,
        file: &std::fs::File,
        open: &HashMap<FileKey, PathBuf>,
    ) -> bool {
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

    /// Where to start a file, and which identity it has: its acknowledged
    /// position and id when the registry knows this very file; the handed-over
    /// position and the original's id when it is the copy of a truncated
    /// file; else 0 and a new id (a new file, a reused inode, or a file that
    /// shrank below its position: all new content).
    pub(super) fn start_position(&self, key: FileKey, path: &std::path::Path, file: &std::fs::File) -> u64 {
        let registry = &self.shared.registry;
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        let fingerprint = identity::fingerprint(file).unwrap_or(identity::Fingerprint { bytes: 0, crc: 0 });
        // Content that left this inode stays known, durably, for its copy.
        let left = |entry: &Entry| {
            Some(Previous {
                fingerprint: entry.fingerprint,
                acked_position: entry.acked_position,
                file_id: entry.file_id,
            })
        };
        let mut previous = None;
        let (position, file_id) = match registry.get(key) {
            Some(entry) if identity::still_matches(file, entry.fingerprint).unwrap_or(false) => {
                if entry.acked_position > length {
                    tracing::warn!(file = %path.display(), position = entry.acked_position, size = length, "file shrank below its saved position (copytruncate); reading it from the start as a new file");
                    self.keep_for_a_copy(&entry);
                    previous = left(&entry);
                    (0, entry.file_id.successor())
                } else {
                    previous = entry.previous;
                    (entry.acked_position, entry.file_id)
                }
            }
            Some(entry) => {
                tracing::info!(file = %path.display(), "new content at this inode (truncated and rewritten, or a new file); reading it from the start");
                self.keep_for_a_copy(&entry);
                previous = left(&entry);
                (0, entry.file_id.successor())
            }
            None => {
                let handovers = self.shared.handovers.lock();
                match handovers
                    .iter()
                    .rev()
                    .find(|h| h.fingerprint == fingerprint && h.position <= length)
                {
                    Some(handover) => {
                        tracing::info!(file = %path.display(), position = handover.position, "copy of a truncated file; resuming where the original was acknowledged to, with its identity");
                        (handover.position, handover.file_id)
                    }
                    None => match self.truncated_original(key, fingerprint, length) {
                        Some(original) => {
                            tracing::info!(file = %path.display(), position = original.acked_position, "copy of a file truncated while it was closed; resuming where the original was acknowledged to, with its identity");
                            (original.acked_position, original.file_id)
                        }
                        None => match registry.take_previous(fingerprint, length) {
                            Some(previous) => {
                                tracing::info!(file = %path.display(), position = previous.acked_position, "copy of a truncated file's earlier content; resuming where it was acknowledged to, with its identity");
                                (previous.acked_position, previous.file_id)
                            }
                            None => (0, identity::new_file_id()),
                        },
                    },
                }
            }
        };
        self.copies_waiting.lock().remove(&key);
        registry.set(
            key,
            Entry {
                fingerprint,
                acked_position: position,
                file_id,
                previous,
                path: path.to_path_buf(),
            },
        );
        position
    }
}
