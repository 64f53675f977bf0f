//! `LogError`, the one error type of the storage layer. Operating conditions
//! (I/O failures, corrupt bytes, bad input, producer fencing) are values here;
//! programmer errors are assertions.

use relay_proto::BatchError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("batch at byte {position} of the record set is invalid: {source}")]
    InvalidBatch {
        position: usize,
        #[source]
        source: BatchError,
    },

    #[error("an idempotent produce must carry exactly one batch per partition; got {batch_count}")]
    MultipleIdempotentBatches { batch_count: usize },

    #[error("record set is empty")]
    EmptyRecordSet,

    #[error(
        "batch of {batch_bytes} bytes is larger than message_bytes_max = {message_bytes_max}; send smaller batches \
         or raise the topic's message_bytes_max (Kafka: max.message.bytes)"
    )]
    BatchTooLarge {
        batch_bytes: usize,
        message_bytes_max: usize,
    },

    #[error("partition {dir} refuses writes after a failed fsync ({reason}); restart the broker to recover it")]
    Poisoned { dir: PathBuf, reason: String },

    #[error("partition {dir} is closed")]
    Closed { dir: PathBuf },

    #[error("producer {producer_id} epoch {epoch} is fenced by epoch {current_epoch}")]
    ProducerFenced {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },

    #[error("producer {producer_id} sent sequence {received}; expected {expected}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        received: i32,
    },

    #[error("producer {producer_id} is unknown to this partition and sent sequence {sequence} (not 0)")]
    UnknownProducerId { producer_id: i64, sequence: i32 },

    #[error("offset {offset} is outside the log [{log_start_offset}, {high_watermark}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        high_watermark: i64,
    },

    #[error("corrupt data in {path} at byte {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },

    #[error("log configuration: {0}")]
    Config(String),
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// Builds the `map_err` closure for an I/O error on `path`.
/// The path is copied only when an error happens, so the hot path does not allocate.
pub(crate) fn io_error<'a>(
    operation: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> LogError + 'a {
    move |source| LogError::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}
