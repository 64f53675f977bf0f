//! Waking on file events ([`Wake`]): Linux inotify on the directories of
//! the watched patterns, so a tailer reads a line when it is written and
//! discovery sees a new file when it appears, instead of at their next poll.
//! The polls stay as the fallback, and the only mechanism where there are no
//! events (inotify unavailable or out of watches, network and FUSE
//! filesystems that do not report remote writes, an event queue that
//! overflowed): a wake only ever comes early, never instead of a poll. The
//! one exception is discovery's stat of files it found settled: between its
//! full passes (every 10 s) it trusts the events ([`Changes`]).
//!
//! One inotify descriptor per sender, one watch per directory (not per
//! file: 10,000 files in a directory are one watch). An event for a name
//! wakes the tailer registered under that path (a `Notify`, so a wake that
//! comes while the tailer is busy is kept for its next wait); a created or
//! moved-in name wakes discovery. Nothing is ever read or decided here.
//!
//! Events are also kept as [`Changes`] for discovery: which directories had
//! names come and go, which names were written to, so that a pass over
//! 10,000 quiet files lists and stats nothing ([`Wake::take_changes`]).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

/// Bytes read from the inotify descriptor at once: hundreds of events.
const EVENTS_BUFFER_BYTES: usize = 64 * 1024;
/// What a directory watch reports: writes, truncations (modify), new and
/// renamed names, deletions and link count changes (attrib).
const WATCH_MASK: u32 = libc::IN_MODIFY
    | libc::IN_CREATE
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_DELETE
    | libc::IN_ATTRIB
    | libc::IN_CLOSE_WRITE;

/// Most names kept as changed between two discovery passes: past it the
/// changes count as lost (discovery looks at everything), as on an
/// overflowed event queue.
const CHANGED_NAMES_MAX: usize = 65_536;

/// What the events said since discovery last took them.
#[derive(Debug, Default)]
pub struct Changes {
    /// Directories where a name appeared, left or was renamed.
    pub dirs: std::collections::HashSet<PathBuf>,
    /// Names written to, truncated, or whose attributes changed.
    pub names: std::collections::HashSet<PathBuf>,
    /// Events were lost: nothing may be taken as unchanged.
    pub lost: bool,
}

/// Made with the sender, started with its run (inotify needs the runtime).
#[derive(Default)]
pub struct Wake {
    inner: std::sync::OnceLock<Option<Arc<Inner>>>,
}

struct Inner {
    fd: AsyncFd<OwnedFd>,
    /// Watched directories by watch descriptor, and the other way round.
    dirs: Mutex<(HashMap<i32, PathBuf>, HashMap<PathBuf, i32>)>,
    files: Mutex<HashMap<PathBuf, Arc<Notify>>>,
    discovery: Notify,
    changes: Mutex<Changes>,
}

impl Wake {
    /// Starts events when the system gives them, and the task that turns
    /// them into wakes; otherwise the `Wake` never wakes anyone (the polls
    /// do everything), said once in the log. Later calls do nothing.
    pub fn start(&self) {
        self.inner.get_or_init(|| {
            let inner = open()?;
            tokio::spawn(read_events(Arc::clone(&inner)));
            Some(inner)
        });
    }

    fn inner(&self) -> Option<&Arc<Inner>> {
        self.inner.get().and_then(Option::as_ref)
    }

    /// Watches `dir` (once) for events on its names. A directory that does
    /// not exist yet is tried again at the caller's next call.
    pub fn watch_dir(&self, dir: &Path) {
        let Some(inner) = self.inner() else { return };
        let mut dirs = inner.dirs.lock();
        if dirs.1.contains_key(dir) {
            return;
        }
        let Ok(name) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            return;
        };
        // SAFETY: a valid descriptor and a NUL-terminated path that outlives the call.
        let wd = unsafe { libc::inotify_add_watch(inner.fd.get_ref().as_raw_fd(), name.as_ptr(), WATCH_MASK) };
        if wd < 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::ENOENT) {
                tracing::warn!(dir = %dir.display(), %error, "cannot watch the directory for events; its files are polled");
            }
            return;
        }
        dirs.0.insert(wd, dir.to_path_buf());
        dirs.1.insert(dir.to_path_buf(), wd);
    }

    /// Whether events for `dir`'s names arrive (it is watched).
    pub fn is_watching(&self, dir: &Path) -> bool {
        self.inner().is_some_and(|inner| inner.dirs.lock().1.contains_key(dir))
    }

    /// The changes since the last call, or `None` without events (then
    /// everything may have changed).
    pub fn take_changes(&self) -> Option<Changes> {
        let inner = self.inner()?;
        Some(std::mem::take(&mut *inner.changes.lock()))
    }

    /// Wakes the tailer of `path`, if one waits on it.
    pub fn wake_file(&self, path: &Path) {
        if let Some(notify) = self.inner().and_then(|inner| inner.files.lock().get(path).cloned()) {
            notify.notify_one();
        }
    }

    /// What wakes the tailer of `path` (events on that name); `forget` it
    /// when the tailer ends.
    pub fn file(&self, path: &Path) -> Arc<Notify> {
        let Some(inner) = self.inner() else {
            return Arc::new(Notify::new());
        };
        Arc::clone(inner.files.lock().entry(path.to_path_buf()).or_default())
    }

    pub fn forget(&self, path: &Path) {
        if let Some(inner) = self.inner() {
            inner.files.lock().remove(path);
        }
    }

    /// Waits until a name appears in a watched directory (forever without
    /// events: the caller's poll decides).
    pub async fn new_name(&self) {
        match self.inner() {
            Some(inner) => inner.discovery.notified().await,
            None => std::future::pending().await,
        }
    }
}

