//! Which files a sender opens and where each starts: the files at its
//! paths, files it knows that left them with lines still unsent, copies made
//! by copytruncate (which inherit the original's identity and position), a
//! new identity for new content. The methods of [`Sender`] that decide;
//! `sender.rs` holds the loop that calls them, [`super::discovery`] finds
//! the files.

use super::Sender;
use crate::identity::{self, FileKey};
use crate::problems::Severity;
use crate::registry::{Entry, Previous};
use crate::shared::Handover;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

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
    fn truncated_original(
        &self,
        key: FileKey,
        path: &Path,
        is_copy: impl Fn(&Previous, &Path) -> bool,
    ) -> Option<Entry> {
        let named_as_original = |other, entry: &Entry| other != key && named_as_copy_of(path, &entry.path);
        let candidates = self.shared.registry.entries_where(named_as_original);
        candidates.into_iter().find_map(|(other, entry)| {
            if !is_copy(&previous_of(&entry), &entry.path) {
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

    /// Files the registry knows that no longer match the paths (rotated
    /// away while the sender was down, say) and still hold lines not
    /// acknowledged: found by identity in their directory, they are read to
    /// their end and then closed like any rotated file. An entry whose file
    /// is gone (deleted, or its inode holds other content) is forgotten.
    /// Empty when the registry knows no file outside `watched` and `open`.
    pub(super) fn left_behind(
        &self,
        watched: &HashSet<FileKey>,
        open: &HashMap<FileKey, PathBuf>,
    ) -> Vec<(FileKey, PathBuf, std::fs::File)> {
        let registry = &self.shared.registry;
        let elsewhere = registry.entries_where(|key, _| !open.contains_key(&key) && !watched.contains(&key));
        let mut found = Vec::new();
        for (key, entry) in elsewhere {
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
        if let Some(original) = self.truncated_original(key, path, is_copy) {
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
