//! Golden source header values in `proto-spec/vectors/source-headers/`
//! (`proto-spec/SOURCE_HEADERS.md`): `relay_source` version 1 with and
//! without a file id, and `rp` positions at the varint's edges. Each must
//! decode to the same fields and encode back byte for byte, so a record a
//! sender wrote keeps loading after any change here.
//!
//! Regenerate only after a deliberate format change (then add a version)
//! with `RELAY_REGENERATE_VECTORS=1 cargo test -p relay-proto --test source_header_vectors`.

use relay_proto::registry::FileId;
use relay_proto::source_headers::{decode_position, decode_source, encode_source, put_position, Source};
use std::path::PathBuf;

const FILE_ID: FileId = FileId(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834);

fn vector(name: &str, fresh: &[u8]) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("vectors/source-headers")
        .join(name);
    if std::env::var_os("RELAY_REGENERATE_VECTORS").is_some() {
        std::fs::write(&path, fresh).unwrap();
    }
    let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(stored, fresh, "{name} differs from a fresh encoding");
    stored
}

#[test]
fn a_version_1_source_with_a_file_id_reads_back_exactly() {
    let source = Source {
        host: b"web-1",
        file: b"/var/log/app.jsonl",
        file_id: Some(FILE_ID),
    };
    let stored = vector("relay_source-v1.bin", &encode_source(&source));
    assert_eq!(decode_source(&stored), Ok(source));
    // The layout, byte by byte: version, then each field's length and bytes.
    let mut expected = vec![1, 5];
    expected.extend_from_slice(b"web-1");
    expected.push(18);
    expected.extend_from_slice(b"/var/log/app.jsonl");
    expected.push(16);
    expected.extend_from_slice(&[
        0x9e, 0x37, 0x79, 0xb9, 0x7f, 0x4a, 0x7c, 0x15, 0xf3, 0x9c, 0xc0, 0x60, 0x5c, 0xed, 0xc8, 0x34,
    ]);
    assert_eq!(stored, expected);
}

#[test]
fn a_version_1_source_without_a_file_id_and_a_long_path_reads_back_exactly() {
    let path = format!("/srv/{}/app.log", "d".repeat(150));
    let source = Source {
        host: b"h",
        file: path.as_bytes(),
        file_id: None,
    };
    let stored = vector("relay_source-v1-no-file-id.bin", &encode_source(&source));
    assert_eq!(decode_source(&stored), Ok(source));
    // A path of 163 bytes takes a two-byte length: 0xa3 0x01.
    assert_eq!(&stored[..5], &[1, 1, b'h', 0xa3, 0x01]);
    assert_eq!(stored.last(), Some(&0), "no file id: length 0");
}

#[test]
fn positions_read_back_exactly() {
    for (name, position, bytes) in [
        ("rp-0.bin", 0u64, vec![0x00]),
        ("rp-300.bin", 300, vec![0xac, 0x02]),
        ("rp-212000000.bin", 212_000_000, vec![0x80, 0xba, 0x8b, 0x65]),
        (
            "rp-max.bin",
            u64::MAX,
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
    ] {
        let mut fresh = Vec::new();
        put_position(&mut fresh, position);
        let stored = vector(name, &fresh);
        assert_eq!(stored, bytes, "{name}");
        assert_eq!(decode_position(&stored), Ok(position), "{name}");
    }
}
