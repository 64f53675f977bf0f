//! FUSE requests onto the model: each request locks the shared state, applies
//! one model operation and replies. After the plug is pulled every request
//! fails with `EIO`, as on a machine whose disk has gone.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno as FuseErrno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;

use crate::model::{Errno, Kind, Tree};

/// How long the kernel may cache names and attributes: every change goes
/// through this mount, so the kernel's copies stay right.
const ATTRIBUTE_TTL: Duration = Duration::from_secs(1);

/// Operations seen, for a test's report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub writes: u64,
    pub file_syncs: u64,
    pub dir_syncs: u64,
    pub sync_writes: u64,
}

enum Handle {
    File { sync: bool },
    Dir { listing: Vec<(u64, FileType, OsString)> },
}

pub struct State {
    pub tree: Tree,
    /// Set when the plug is pulled: nothing is served after that.
    pub dead: bool,
    pub counts: Counts,
    handles: HashMap<u64, Handle>,
    next_handle: u64,
}

impl State {
    pub fn new(tree: Tree) -> State {
        State {
            tree,
            dead: false,
            counts: Counts::default(),
            handles: HashMap::new(),
            next_handle: 1,
        }
    }

    fn open(&mut self, handle: Handle) -> FileHandle {
        let fh = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(fh, handle);
        FileHandle(fh)
    }

    fn attr(&self, ino: u64) -> Result<FileAttr, Errno> {
        let node = self.tree.node(ino)?;
        let size = node.size_bytes();
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: node.mtime,
            mtime: node.mtime,
            ctime: node.mtime,
            crtime: SystemTime::UNIX_EPOCH,
            kind: file_type(node.kind),
            perm: node.mode as u16,
            nlink: if node.kind == Kind::Dir { 2 } else { 1 },
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }
}

fn file_type(kind: Kind) -> FileType {
    match kind {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
    }
}

fn errno(code: Errno) -> FuseErrno {
    FuseErrno::from_i32(code)
}

/// Whether writes through a descriptor opened with these flags are durable
/// when they return (`O_SYNC` includes `O_DSYNC` on Linux).
fn synchronous(flags: i32) -> bool {
    flags & libc::O_DSYNC != 0
}

pub struct PlugFilesystem {
    pub state: Arc<Mutex<State>>,
}

impl PlugFilesystem {
    /// Runs `op` on the live state, or fails with EIO after the plug is pulled.
    fn with<T>(&self, op: impl FnOnce(&mut State) -> Result<T, Errno>) -> Result<T, FuseErrno> {
        let mut state = self.state.lock();
        if state.dead {
            return Err(FuseErrno::EIO);
        }
        op(&mut state).map_err(errno)
    }

