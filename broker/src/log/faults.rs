//! Injected I/O failures, so tests can make the next write or fsync fail the
//! way a full or failing disk does (ENOSPC, EIO) without a special kernel.
//! Every write and fsync of the log goes through [`FaultInjector`]; without
//! armed faults it is one relaxed atomic load.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

#[derive(Debug, Default)]
struct Armed {
    fsyncs_to_fail: AtomicU32,
    writes_to_fail: AtomicU32,
    disk_full: AtomicBool,
}

/// Shared handle: clones arm the same faults.
#[derive(Debug, Clone, Default)]
pub struct FaultInjector {
    armed: Arc<Armed>,
}

fn take_one(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

impl FaultInjector {
    /// The next `count` fsyncs fail with EIO.
    pub fn fail_next_fsyncs(&self, count: u32) {
        self.armed.fsyncs_to_fail.store(count, Ordering::Release);
    }

    /// The next `count` writes fail with ENOSPC before writing anything.
    pub fn fail_next_writes(&self, count: u32) {
        self.armed.writes_to_fail.store(count, Ordering::Release);
    }

    /// While set, every write fails with ENOSPC, as on a full disk; clearing
    /// it is space coming back.
    pub fn set_disk_full(&self, full: bool) {
        self.armed.disk_full.store(full, Ordering::Release);
    }

    pub(crate) fn sync_data(&self, file: &File) -> io::Result<()> {
        if take_one(&self.armed.fsyncs_to_fail) {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        file.sync_data()
    }

    pub(crate) fn write_all_at(&self, file: &File, bytes: &[u8], position: u64) -> io::Result<()> {
        if self.armed.disk_full.load(Ordering::Acquire) || take_one(&self.armed.writes_to_fail) {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        file.write_all_at(bytes, position)
    }
}
