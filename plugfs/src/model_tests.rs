use super::*;

fn name(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn empty() -> Tree {
    Tree::from_image(&Image::Dir {
        mode: 0o755,
        entries: BTreeMap::new(),
    })
}

fn file_data(image: &Image, path: &[&str]) -> Option<Vec<u8>> {
    let mut at = image;
    for part in path {
        match at {
            Image::Dir { entries, .. } => at = entries.get(OsStr::new(part))?,
            Image::File { .. } => return None,
        }
    }
    match at {
        Image::File { data, .. } => Some(data.clone()),
        Image::Dir { .. } => None,
    }
}

#[test]
fn an_unsynced_create_is_lost_and_a_synced_one_kept() {
    let mut tree = empty();
    let a = tree.create(ROOT_INO, name("a"), Kind::File, 0o644).unwrap();
    tree.write(a, 0, b"hello", false).unwrap();
    tree.sync(a).unwrap();
    assert_eq!(
        file_data(&tree.durable_image(Loss::Clean), &["a"]),
        None,
        "file synced, directory not"
    );
    tree.sync(ROOT_INO).unwrap();
    assert_eq!(file_data(&tree.durable_image(Loss::Clean), &["a"]).unwrap(), b"hello");
}

#[test]
fn data_written_after_the_last_fsync_is_lost() {
    let mut tree = empty();
    let a = tree.create(ROOT_INO, name("a"), Kind::File, 0o644).unwrap();
    tree.sync(ROOT_INO).unwrap();
    tree.write(a, 0, b"one", false).unwrap();
    tree.sync(a).unwrap();
    tree.write(a, 3, b"two", false).unwrap();
    tree.write(a, 0, b"ONE", false).unwrap();
    assert_eq!(file_data(&tree.durable_image(Loss::Clean), &["a"]).unwrap(), b"one");
    assert_eq!(file_data(&tree.live_image(), &["a"]).unwrap(), b"ONEtwo");
}

#[test]
fn a_rename_is_durable_only_once_the_directory_is_synced() {
    let mut tree = empty();
    let t = tree.create(ROOT_INO, name("state.tmp"), Kind::File, 0o644).unwrap();
    tree.write(t, 0, b"new", false).unwrap();
    tree.sync(t).unwrap();
    let old = tree.create(ROOT_INO, name("state"), Kind::File, 0o644).unwrap();
    tree.write(old, 0, b"old", false).unwrap();
    tree.sync(old).unwrap();
    tree.sync(ROOT_INO).unwrap();
    tree.rename(ROOT_INO, name("state.tmp"), ROOT_INO, name("state"), false)
        .unwrap();
    let image = tree.durable_image(Loss::Clean);
    assert_eq!(file_data(&image, &["state"]).unwrap(), b"old");
    tree.sync(ROOT_INO).unwrap();
    let image = tree.durable_image(Loss::Clean);
    assert_eq!(file_data(&image, &["state"]).unwrap(), b"new");
    assert_eq!(file_data(&image, &["state.tmp"]), None);
}

#[test]
fn an_unsynced_unlink_comes_back_and_a_truncate_is_undone() {
    let mut tree = empty();
    let a = tree.create(ROOT_INO, name("a"), Kind::File, 0o644).unwrap();
    tree.write(a, 0, &[7u8; 10_000], false).unwrap();
    tree.sync(a).unwrap();
    tree.sync(ROOT_INO).unwrap();
    tree.set_len(a, 100).unwrap();
    tree.remove(ROOT_INO, name("a"), Kind::File).unwrap();
    assert_eq!(
        file_data(&tree.durable_image(Loss::Clean), &["a"]).unwrap(),
        vec![7u8; 10_000]
    );
}

#[test]
fn o_dsync_writes_are_durable_without_fsync() {
    let mut tree = empty();
    let a = tree.create(ROOT_INO, name("a"), Kind::File, 0o644).unwrap();
    tree.sync(ROOT_INO).unwrap();
    tree.write(a, 0, b"synced", true).unwrap();
    tree.write(a, 6, b"-not", false).unwrap();
    assert_eq!(file_data(&tree.durable_image(Loss::Clean), &["a"]).unwrap(), b"synced");
}

#[test]
fn a_new_directory_needs_its_parent_synced() {
    let mut tree = empty();
    let d = tree.create(ROOT_INO, name("d"), Kind::Dir, 0o755).unwrap();
    let f = tree.create(d, name("f"), Kind::File, 0o644).unwrap();
    tree.write(f, 0, b"x", false).unwrap();
    tree.sync(f).unwrap();
    tree.sync(d).unwrap();
    assert_eq!(file_data(&tree.durable_image(Loss::Clean), &["d", "f"]), None);
    tree.sync(ROOT_INO).unwrap();
    assert_eq!(file_data(&tree.durable_image(Loss::Clean), &["d", "f"]).unwrap(), b"x");
}

#[test]
fn torn_images_keep_every_synced_byte_and_only_written_bytes_after_it() {
    for seed in 0..200 {
        let mut tree = empty();
        let a = tree.create(ROOT_INO, name("a"), Kind::File, 0o644).unwrap();
        tree.sync(ROOT_INO).unwrap();
        tree.write(a, 0, &[1u8; 5000], false).unwrap();
        tree.sync(a).unwrap();
        tree.write(a, 5000, &[2u8; 9000], false).unwrap();
        let data = file_data(&tree.durable_image(Loss::Torn { seed }), &["a"]).unwrap();
        assert!(
            data.len() >= 5000 && data.len() <= 14_000,
            "seed {seed}: length {}",
            data.len()
        );
        assert_eq!(&data[..5000], &[1u8; 5000][..], "seed {seed}");
        assert!(data[5000..].iter().all(|&b| b == 2 || b == 0), "seed {seed}");
    }
}

#[test]
fn torn_images_differ_between_seeds_and_repeat_for_one_seed() {
    let mut tree = empty();
    let a = tree.create(ROOT_INO, name("a"), Kind::File, 0o644).unwrap();
    tree.sync(ROOT_INO).unwrap();
    tree.write(a, 0, &[3u8; 64 * 1024], false).unwrap();
    let images: BTreeSet<Vec<u8>> = (0..20)
        .map(|seed| file_data(&tree.durable_image(Loss::Torn { seed }), &["a"]).unwrap())
        .collect();
    assert!(images.len() > 5, "only {} distinct torn images", images.len());
    assert_eq!(
        tree.durable_image(Loss::Torn { seed: 9 }),
        tree.durable_image(Loss::Torn { seed: 9 })
    );
}

#[test]
fn rename_refuses_what_the_kernel_would() {
    let mut tree = empty();
    let d = tree.create(ROOT_INO, name("d"), Kind::Dir, 0o755).unwrap();
    tree.create(d, name("f"), Kind::File, 0o644).unwrap();
    tree.create(ROOT_INO, name("g"), Kind::File, 0o644).unwrap();
    assert_eq!(
        tree.rename(ROOT_INO, name("g"), ROOT_INO, name("d"), false),
        Err(libc::EISDIR)
    );
    assert_eq!(
        tree.rename(ROOT_INO, name("d"), d, name("inner"), false),
        Err(libc::EINVAL)
    );
    assert_eq!(tree.rename(ROOT_INO, name("g"), d, name("f"), true), Err(libc::EEXIST));
    assert_eq!(tree.remove(ROOT_INO, name("d"), Kind::Dir), Err(libc::ENOTEMPTY));
}
