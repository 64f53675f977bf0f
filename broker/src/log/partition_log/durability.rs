//! When appended batches become durable and visible: the fsync policy
//! (`always`, `interval`, `never`), group commit (the first waiter fsyncs the
//! active segment for every append written before the fsync started), and
//! poisoning (a failed fsync makes the log refuse writes until reopened).
//!
//! Locks: `sync` is released before an fsync and before taking `state`, so
//! the lock order (`state` before `sync`) holds and appends go on during an
//! fsync.

use super::{PartitionLog, FSYNC_LATENCY_METRIC};
use crate::log::config::FsyncPolicy;
use crate::log::error::{io_error, LogError, Result};
use std::time::{Duration, Instant};

impl PartitionLog {
    pub(super) fn poison(&self, error: &LogError) {
        tracing::error!(dir = %self.dir.display(), %error, "fsync failed; partition refuses writes until restart");
        self.sync.lock().poisoned.get_or_insert_with(|| error.to_string());
    }

    pub(super) fn after_append(&self, last_offset: i64) -> Result<()> {
        match self.config.fsync {
            FsyncPolicy::Always => self.wait_durable(last_offset + 1),
            FsyncPolicy::Interval => {
                let due = self.sync.lock().last_sync.elapsed() >= Duration::from_millis(self.config.fsync_interval_ms);
                if due {
                    self.flush()?;
                }
                Ok(())
            }
            FsyncPolicy::Never => Ok(()),
        }
    }

    /// Blocks until every offset below `needed_next_offset` is fsynced,
    /// fsyncing itself when no other caller is.
    fn wait_durable(&self, needed_next_offset: i64) -> Result<()> {
        let mut sync = self.sync.lock();
        loop {
            if let Some(reason) = &sync.poisoned {
                return Err(LogError::Poisoned {
                    dir: self.dir.clone(),
                    reason: reason.clone(),
                });
            }
            if sync.durable_next_offset >= needed_next_offset {
                return Ok(());
            }
            if sync.syncing {
                self.synced.wait(&mut sync);
                continue;
            }
            sync.syncing = true;
            drop(sync);
            let result = self.sync_active();
            sync = self.sync.lock();
            sync.syncing = false;
            sync.last_sync = Instant::now();
            match result {
                Ok(next_offset) => sync.durable_next_offset = sync.durable_next_offset.max(next_offset),
                Err(error) => {
                    tracing::error!(dir = %self.dir.display(), %error, "fsync failed; partition refuses writes until restart");
                    sync.poisoned.get_or_insert_with(|| error.to_string());
                }
            }
            self.synced.notify_all();
        }
    }

    /// fsyncs the active segment and makes what it covered visible.
    fn sync_active(&self) -> Result<i64> {
        let (file, path, point, rewrites) = {
            let state = self.state.lock();
            (
                state.active().log_file(),
                state.active().log_path().to_path_buf(),
                state.end(),
                state.rewrites,
            )
        };
        let started = Instant::now();
        self.faults.sync_data(&file).map_err(io_error("fsync", &path))?;
        metrics::histogram!(FSYNC_LATENCY_METRIC).record(started.elapsed().as_secs_f64());
        let mut state = self.state.lock();
        // A rewrite in between made its copy durable and visible itself, and
        // moved the byte positions this point was taken at.
        if point.next_offset > state.visible.next_offset && state.rewrites == rewrites {
            state.visible = point;
        }
        Ok(point.next_offset)
    }

    /// fsyncs everything appended so far (the `interval` timer and close use it).
    pub fn flush(&self) -> Result<()> {
        let end = self.state.lock().end().next_offset;
        self.wait_durable(end)
    }
}
