//! Golden sender registries in `proto-spec/vectors/sender-registry/`: a
//! version 1 file as releases before file ids wrote it, a version 2 file as
//! releases before `<before>` wrote it (one entry truncated in place, with
//! its previous content), and a version 3 file as this one writes it. All
//! must keep reading the same way; v3 must also write back byte for byte.

use relay_proto::registry::{decode, encode, FileId, FileKey, Fingerprint, Previous};
use std::path::{Path, PathBuf};

fn vector(name: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("vectors/sender-registry")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

#[test]
fn a_version_1_registry_keeps_every_position_and_path() {
    let (path, text) = vector("registry-v1");
    let mut next = 0u128;
    let entries = decode(&text, &path, || {
        next += 1;
        FileId(next)
    })
    .unwrap();
    let first = &entries[&FileKey {
        device: 64768,
        inode: 1311,
    }];
    assert_eq!(first.acked_position, 81_549);
    assert_eq!(
        first.fingerprint,
        Fingerprint {
            bytes: 256,
            crc: 3_405_691_582
        }
    );
    assert_eq!(first.previous, None);
    let second = &entries[&FileKey {
        device: 64768,
        inode: 1312,
    }];
    assert_eq!(second.path, PathBuf::from("/var/log/with space.jsonl"));
    assert_eq!(second.acked_position, 40);
    let mut ids: Vec<FileId> = entries.values().map(|e| e.file_id).collect();
    ids.sort();
    assert_eq!(ids, vec![FileId(1), FileId(2)], "every file gets a new id");
}

#[test]
fn a_version_2_registry_keeps_ids_and_previous_content_with_the_bytes_before_unknown() {
    let (path, text) = vector("registry-v2");
    let entries = decode(&text, &path, || panic!("version 2 names every id")).unwrap();
    let truncated = &entries[&FileKey {
        device: 64768,
        inode: 1311,
    }];
    assert_eq!(truncated.file_id.to_string(), "9e3779b97f4a7c15f39cc0605cedc834");
    assert_eq!(
        truncated.previous,
        Some(Previous {
            fingerprint: Fingerprint {
                bytes: 256,
                crc: 3_405_691_582
            },
            acked_position: 81_549,
            file_id: "0123456789abcdef0123456789abcdef".parse().unwrap(),
            before: None,
        })
    );
    assert!(entries.values().all(|e| e.before.is_none()));
    let (_, v3) = vector("registry-v3");
    let mut upgraded = decode(&v3, &path, || panic!("version 3 names every id")).unwrap();
    for entry in upgraded.values_mut() {
        entry.before = None;
        if let Some(previous) = entry.previous.as_mut() {
            assert!(
                previous.before.is_some(),
                "version 3 keeps the bytes before a previous position"
            );
            previous.before = None;
        }
    }
    assert_eq!(upgraded, entries, "version 3 is version 2 plus <before>");
}

#[test]
fn a_version_3_registry_reads_and_writes_back_byte_for_byte() {
    let (path, text) = vector("registry-v3");
    let entries = decode(&text, &path, || panic!("version 3 names every id")).unwrap();
    let second = &entries[&FileKey {
        device: 64768,
        inode: 1312,
    }];
    assert_eq!(second.before, Some(Fingerprint { bytes: 40, crc: 12345 }));
    assert_eq!(encode(&entries), text);
}
