//! Errors of the format layer: a batch that fails validation becomes a value,
//! never a panic. "Need more bytes" is not an error: parsers return `Ok(None)`.

/// Why a run of bytes is not a valid record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("record batch has magic {magic}; only magic 2 (record batch v2) is supported")]
    UnsupportedMagic { magic: i8 },

    #[error("record batch length field is {batch_length}; it must be between {min} and {max}")]
    InvalidLength { batch_length: i32, min: i32, max: i32 },

    #[error("record batch CRC-32C mismatch: header says {stored:#010x}, bytes give {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },

    #[error("record batch has {record_count} records but last offset delta {last_offset_delta}; expected count - 1")]
    InconsistentCount { record_count: i32, last_offset_delta: i32 },

    #[error("record batch uses unknown compression codec {codec}")]
    UnknownCompression { codec: u8 },

    #[error("record set ends with {trailing_bytes} bytes that are not a whole batch")]
    TrailingBytes { trailing_bytes: usize },

    #[error("record {index} of the batch is malformed at byte {position}")]
    MalformedRecord { index: usize, position: usize },
}

pub type Result<T, E = BatchError> = std::result::Result<T, E>;
