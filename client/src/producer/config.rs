//! The producer's settings ([`ProducerConfig`]) and the codec names the
//! command line accepts. Plain data: nothing here talks to a broker.

use bytes::Bytes;
use kafka_protocol::records::Compression;
use std::time::Duration;

/// Apache Kafka's default `message.max.bytes`: 1 MiB (1,048,576) of record
/// batch plus the 12 bytes of log overhead (base offset and length) in front
/// of it, the largest batch a default broker (Relay's included) accepts.
pub const KAFKA_MESSAGE_BYTES_MAX_DEFAULT: usize = 1_048_588;

/// Default [`ProducerConfig::batch_bytes_max`]: 1,000,000 bytes, 48,588
/// (4.6 %) under [`KAFKA_MESSAGE_BYTES_MAX_DEFAULT`], so every batch this
/// producer closes fits a broker with Kafka's defaults. The cap counts the
/// whole encoded batch (the 12 bytes of log overhead, the rest of the 61-byte
/// header, every record's framing), so nothing is added on top of it: the
/// margin is only a round number's, and room for a broker set a little
/// below Kafka's default.
pub const BATCH_BYTES_MAX_DEFAULT: usize = 1_000_000;
const _: () = assert!(BATCH_BYTES_MAX_DEFAULT < KAFKA_MESSAGE_BYTES_MAX_DEFAULT);

#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub linger: Duration,
    /// Largest encoded batch, header and record framing included (Kafka's
    /// `batch.size`, here a hard cap): a record that would take a batch past
    /// it closes the batch and starts the next; a record larger on its own
    /// is sent alone. Keep it at most the broker's `message_bytes_max`
    /// (Kafka's `max.message.bytes`); a batch the broker still refuses as too
    /// large is split in two and sent again.
    pub batch_bytes_max: usize,
    pub compression: Compression,
    pub idempotent: bool,
    /// -1 (all), 1 (leader) or 0 (no answer).
    pub acks: i16,
    pub in_flight_max: usize,
    /// Unacknowledged bytes held before `send` waits.
    pub buffer_bytes_max: usize,
    pub retry_backoff_max: Duration,
    /// Give up on a record after this long; `None` retries forever.
    pub delivery_timeout: Option<Duration>,
    /// Header keys written once per run of equal values in a batch: a record
    /// whose previous record in the same batch carried the same value of
    /// such a header goes without it (`producer/sticky.rs` has the rule). A
    /// consumer that names the same keys in `ConsumerConfig` reads every
    /// record with its header; other consumers see it on the first record
    /// of each run only. Empty (the default): every header on every record.
    pub sticky_header_keys: Vec<Bytes>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            linger: Duration::from_millis(5),
            batch_bytes_max: BATCH_BYTES_MAX_DEFAULT,
            compression: Compression::None,
            idempotent: true,
            acks: -1,
            in_flight_max: 5,
            buffer_bytes_max: 32 * 1024 * 1024,
            retry_backoff_max: Duration::from_secs(5),
            delivery_timeout: None,
            sticky_header_keys: Vec::new(),
        }
    }
}

/// A codec by its command-line name: none, gzip, snappy, lz4 or zstd.
pub fn parse_compression(name: &str) -> std::result::Result<Compression, String> {
    Ok(match name {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => {
            return Err(format!(
                "unknown compression {other:?}; use none, gzip, snappy, lz4 or zstd"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_name_parses_and_unknown_names_list_the_choices() {
        assert!(matches!(parse_compression("none"), Ok(Compression::None)));
        assert!(matches!(parse_compression("gzip"), Ok(Compression::Gzip)));
        assert!(matches!(parse_compression("snappy"), Ok(Compression::Snappy)));
        assert!(matches!(parse_compression("lz4"), Ok(Compression::Lz4)));
        assert!(matches!(parse_compression("zstd"), Ok(Compression::Zstd)));
        assert_eq!(
            parse_compression("brotli").unwrap_err(),
            "unknown compression \"brotli\"; use none, gzip, snappy, lz4 or zstd"
        );
    }
}