    fn entry(&self, reply: ReplyEntry, op: impl FnOnce(&mut State) -> Result<u64, Errno>) {
        match self.with(|state| op(state).and_then(|ino| state.attr(ino))) {
            Ok(attr) => reply.entry(&ATTRIBUTE_TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn empty(&self, reply: ReplyEmpty, op: impl FnOnce(&mut State) -> Result<(), Errno>) {
        match self.with(op) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

impl Filesystem for PlugFilesystem {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.entry(reply, |state| state.tree.lookup(parent.0, name));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.with(|state| state.attr(ino.0)) {
            Ok(attr) => reply.attr(&ATTRIBUTE_TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let result = self.with(|state| {
            if let Some(size) = size {
                state.tree.set_len(ino.0, size)?;
            }
            if let Some(mode) = mode {
                state.tree.set_mode(ino.0, mode)?;
            }
            state.attr(ino.0)
        });
        match result {
            Ok(attr) => reply.attr(&ATTRIBUTE_TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            reply.error(FuseErrno::EPERM);
            return;
        }
        self.entry(reply, |state| {
            state.tree.create(parent.0, name, Kind::File, mode & !umask)
        });
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        self.entry(reply, |state| {
            state.tree.create(parent.0, name, Kind::Dir, mode & !umask)
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.empty(reply, |state| state.tree.remove(parent.0, name, Kind::File));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.empty(reply, |state| state.tree.remove(parent.0, name, Kind::Dir));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            reply.error(FuseErrno::EINVAL);
            return;
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        self.empty(reply, |state| {
            state.tree.rename(parent.0, name, newparent.0, newname, no_replace)
        });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let result = self.with(|state| {
            let kind = state.tree.node(ino.0)?.kind;
            if kind != Kind::File {
                return Err(libc::EISDIR);
            }
            Ok(state.open(Handle::File {
                sync: synchronous(flags.0),
            }))
        });
        match result {
            Ok(fh) => reply.opened(fh, FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let result = self.with(|state| {
            let ino = state.tree.create(parent.0, name, Kind::File, mode & !umask)?;
            let fh = state.open(Handle::File {
                sync: synchronous(flags),
            });
            Ok((state.attr(ino)?, fh))
        });
        match result {
            Ok((attr, fh)) => reply.created(&ATTRIBUTE_TTL, &attr, Generation(0), fh, FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let state = self.state.lock();
        if state.dead {
            reply.error(FuseErrno::EIO);
            return;
        }
        match state.tree.read(ino.0, offset, size) {
            Ok(data) => reply.data(data),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let result = self.with(|state| {
            let by_handle = matches!(state.handles.get(&fh.0), Some(Handle::File { sync: true }));
            let sync = by_handle || synchronous(flags.0);
            state.tree.write(ino.0, offset, data, sync)?;
            state.counts.writes += 1;
            state.counts.sync_writes += u64::from(sync);
            Ok(data.len() as u32)
        });
        match result {
            Ok(written) => reply.written(written),
            Err(e) => reply.error(e),
        }
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        self.empty(reply, |_| Ok(()));
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.state.lock().handles.remove(&fh.0);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        self.empty(reply, |state| {
            state.counts.file_syncs += 1;
            state.tree.sync(ino.0)
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let result = self.with(|state| {
            let node = state.tree.node(ino.0)?;
            if node.kind != Kind::Dir {
                return Err(libc::ENOTDIR);
            }
            let mut listing = vec![
                (ino.0, FileType::Directory, ".".into()),
                (ino.0, FileType::Directory, "..".into()),
            ];
            for (name, &child) in &node.live_entries {
                let kind = state.tree.node(child).map(|n| n.kind).unwrap_or(Kind::File);
                listing.push((child, file_type(kind), name.clone()));
            }
            Ok(state.open(Handle::Dir { listing }))
        });
        match result {
            Ok(fh) => reply.opened(fh, FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let state = self.state.lock();
        if state.dead {
            reply.error(FuseErrno::EIO);
            return;
        }
        let Some(Handle::Dir { listing }) = state.handles.get(&fh.0) else {
            reply.error(FuseErrno::EBADF);
            return;
        };
        for (index, (child, kind, name)) in listing.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*child), index as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        self.state.lock().handles.remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        self.empty(reply, |state| {
            state.counts.dir_syncs += 1;
            state.tree.sync(ino.0)
        });
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // A roomy disk: 64 GiB in 4 KiB blocks, a million inodes.
        let blocks = 16 * 1024 * 1024;
        reply.statfs(blocks, blocks, blocks, 1 << 20, 1 << 20, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        self.empty(reply, |state| state.tree.node(ino.0).map(|_| ()));
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        if mode != 0 {
            reply.error(FuseErrno::from_i32(libc::EOPNOTSUPP));
            return;
        }
        self.empty(reply, |state| {
            let size = state.tree.node(ino.0)?.size_bytes();
            let end = offset.checked_add(length).ok_or(libc::EFBIG)?;
            if end > size {
                state.tree.set_len(ino.0, end)?;
            }
            Ok(())
        });
    }
}
