//! Settings of one partition log: the largest batch it takes, segment
//! rolling, index spacing, retention and the durability policy. Read from the
//! `[broker]` section (defaults) and per-topic overrides; every field has a
//! default that matches Kafka's unless Relay's promise needs otherwise (fsync
//! on every ack).

use relay_proto::batch::BATCH_BYTES_MAX;
use serde::{Deserialize, Serialize};

/// Largest allowed segment: positions in the offset index are u32 and Kafka
/// caps `segment.bytes` at i32::MAX, so a segment never grows past 2 GiB - 1.
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;
/// Smallest allowed segment: one maximal batch header plus a little data; tests
/// use tiny segments to force rolls.
pub const SEGMENT_BYTES_MIN: u64 = 128;
/// Default largest batch (`message_bytes_max`): Apache Kafka's default
/// `message.max.bytes`, 1 MiB (1,048,576) of batch plus the 12 bytes of log
/// overhead (base offset and length) that Kafka counts in a batch's size, as
/// this limit does. Relay's producer caps its batches at 1,000,000 bytes so
/// they fit with room to spare.
pub const MESSAGE_BYTES_MAX_DEFAULT: usize = 1_048_588;
/// Lowest `message_bytes_max` accepted: a batch header (61 bytes) and one
/// small record; tests use tiny limits.
pub const MESSAGE_BYTES_MAX_LOWEST: usize = 128;
/// Highest `message_bytes_max` accepted: the largest batch the record-set
/// parser takes at all (100 MiB, the default request limit).
pub const MESSAGE_BYTES_MAX_HIGHEST: usize = BATCH_BYTES_MAX;
const _: () = assert!(MESSAGE_BYTES_MAX_LOWEST <= MESSAGE_BYTES_MAX_DEFAULT);
const _: () = assert!(MESSAGE_BYTES_MAX_DEFAULT <= MESSAGE_BYTES_MAX_HIGHEST);
// Even a batch of the highest limit, alone in a new segment, keeps positions
// inside the index's u32.
const _: () = assert!((MESSAGE_BYTES_MAX_HIGHEST as u64) <= SEGMENT_BYTES_MAX);
/// Default `retention_bytes_hard` as a multiple of `retention_bytes`. Read
/// data below the protected groups' floor is still deleted by plain retention,
/// so a partition holds about max(retention_bytes, unread bytes): a protected
/// loader may fall 4 x retention_bytes behind before it loses anything, where
/// without protection it could fall 1 x behind. With 1 GiB of retention and
/// 1 MiB/s produced, that is 68 minutes of outage instead of 17. The disk must
/// hold `retention_bytes_hard` per protected partition (plus the active
/// segment), which is why the cap is a small multiple and not unlimited.
pub const RETENTION_BYTES_HARD_PER_RETENTION_BYTES: i64 = 4;
/// Largest preallocated index file: 10 MiB as in Kafka (`segment.index.bytes`),
/// which holds 1,310,720 offset entries, i.e. one entry per 1,638 bytes of a
/// full 2 GiB segment: far denser than the 4 KiB default interval needs.
pub const INDEX_BYTES_MAX: u32 = 10 * 1024 * 1024;

/// When an append counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// An append returns only after an fsync that covers it; concurrent appends
    /// share one fsync (group commit). Readers see only fsynced data.
    Always,
    /// fsync at most every `fsync_interval_ms`; an acknowledged append may be
    /// lost in a machine crash (not in a process crash).
    Interval,
    /// Leave flushing to the operating system.
    Never,
}

/// Settings of one partition log.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Largest batch accepted, its 12 bytes of log overhead included (Kafka's
    /// `max.message.bytes`); a larger one is refused with MESSAGE_TOO_LARGE.
    pub message_bytes_max: usize,
    /// Roll to a new segment when the active one would exceed this size. A
    /// batch larger than this (up to `message_bytes_max`) gets a segment of
    /// its own.
    pub segment_bytes: u64,
    /// Roll to a new segment when the active one is older than this.
    pub segment_ms: u64,
    /// Bytes of log between two offset-index entries.
    pub index_interval_bytes: u32,
    /// Preallocated size of each index file.
    pub index_bytes_max: u32,
    /// Delete the oldest sealed segments while the log is larger; -1: no limit.
    pub retention_bytes: i64,
    /// Delete sealed segments whose newest record is older; -1: no limit.
    pub retention_ms: i64,
    /// Most bytes the log keeps for protected readers (the floor passed to
    /// [`crate::log::PartitionLog::enforce_retention`]): past it, segments
    /// that retention_bytes or retention_ms doom are deleted even if unread.
    /// -1: no cap; absent: [`RETENTION_BYTES_HARD_PER_RETENTION_BYTES`] x
    /// `retention_bytes` when that is set, else no cap.
    pub retention_bytes_hard: Option<i64>,
    pub fsync: FsyncPolicy,
    /// Period of the `interval` policy.
    pub fsync_interval_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            message_bytes_max: MESSAGE_BYTES_MAX_DEFAULT,
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            index_bytes_max: INDEX_BYTES_MAX,
            retention_bytes: -1,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes_hard: None,
            fsync: FsyncPolicy::Always,
            fsync_interval_ms: 1000,
        }
    }
}

