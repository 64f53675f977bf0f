//! The in-memory filesystem behind the mount: every inode keeps its **live**
//! state (what processes read back) and its **durable** state (what a disk
//! would hold after losing power). Only the operations listed in
//! `proto-spec/POWER_LOSS.md` move live state into durable state:
//!
//! - a file's bytes and length: `fsync`/`fdatasync` of that file, or a write
//!   through a descriptor opened with `O_SYNC`/`O_DSYNC` (the pages it
//!   wrote, and the length if it grew the file);
//! - a directory's entries (creates, renames, unlinks, mkdir, rmdir): `fsync`
//!   of that directory. A rename between directories needs both synced.
//!
//! No FUSE types here: the mount (`fs.rs`) translates requests into these
//! calls, so the model is tested on its own.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::time::SystemTime;

use crate::image::Image;
use crate::rng::Rng;

/// Granularity of dirty tracking and of torn writes.
pub const PAGE_BYTES: u64 = 4096;
/// Granularity of a torn tail: a disk writes whole sectors.
pub const SECTOR_BYTES: u64 = 512;
/// Inode number of the mount's root directory.
pub const ROOT_INO: u64 = 1;

/// An errno value (`libc::E*`).
pub type Errno = i32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

#[derive(Debug)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    pub mtime: SystemTime,
    /// Files: what reads return now.
    pub live: Vec<u8>,
    /// Files: what survives a power loss.
    pub durable: Vec<u8>,
    /// Files: pages written (or cut by a truncate) since the last sync.
    pub dirty_pages: BTreeSet<u64>,
    /// Directories: names as processes see them now.
    pub live_entries: BTreeMap<OsString, u64>,
    /// Directories: names as the last directory fsync left them.
    pub durable_entries: BTreeMap<OsString, u64>,
}

impl Node {
    fn new(kind: Kind, mode: u32) -> Node {
        Node {
            kind,
            mode,
            mtime: SystemTime::now(),
            live: Vec::new(),
            durable: Vec::new(),
            dirty_pages: BTreeSet::new(),
            live_entries: BTreeMap::new(),
            durable_entries: BTreeMap::new(),
        }
    }

    pub fn size_bytes(&self) -> u64 {
        match self.kind {
            Kind::File => self.live.len() as u64,
            Kind::Dir => 4096,
        }
    }

    fn mark_dirty(&mut self, from: u64, to: u64) {
        if to > from {
            for page in from / PAGE_BYTES..=(to - 1) / PAGE_BYTES {
                self.dirty_pages.insert(page);
            }
        }
    }

    fn copy_page_to_durable(&mut self, page: u64) {
        let start = (page * PAGE_BYTES) as usize;
        let end = ((page + 1) * PAGE_BYTES).min(self.live.len() as u64) as usize;
        if start < end {
            if self.durable.len() < end {
                self.durable.resize(end, 0);
            }
            self.durable[start..end].copy_from_slice(&self.live[start..end]);
        }
    }
}

/// What survives when the plug is pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Exactly the durable state: every unsynced byte and name change is gone.
    Clean,
    /// A disk that was busy when the power went: each unsynced page of a file
    /// may or may not have reached it, its length is the durable one, the
    /// live one or a sector boundary between (the gap reads as zeros), and
    /// each directory shows either its synced or its current names.
    Torn { seed: u64 },
}

#[derive(Debug, Default)]
pub struct Tree {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
}

impl Tree {
    /// A tree whose whole content is durable (as read back from a disk).
    pub fn from_image(root: &Image) -> Tree {
        let mut tree = Tree {
            nodes: HashMap::new(),
            next_ino: ROOT_INO,
        };
        let root_ino = tree.insert_image(root);
        debug_assert_eq!(root_ino, ROOT_INO);
        tree
    }

    fn insert_image(&mut self, image: &Image) -> u64 {
        let ino = self.allocate();
        match image {
            Image::File { data, mode } => {
                let mut node = Node::new(Kind::File, *mode);
                node.live = data.clone();
                node.durable = data.clone();
                self.nodes.insert(ino, node);
            }
            Image::Dir { mode, entries } => {
                self.nodes.insert(ino, Node::new(Kind::Dir, *mode));
                for (name, child) in entries {
                    let child_ino = self.insert_image(child);
                    let dir = self.nodes.get_mut(&ino).expect("just inserted");
                    dir.live_entries.insert(name.clone(), child_ino);
                    dir.durable_entries.insert(name.clone(), child_ino);
                }
            }
        }
        ino
    }

