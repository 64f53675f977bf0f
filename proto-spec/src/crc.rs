//! CRC-32C (Castagnoli) as Kafka uses it in record batch v2.
//!
//! The checksum covers the batch from the attributes field (byte 21) to the end
//! of the batch. The base offset, length, partition leader epoch and magic lie
//! before it, which is why a broker can patch the base offset without
//! recomputing the CRC. See `proto-spec/STORAGE.md`, "Record batch v2".
//! This module owns where the CRC field sits and what it covers; the batch
//! header view (`batch.rs`) builds on it, never the other way round.

/// Position of the CRC field.
pub const CRC_POSITION: usize = 17;
/// First byte covered by the CRC (the attributes field).
pub const CRC_COVERED_START: usize = 21;

const _: () = assert!(CRC_COVERED_START == CRC_POSITION + 4);

/// CRC-32C of `bytes`, hardware accelerated where the CPU has it.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// The CRC a whole batch (`batch` starts at its base offset) should carry.
///
/// # Panics
/// If `batch` is shorter than the header: callers check lengths first.
pub fn batch_crc(batch: &[u8]) -> u32 {
    assert!(batch.len() >= CRC_COVERED_START, "batch shorter than its header");
    crc32c(&batch[CRC_COVERED_START..])
}

/// Writes the correct CRC into a batch whose covered bytes are final.
pub fn seal_batch_crc(batch: &mut [u8]) {
    let crc = batch_crc(batch);
    batch[CRC_POSITION..CRC_POSITION + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_rfc3720_check_value() {
        // RFC 3720 B.4: 32 bytes of zeros give 0x8a9136aa.
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }
}
