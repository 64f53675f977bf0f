//! Crash recovery over a segment file of valid batches followed by
//! arbitrary bytes (a torn or corrupted tail).

use relay_broker::log::file_names::log_file;
use relay_broker::log::{FaultInjector, FsyncPolicy, LogConfig, PartitionLog};
use relay_proto::batch::patch_base_offset;
use relay_proto::{BatchBuilder, RecordBatches, RecordSpec};

/// The first byte sets how many valid batches (0..8) start the file, the
/// second their record count (1..=5); the rest is appended as it is.
pub fn recovery_scan(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let batches = usize::from(data[0] % 8);
    let records = usize::from(data[1] % 5) + 1;
    let mut file = Vec::new();
    let mut offset = 0i64;
    for index in 0..batches {
        let mut builder = BatchBuilder::new(1_767_225_600_000 + index as i64);
        for record in 0..records {
            builder.push(RecordSpec::value(format!("batch {index} record {record}").into_bytes()));
        }
        let mut batch = builder.build();
        patch_base_offset(&mut batch, offset);
        offset += records as i64;
        file.extend_from_slice(&batch);
    }
    let valid_bytes = file.len();
    file.extend_from_slice(&data[2..]);

    // tmpfs when there is one: the target writes a file per input.
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = tempfile::tempdir_in(base).expect("temporary directory");
    std::fs::write(log_file(dir.path(), 0), &file).expect("write segment");
    let config = LogConfig {
        segment_bytes: 16 * 1024 * 1024,
        fsync: FsyncPolicy::Never,
        ..LogConfig::default()
    };
    let (log, _) =
        PartitionLog::open(dir.path(), config, FaultInjector::default()).expect("recovery never fails on bad bytes");
    assert!(
        log.high_watermark() >= offset,
        "recovery dropped valid batches: end {} < {offset}",
        log.high_watermark()
    );
    // Everything readable is whole, CRC-valid batches with contiguous offsets,
    // starting with exactly the valid prefix.
    let mut next = 0i64;
    let mut read_back = Vec::new();
    while next < log.high_watermark() {
        let read = log.read(next, 1 << 20).expect("reading a recovered log");
        assert!(!read.bytes.is_empty(), "no data below the high watermark at {next}");
        for batch in RecordBatches::new(&read.bytes) {
            let (_, header, whole) = batch.expect("recovered batches pass their CRC");
            assert_eq!(header.base_offset(), next, "offsets are contiguous");
            next = header.last_offset() + 1;
            read_back.extend_from_slice(whole);
        }
    }
    assert_eq!(
        &read_back[..valid_bytes],
        &file[..valid_bytes],
        "the valid prefix is kept byte for byte"
    );
    let _ = log.close();
}