    fn allocate(&mut self) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        ino
    }

    pub fn node(&self, ino: u64) -> Result<&Node, Errno> {
        self.nodes.get(&ino).ok_or(libc::ENOENT)
    }

    fn node_mut(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    fn dir_mut(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        let node = self.node_mut(ino)?;
        if node.kind != Kind::Dir {
            return Err(libc::ENOTDIR);
        }
        Ok(node)
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        let node = self.node_mut(ino)?;
        if node.kind != Kind::File {
            return Err(libc::EISDIR);
        }
        Ok(node)
    }

    pub fn lookup(&self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        let dir = self.node(parent)?;
        if dir.kind != Kind::Dir {
            return Err(libc::ENOTDIR);
        }
        dir.live_entries.get(name).copied().ok_or(libc::ENOENT)
    }

    /// Creates a file or directory named `name` in `parent` (live only).
    pub fn create(&mut self, parent: u64, name: &OsStr, kind: Kind, mode: u32) -> Result<u64, Errno> {
        let dir = self.dir_mut(parent)?;
        if dir.live_entries.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.allocate();
        self.nodes.insert(ino, Node::new(kind, mode & 0o7777));
        let dir = self.dir_mut(parent)?;
        dir.live_entries.insert(name.to_owned(), ino);
        dir.mtime = SystemTime::now();
        Ok(ino)
    }

    /// Removes a name (`unlink` for files, `rmdir` for empty directories).
    pub fn remove(&mut self, parent: u64, name: &OsStr, kind: Kind) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        let node = self.node(ino)?;
        match (kind, node.kind) {
            (Kind::File, Kind::Dir) => return Err(libc::EISDIR),
            (Kind::Dir, Kind::File) => return Err(libc::ENOTDIR),
            (Kind::Dir, Kind::Dir) if !node.live_entries.is_empty() => return Err(libc::ENOTEMPTY),
            _ => {}
        }
        let dir = self.dir_mut(parent)?;
        dir.live_entries.remove(name);
        dir.mtime = SystemTime::now();
        Ok(())
    }

    /// `rename(2)` with `RENAME_NOREPLACE` when `no_replace`.
    pub fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        let moving = self.node(ino)?.kind;
        self.dir_mut(new_parent)?;
        if let Ok(target) = self.lookup(new_parent, new_name) {
            if target == ino {
                return Ok(());
            }
            if no_replace {
                return Err(libc::EEXIST);
            }
            let target = self.node(target)?;
            match (moving, target.kind) {
                (Kind::File, Kind::Dir) => return Err(libc::EISDIR),
                (Kind::Dir, Kind::File) => return Err(libc::ENOTDIR),
                (Kind::Dir, Kind::Dir) if !target.live_entries.is_empty() => return Err(libc::ENOTEMPTY),
                _ => {}
            }
        }
        if moving == Kind::Dir && self.is_ancestor(ino, new_parent) {
            return Err(libc::EINVAL);
        }
        let now = SystemTime::now();
        let dir = self.dir_mut(parent)?;
        dir.live_entries.remove(name);
        dir.mtime = now;
        let dir = self.dir_mut(new_parent)?;
        dir.live_entries.insert(new_name.to_owned(), ino);
        dir.mtime = now;
        Ok(())
    }

    fn is_ancestor(&self, ancestor: u64, mut ino: u64) -> bool {
        // Directories have one live parent; walk up from `ino`.
        let mut steps = 0;
        while ino != ROOT_INO && steps < 10_000 {
            if ino == ancestor {
                return true;
            }
            match self
                .nodes
                .iter()
                .find(|(_, n)| n.live_entries.values().any(|&c| c == ino))
            {
                Some((&parent, _)) => ino = parent,
                None => return false,
            }
            steps += 1;
        }
        ino == ancestor
    }

    pub fn read(&self, ino: u64, offset: u64, size: u32) -> Result<&[u8], Errno> {
        let node = self.node(ino)?;
        if node.kind != Kind::File {
            return Err(libc::EISDIR);
        }
        let start = (offset as usize).min(node.live.len());
        let end = (start + size as usize).min(node.live.len());
        Ok(&node.live[start..end])
    }

    /// Writes live bytes; `sync` makes them durable at once (`O_SYNC`/`O_DSYNC`).
    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8], sync: bool) -> Result<(), Errno> {
        let node = self.file_mut(ino)?;
        let start = offset as usize;
        let end = start.checked_add(data.len()).ok_or(libc::EFBIG)?;
        if node.live.len() < end {
            node.live.resize(end, 0);
        }
        node.live[start..end].copy_from_slice(data);
        node.mark_dirty(offset, end as u64);
        node.mtime = SystemTime::now();
        if sync && !data.is_empty() {
            for page in offset / PAGE_BYTES..=(end as u64 - 1) / PAGE_BYTES {
                node.copy_page_to_durable(page);
                node.dirty_pages.remove(&page);
            }
        }
        Ok(())
    }

    /// `truncate`/`ftruncate`: the new length is live until the next fsync.
    pub fn set_len(&mut self, ino: u64, len: u64) -> Result<(), Errno> {
        let node = self.file_mut(ino)?;
        let old = node.live.len() as u64;
        node.live.resize(len as usize, 0);
        node.mark_dirty(old.min(len), old.max(len));
        node.mtime = SystemTime::now();
        Ok(())
    }

    pub fn set_mode(&mut self, ino: u64, mode: u32) -> Result<(), Errno> {
        self.node_mut(ino)?.mode = mode & 0o7777;
        Ok(())
    }

    /// `fsync`/`fdatasync` of a file, or of a directory.
    pub fn sync(&mut self, ino: u64) -> Result<(), Errno> {
        let node = self.node_mut(ino)?;
        match node.kind {
            Kind::File => {
                let pages = std::mem::take(&mut node.dirty_pages);
                for page in pages {
                    node.copy_page_to_durable(page);
                }
                let len = node.live.len();
                node.durable.resize(len, 0);
            }
            Kind::Dir => node.durable_entries = node.live_entries.clone(),
        }
        Ok(())
    }

    /// What processes see now, as a clean shutdown with `sync` would leave it.
    pub fn live_image(&self) -> Image {
        self.image(ROOT_INO, &mut Vec::new(), &|_, node| node.live.clone(), &|_, node| {
            &node.live_entries
        })
    }

    /// What a disk holds after losing power now.
    pub fn durable_image(&self, loss: Loss) -> Image {
        match loss {
            Loss::Clean => self.image(
                ROOT_INO,
                &mut Vec::new(),
                &|_, node| node.durable.clone(),
                &|_, node| &node.durable_entries,
            ),
            Loss::Torn { seed } => {
                let mut rng = Rng::new(seed);
                let mut inos: Vec<u64> = self.nodes.keys().copied().collect();
                inos.sort_unstable();
                let mut files: HashMap<u64, Vec<u8>> = HashMap::new();
                let mut dirs: HashMap<u64, bool> = HashMap::new();
                for ino in inos {
                    let node = &self.nodes[&ino];
                    match node.kind {
                        Kind::File => {
                            files.insert(ino, torn_contents(node, &mut rng));
                        }
                        Kind::Dir => {
                            dirs.insert(ino, rng.chance(1, 2));
                        }
                    }
                }
                self.image(
                    ROOT_INO,
                    &mut Vec::new(),
                    &|ino, _| files.get(&ino).cloned().unwrap_or_default(),
                    &|ino, node| match dirs.get(&ino) {
                        Some(true) => &node.live_entries,
                        _ => &node.durable_entries,
                    },
                )
            }
        }
    }

    fn image<'a>(
        &'a self,
        ino: u64,
        path: &mut Vec<u64>,
        data: &dyn Fn(u64, &'a Node) -> Vec<u8>,
        entries: &dyn Fn(u64, &'a Node) -> &'a BTreeMap<OsString, u64>,
    ) -> Image {
        let node = &self.nodes[&ino];
        match node.kind {
            Kind::File => Image::File {
                data: data(ino, node),
                mode: node.mode,
            },
            Kind::Dir => {
                path.push(ino);
                let mut out = BTreeMap::new();
                for (name, &child) in entries(ino, node) {
                    // A directory renamed under one of its own former
                    // descendants can appear twice on one path: stop there.
                    if path.contains(&child) || !self.nodes.contains_key(&child) {
                        continue;
                    }
                    out.insert(name.clone(), self.image(child, path, data, entries));
                }
                path.pop();
                Image::Dir {
                    mode: node.mode,
                    entries: out,
                }
            }
        }
    }
}

fn torn_contents(node: &Node, rng: &mut Rng) -> Vec<u8> {
    if node.dirty_pages.is_empty() && node.durable.len() == node.live.len() {
        return node.durable.clone();
    }
    let (durable_len, live_len) = (node.durable.len() as u64, node.live.len() as u64);
    let len = match rng.below(3) {
        0 => durable_len,
        1 => live_len,
        _ if live_len > durable_len => {
            let sectors = (live_len - durable_len).div_ceil(SECTOR_BYTES);
            (durable_len + rng.below(sectors + 1) * SECTOR_BYTES).min(live_len)
        }
        _ => live_len + rng.below(durable_len - live_len + 1),
    };
    let mut out = node.durable.clone();
    out.resize(len as usize, 0);
    for &page in &node.dirty_pages {
        if rng.chance(1, 2) {
            let start = (page * PAGE_BYTES).min(len).min(live_len) as usize;
            let end = ((page + 1) * PAGE_BYTES).min(len).min(live_len) as usize;
            out[start..end].copy_from_slice(&node.live[start..end]);
        }
    }
    out
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
