//! The filesystem through the kernel: real syscalls on a real mount, then a
//! pulled plug, and what the image holds.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use relay_plugfs::{fuse_available, Image, Loss, PlugFs};

/// Mounts an empty filesystem, or says loudly why this test cannot run.
fn mount(dir: &Path) -> Option<PlugFs> {
    if let Err(why) = fuse_available() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true and FUSE is not usable: {why}");
        }
        eprintln!("SKIPPED: {why}");
        return None;
    }
    Some(PlugFs::mount(&Image::empty_dir(), dir).expect("mount plugfs"))
}

fn data<'a>(image: &'a Image, path: &str) -> Option<&'a [u8]> {
    let mut at = image;
    for part in path.split('/') {
        match at {
            Image::Dir { entries, .. } => at = entries.get(std::ffi::OsStr::new(part))?,
            Image::File { .. } => return None,
        }
    }
    match at {
        Image::File { data, .. } => Some(data),
        Image::Dir { .. } => None,
    }
}

fn sync_dir(path: &Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

#[test]
fn only_what_was_synced_survives_the_plug() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = mount(dir.path()) else { return };
    let root = dir.path();

    // Appended, fsynced, appended again.
    let mut log = File::create(root.join("log")).unwrap();
    log.write_all(b"acked;").unwrap();
    log.sync_data().unwrap();
    log.write_all(b"not-acked;").unwrap();
    sync_dir(root);

    // Replaced the careful way, and the careless way.
    fs::write(root.join("careful.tmp"), b"new").unwrap();
    File::open(root.join("careful.tmp")).unwrap().sync_all().unwrap();
    fs::rename(root.join("careful.tmp"), root.join("careful")).unwrap();
    sync_dir(root);
    fs::write(root.join("careless"), b"never synced").unwrap();

    // A new directory whose parent was never synced afterwards.
    fs::create_dir(root.join("sub")).unwrap();
    let mut inner = File::create(root.join("sub/inner")).unwrap();
    inner.write_all(b"x").unwrap();
    inner.sync_all().unwrap();
    sync_dir(&root.join("sub"));

    // O_DSYNC writes need no fsync.
    let mut dsync = OpenOptions::new()
        .create_new(true)
        .write(true)
        .custom_flags(libc::O_DSYNC)
        .open(root.join("dsync"))
        .unwrap();
    dsync.write_all(b"durable").unwrap();
    sync_dir(root);
    fs::write(root.join("late"), b"created after the last directory sync").unwrap();
    File::open(root.join("late")).unwrap().sync_all().unwrap();

    let image = fs.pull_plug(Loss::Clean);
    assert_eq!(data(&image, "log").unwrap(), b"acked;");
    assert_eq!(data(&image, "careful").unwrap(), b"new");
    assert_eq!(data(&image, "careful.tmp"), None);
    assert_eq!(
        data(&image, "careless").unwrap(),
        b"",
        "its name was synced (with the root), its bytes never"
    );
    assert_eq!(
        data(&image, "sub/inner").unwrap(),
        b"x",
        "sub was synced, and root after it was created"
    );
    assert_eq!(data(&image, "late"), None, "file synced, its directory not");
    assert_eq!(data(&image, "dsync").unwrap(), b"durable");

    // A dead disk: every request fails.
    let err = fs::write(root.join("after"), b"late").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    drop((log, inner, dsync));
    let counts = fs.counts();
    assert!(
        counts.file_syncs >= 3 && counts.dir_syncs >= 4 && counts.sync_writes >= 1,
        "{counts:?}"
    );
    fs.unmount().unwrap();
}

#[test]
fn mmap_writes_count_once_msync_or_fsync_returns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = mount(dir.path()) else { return };
    let path = dir.path().join("index");
    let file = OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    file.set_len(8192).unwrap();
    file.sync_all().unwrap();
    sync_dir(dir.path());
    // SAFETY: the file is 8192 bytes long and only this test maps it.
    let map = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED, "{}", std::io::Error::last_os_error());
        std::slice::from_raw_parts_mut(p as *mut u8, 8192)
    };
    map[..4].copy_from_slice(b"SYNC");
    file.sync_all().unwrap();
    map[4096..4100].copy_from_slice(b"LOST");
    let image = fs.pull_plug(Loss::Clean);
    let index = data(&image, "index").unwrap();
    assert_eq!(&index[..4], b"SYNC");
    assert_eq!(&index[4096..4100], &[0, 0, 0, 0]);
    // SAFETY: unmapping the mapping made above.
    unsafe { libc::munmap(map.as_mut_ptr().cast(), 8192) };
    drop(file);
    fs.unmount().unwrap();
}

#[test]
fn a_remount_of_the_image_sees_the_survivors_and_a_clean_stop_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = mount(dir.path()) else { return };
    let mut f = File::create(dir.path().join("a")).unwrap();
    f.write_all(&[5u8; 10_000]).unwrap();
    f.sync_all().unwrap();
    sync_dir(dir.path());
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(b"overwritten").unwrap();
    drop(f);
    assert_eq!(data(&fs.live_image(), "a").unwrap()[..11], *b"overwritten");
    let image = fs.pull_plug(Loss::Clean);
    fs.unmount().unwrap();

    let fs = PlugFs::mount(&image, dir.path()).unwrap();
    assert_eq!(fs::read(dir.path().join("a")).unwrap(), vec![5u8; 10_000]);
    fs::write(dir.path().join("b"), b"unsynced").unwrap();
    let live = fs.live_image();
    fs.unmount().unwrap();
    assert_eq!(data(&live, "b").unwrap(), b"unsynced");

    let out = tempfile::tempdir().unwrap();
    live.write_dir(out.path()).unwrap();
    assert_eq!(fs::read(out.path().join("b")).unwrap(), b"unsynced");
}

#[test]
fn torn_images_keep_synced_bytes_and_cut_the_unsynced_tail_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = mount(dir.path()) else { return };
    let mut f = File::create(dir.path().join("seg")).unwrap();
    f.write_all(&[1u8; 3000]).unwrap();
    f.sync_data().unwrap();
    sync_dir(dir.path());
    f.write_all(&[2u8; 20_000]).unwrap();
    let lengths: std::collections::BTreeSet<usize> = (0..40)
        .map(|seed| {
            let tree = fs.live_image(); // keeps the mount alive across seeds
            assert!(matches!(tree, Image::Dir { .. }));
            let image = fs_image(&fs, seed);
            let seg = data(&image, "seg").unwrap().to_vec();
            assert_eq!(&seg[..3000], &[1u8; 3000][..], "seed {seed}");
            assert!(seg[3000..].iter().all(|&b| b == 0 || b == 2), "seed {seed}");
            seg.len()
        })
        .collect();
    assert!(lengths.len() > 3, "torn lengths {lengths:?}");
    drop(f);
    let _ = fs.pull_plug(Loss::Clean);
    fs.unmount().unwrap();
}

/// A torn image without killing the mount (pulling marks it dead).
fn fs_image(fs: &PlugFs, seed: u64) -> Image {
    fs.durable_image(Loss::Torn { seed })
}
