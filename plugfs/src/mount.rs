//! A mounted power-loss filesystem: mount an image on an empty directory, run
//! processes on it, then either pull the plug (keep only what was durable,
//! fail every later request) or stop cleanly (keep everything).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use fuser::{BackgroundSession, Config, MountOption, SessionACL};
use parking_lot::Mutex;

use crate::fs::{Counts, PlugFilesystem, State};
use crate::image::Image;
use crate::model::{Loss, Tree};

/// How long an unmount may wait for the request loop to finish.
pub const UNMOUNT_WAIT_MAX: Duration = Duration::from_secs(20);

/// Whether this machine can mount FUSE filesystems here (root and `/dev/fuse`);
/// the reason when it cannot.
pub fn fuse_available() -> Result<(), String> {
    if !Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse does not exist (FUSE is not available on this machine)".into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("mounting without fusermount needs root".into());
    }
    Ok(())
}

pub struct PlugFs {
    state: Arc<Mutex<State>>,
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
}

impl PlugFs {
    /// Mounts `image` (all of it durable) on the existing empty directory
    /// `mountpoint`.
    pub fn mount(image: &Image, mountpoint: &Path) -> io::Result<PlugFs> {
        let state = Arc::new(Mutex::new(State::new(Tree::from_image(image))));
        let filesystem = PlugFilesystem { state: state.clone() };
        let mut config = Config::default();
        config.mount_options = vec![MountOption::FSName("relay-plugfs".into()), MountOption::RW];
        config.acl = SessionACL::Owner;
        let session = fuser::spawn_mount(filesystem, mountpoint, &config).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot mount plugfs on {}: {e}", mountpoint.display()),
            )
        })?;
        Ok(PlugFs {
            state,
            session: Some(session),
            mountpoint: mountpoint.to_owned(),
        })
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    pub fn counts(&self) -> Counts {
        self.state.lock().counts
    }

    /// Pulls the plug: returns what the disk holds now and fails every later
    /// request with EIO. Stop the processes using the mount, then `unmount`.
    pub fn pull_plug(&self, loss: Loss) -> Image {
        let mut state = self.state.lock();
        state.dead = true;
        state.tree.durable_image(loss)
    }

    /// What the disk would hold if the plug were pulled now, without pulling it.
    pub fn durable_image(&self, loss: Loss) -> Image {
        self.state.lock().tree.durable_image(loss)
    }

    /// What processes see now (a clean shutdown followed by `sync`).
    pub fn live_image(&self) -> Image {
        self.state.lock().tree.live_image()
    }

    /// Unmounts and waits for the request loop to end.
    pub fn unmount(mut self) -> io::Result<()> {
        self.unmount_inner()
    }

    fn unmount_inner(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(session.umount_and_join());
        });
        match finished.recv_timeout(UNMOUNT_WAIT_MAX) {
            Ok(result) => result,
            Err(_) => Err(io::Error::other(format!(
                "plugfs on {} still busy {UNMOUNT_WAIT_MAX:?} after unmount (a process still holds a file there?)",
                self.mountpoint.display()
            ))),
        }
    }
}

impl Drop for PlugFs {
    fn drop(&mut self) {
        if let Err(e) = self.unmount_inner() {
            eprintln!("{e}");
        }
    }
}
