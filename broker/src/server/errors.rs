//! Storage and topic errors as the Kafka error codes clients act on.

use crate::log::LogError;
use crate::topics::TopicError;
use kafka_protocol::error::ResponseError;
use relay_proto::BatchError;

pub fn log_error_code(error: &LogError) -> ResponseError {
    match error {
        LogError::InvalidBatch {
            source: BatchError::UnsupportedMagic { .. },
            ..
        } => ResponseError::UnsupportedForMessageFormat,
        LogError::InvalidBatch { .. } => ResponseError::CorruptMessage,
        LogError::MultipleIdempotentBatches { .. } | LogError::EmptyRecordSet => ResponseError::InvalidRecord,
        LogError::BatchTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::ProducerFenced { .. } => ResponseError::InvalidProducerEpoch,
        LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        LogError::UnknownProducerId { .. } => ResponseError::UnknownProducerId,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::Config(_) => ResponseError::InvalidConfig,
        LogError::Io { .. } | LogError::Poisoned { .. } | LogError::Corrupt { .. } | LogError::Closed { .. } => {
            ResponseError::KafkaStorageError
        }
    }
}

pub fn topic_error_code(error: &TopicError) -> ResponseError {
    match error {
        TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
        TopicError::Unknown(_) => ResponseError::UnknownTopicOrPartition,
        TopicError::InvalidName { .. } => ResponseError::InvalidTopicException,
        TopicError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        TopicError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        TopicError::InvalidConfig(_) => ResponseError::InvalidConfig,
        TopicError::Log(error) => log_error_code(error),
    }
}

/// Error code of an optional error (0 for none).
pub fn code(error: Option<ResponseError>) -> i16 {
    error.map_or(0, |e| e.code())
}