/// An inotify descriptor registered with the runtime, or why not (logged).
fn open() -> Option<Arc<Inner>> {
    // SAFETY: inotify_init1 has no memory arguments; the result is checked.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    if fd < 0 {
        let error = std::io::Error::last_os_error();
        tracing::warn!(%error, "no inotify; files are polled only");
        return None;
    }
    // SAFETY: `fd` was just returned open by inotify_init1 and is owned here only.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an OwnedFd always returns the same open descriptor, owned by
    // the AsyncFd from here on.
    match unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) } {
        Ok(fd) => Some(Arc::new(Inner {
            fd,
            dirs: Mutex::new((HashMap::new(), HashMap::new())),
            files: Mutex::new(HashMap::new()),
            discovery: Notify::new(),
            changes: Mutex::new(Changes::default()),
        })),
        Err(refused) => {
            let (_, error) = refused.into_parts();
            tracing::warn!(%error, "inotify cannot be polled; files are polled only");
            None
        }
    }
}

/// Reads events until the descriptor fails; each wakes what it names.
async fn read_events(inner: Arc<Inner>) {
    let mut buffer = vec![0u8; EVENTS_BUFFER_BYTES];
    loop {
        let mut ready = match inner.fd.readable().await {
            Ok(ready) => ready,
            Err(error) => {
                tracing::warn!(%error, "inotify failed; files are polled only");
                return;
            }
        };
        let read = ready.try_io(|fd| {
            // SAFETY: reads at most `buffer.len()` bytes into `buffer`.
            let read = unsafe { libc::read(fd.get_ref().as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
            if read < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(read as usize)
            }
        });
        match read {
            Ok(Ok(read)) => wake_for(&inner, &buffer[..read]),
            Ok(Err(error)) => {
                tracing::warn!(%error, "reading inotify events failed; files are polled only");
                return;
            }
            Err(_would_block) => continue,
        }
    }
}

/// Wakes the tailers and discovery that `events` (a run of `inotify_event`s) name.
fn wake_for(inner: &Inner, events: &[u8]) {
    const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
    let mut at = 0;
    let mut new_name = false;
    while at + HEADER <= events.len() {
        // SAFETY: HEADER bytes are in bounds; read_unaligned copes with any alignment.
        let event: libc::inotify_event = unsafe { std::ptr::read_unaligned(events[at..].as_ptr().cast()) };
        let name_end = (at + HEADER + event.len as usize).min(events.len());
        let name = &events[at + HEADER..name_end];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        at = name_end;
        if event.mask & libc::IN_Q_OVERFLOW != 0 {
            // Events were lost: wake everyone rather than miss one.
            for notify in inner.files.lock().values() {
                notify.notify_one();
            }
            inner.changes.lock().lost = true;
            new_name = true;
            continue;
        }
        if event.mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0 {
            new_name = true;
        }
        let Some(dir) = inner.dirs.lock().0.get(&event.wd).cloned() else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let path = dir.join(OsStr::from_bytes(name));
        note_change(inner, event.mask, dir, &path);
        if let Some(notify) = inner.files.lock().get(&path) {
            notify.notify_one();
        }
    }
    if new_name {
        inner.discovery.notify_one();
    }
}

/// Keeps what an event on `path` (in `dir`) changed, for discovery.
fn note_change(inner: &Inner, mask: u32, dir: PathBuf, path: &Path) {
    let mut changes = inner.changes.lock();
    if changes.lost {
        return;
    }
    let names_changed = libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_MOVED_FROM | libc::IN_DELETE;
    if mask & names_changed != 0 {
        changes.dirs.insert(dir);
    }
    changes.names.insert(path.to_path_buf());
    if changes.names.len() > CHANGED_NAMES_MAX {
        *changes = Changes {
            lost: true,
            ..Changes::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    #[tokio::test]
    async fn a_write_wakes_its_file_and_a_new_name_wakes_discovery() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, b"").unwrap();
        let wake = Wake::default();
        wake.start();
        wake.watch_dir(dir.path());
        let file_wake = wake.file(&path);
        let other = wake.file(&dir.path().join("other.log"));
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"line\n").unwrap();
        tokio::time::timeout(Duration::from_secs(5), file_wake.notified())
            .await
            .expect("the write wakes its file");
        assert!(
            tokio::time::timeout(Duration::from_millis(200), other.notified())
                .await
                .is_err(),
            "another file is not woken"
        );
        std::fs::write(dir.path().join("new.log"), b"x\n").unwrap();
        tokio::time::timeout(Duration::from_secs(5), wake.new_name())
            .await
            .expect("a new name wakes discovery");
        wake.forget(&path);
        let changes = wake.take_changes().expect("events run");
        assert!(!changes.lost);
        assert_eq!(changes.dirs, [dir.path().to_path_buf()].into());
        assert_eq!(changes.names, [path.clone(), dir.path().join("new.log")].into());
        let quiet = wake.take_changes().unwrap();
        assert!(quiet.dirs.is_empty() && quiet.names.is_empty(), "taken once");
    }
}
