//! Record batch v2 validation over arbitrary bytes.

use relay_proto::records::RecordIter;
use relay_proto::{BatchHeader, Compression, RecordBatches};

pub fn record_batch(data: &[u8]) {
    // The header view alone never panics, whatever it is given.
    if let Ok(Some(header)) = BatchHeader::parse(data) {
        assert_eq!(header.record_count(), header.last_offset_delta() + 1);
        assert!(header.record_count() >= 1);
        let _ = header.total_bytes();
    }
    let mut end = 0;
    for item in RecordBatches::new(data) {
        let Ok((position, header, whole)) = item else { break };
        assert_eq!(position, end, "batches are contiguous");
        assert_eq!(whole.len(), header.total_bytes());
        assert!(header.check_crc(whole).is_ok(), "a batch accepted whole passes its CRC");
        assert!(position + whole.len() <= data.len());
        end = position + whole.len();
        if header.compression() == Compression::None {
            let count = header.record_count() as usize;
            let mut seen = 0;
            for record in RecordIter::of_uncompressed_batch(whole, count) {
                let Ok(record) = record else { break };
                for (key, value) in record.headers() {
                    assert!(key.len() + value.map_or(0, <[u8]>::len) <= whole.len());
                }
                seen += 1;
                assert!(seen <= count, "no more records than the header says");
            }
        }
    }
}
