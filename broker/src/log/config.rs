//! Settings of one partition log: segment rolling, index spacing, retention
//! and the durability policy. Read from the `[broker]` section (defaults) and
//! per-topic overrides; every field has a default that matches Kafka's unless
//! Relay's promise needs otherwise (fsync on every ack).

use serde::{Deserialize, Serialize};

/// Largest allowed segment: positions in the offset index are u32 and Kafka
/// caps `segment.bytes` at i32::MAX, so a segment never grows past 2 GiB - 1.
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;
/// Smallest allowed segment: one maximal batch header plus a little data; tests
/// use tiny segments to force rolls.
pub const SEGMENT_BYTES_MIN: u64 = 128;
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
    /// Roll to a new segment when the active one would exceed this size.
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
    pub fsync: FsyncPolicy,
    /// Period of the `interval` policy.
    pub fsync_interval_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            index_bytes_max: INDEX_BYTES_MAX,
            retention_bytes: -1,
            retention_ms: 7 * 24 * 3600 * 1000,
            fsync: FsyncPolicy::Always,
            fsync_interval_ms: 1000,
        }
    }
}

impl LogConfig {
    /// Checks relations between the settings; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
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
        if self.fsync == FsyncPolicy::Interval && self.fsync_interval_ms == 0 {
            return Err("fsync_interval_ms must be at least 1 with fsync = \"interval\"".into());
        }
        Ok(())
    }
}