impl LogConfig {
    /// The size past which retention deletes what protected readers have
    /// not read: `retention_bytes_hard`, or its default; `None`: no cap.
    pub fn retention_hard_bytes_max(&self) -> Option<u64> {
        let bytes = match self.retention_bytes_hard {
            Some(bytes) => bytes,
            None if self.retention_bytes >= 0 => self
                .retention_bytes
                .saturating_mul(RETENTION_BYTES_HARD_PER_RETENTION_BYTES),
            None => -1,
        };
        u64::try_from(bytes).ok()
    }

    /// Checks relations between the settings; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(MESSAGE_BYTES_MAX_LOWEST..=MESSAGE_BYTES_MAX_HIGHEST).contains(&self.message_bytes_max) {
            return Err(format!(
                "message_bytes_max = {} is outside {MESSAGE_BYTES_MAX_LOWEST}..={MESSAGE_BYTES_MAX_HIGHEST}",
                self.message_bytes_max
            ));
        }
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return Err(format!(
                "segment_bytes = {} is outside {SEGMENT_BYTES_MIN}..={SEGMENT_BYTES_MAX}",
                self.segment_bytes
            ));
        }
        if self.index_interval_bytes == 0 {
            return Err("index_interval_bytes must be at least 1".into());
        }
        if !(64..=INDEX_BYTES_MAX).contains(&self.index_bytes_max) {
            return Err(format!(
                "index_bytes_max = {} is outside 64..={INDEX_BYTES_MAX}",
                self.index_bytes_max
            ));
        }
        if self.segment_ms == 0 {
            return Err("segment_ms must be at least 1".into());
        }
        if self.retention_bytes < -1 || self.retention_ms < -1 {
            return Err("retention_bytes and retention_ms are -1 (no limit) or a size/age".into());
        }
        match self.retention_bytes_hard {
            Some(hard) if hard < -1 => {
                return Err(format!(
                    "retention_bytes_hard = {hard} is neither -1 (no cap) nor a size"
                ))
            }
            Some(hard) if hard >= 0 && self.retention_bytes >= 0 && hard < self.retention_bytes => {
                return Err(format!(
                    "retention_bytes_hard ({hard}) is below retention_bytes ({}): the cap on what protected \
                     groups keep cannot be less than what retention keeps anyway; raise it or leave it out \
                     (default {RETENTION_BYTES_HARD_PER_RETENTION_BYTES} x retention_bytes)",
                    self.retention_bytes
                ))
            }
            _ => {}
        }
        if self.fsync == FsyncPolicy::Interval && self.fsync_interval_ms == 0 {
            return Err("fsync_interval_ms must be at least 1 with fsync = \"interval\"".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_cap_defaults_to_four_times_retention_bytes_and_to_none_without_it() {
        let sized = LogConfig {
            retention_bytes: 4 * 1024 * 1024,
            ..LogConfig::default()
        };
        assert_eq!(sized.retention_hard_bytes_max(), Some(16 * 1024 * 1024));
        assert_eq!(LogConfig::default().retention_hard_bytes_max(), None);
        let unlimited = LogConfig {
            retention_bytes_hard: Some(-1),
            ..sized.clone()
        };
        assert_eq!(unlimited.retention_hard_bytes_max(), None);
        let explicit = LogConfig {
            retention_bytes_hard: Some(5_000_000),
            ..sized
        };
        assert_eq!(explicit.retention_hard_bytes_max(), Some(5_000_000));
        let huge = LogConfig {
            retention_bytes: i64::MAX / 2,
            ..LogConfig::default()
        };
        assert_eq!(huge.retention_hard_bytes_max(), Some(i64::MAX as u64), "saturates");
    }

    #[test]
    fn hard_cap_below_retention_bytes_is_refused_naming_both() {
        let config = LogConfig {
            retention_bytes: 65_536,
            retention_bytes_hard: Some(65_535),
            ..LogConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(
                "retention_bytes_hard (65535) is below retention_bytes (65536): the cap on what protected \
                 groups keep cannot be less than what retention keeps anyway; raise it or leave it out \
                 (default 4 x retention_bytes)"
                    .into()
            )
        );
        let config = LogConfig {
            retention_bytes_hard: Some(-2),
            ..LogConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err("retention_bytes_hard = -2 is neither -1 (no cap) nor a size".into())
        );
        let config = LogConfig {
            retention_bytes_hard: Some(65_536),
            ..LogConfig::default()
        };
        assert_eq!(
            config.validate(),
            Ok(()),
            "a cap without retention_bytes caps what retention_ms protects"
        );
    }
}
