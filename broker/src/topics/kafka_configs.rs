//! Kafka topic configs, as CreateTopics carries them, mapped onto Relay's
//! per-topic settings. Each config is honoured (it changes a stored setting,
//! so it takes effect and survives a restart), accepted because what it asks
//! is already true of this broker (one replica, batches kept as the producer
//! compressed them, no compaction ever), or refused with a message naming
//! the config and why. None is accepted and ignored.
//!
//! The table of every config and its outcome, for clients, is
//! `proto-spec/PROTOCOL.md` ("CreateTopics configs"); keep the two in step.

use crate::config::TopicSettings;
use crate::log::config::{MESSAGE_BYTES_MAX_HIGHEST, MESSAGE_BYTES_MAX_LOWEST, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN};
use crate::log::FsyncPolicy;
use std::str::FromStr;

/// Applies one Kafka topic config to `settings`; the error names the config
/// and says why it is refused.
pub fn apply(settings: &mut TopicSettings, key: &str, value: &str) -> Result<(), String> {
    if apply_stored(settings, key, value)? || accepts_as_already_true(key, value)? {
        return Ok(());
    }
    Err(format!(
        "unknown topic config {key}: Relay stores retention.ms, retention.bytes, segment.bytes, segment.ms, \
         max.message.bytes, index.interval.bytes and flush.messages=1 (see PROTOCOL.md, CreateTopics)"
    ))
}

/// The configs that change a stored setting; false when `key` is not one.
fn apply_stored(settings: &mut TopicSettings, key: &str, value: &str) -> Result<bool, String> {
    match key {
        "retention.ms" => settings.retention_ms = Some(at_least(key, value, -1)?),
        "retention.bytes" => settings.retention_bytes = Some(at_least(key, value, -1)?),
        "segment.bytes" => settings.segment_bytes = Some(within(key, value, SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX)?),
        "segment.ms" => settings.segment_ms = Some(at_least(key, value, 1)?),
        "max.message.bytes" => {
            let bytes = within(
                key,
                value,
                MESSAGE_BYTES_MAX_LOWEST as u64,
                MESSAGE_BYTES_MAX_HIGHEST as u64,
            )?;
            settings.message_bytes_max = Some(bytes as usize);
        }
        "index.interval.bytes" => settings.index_interval_bytes = Some(at_least(key, value, 1)?),
        "flush.messages" if value.trim() == "1" => settings.fsync = Some(FsyncPolicy::Always),
        "flush.messages" => {
            return Err(format!(
                "flush.messages = {value:?} is not supported: Relay fsyncs per topic \"always\" (flush.messages=1), \
                 \"interval\" or \"never\" (broker.topics.<name>.fsync in the broker's config)"
            ))
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The configs whose value this broker already satisfies; false when `key`
/// is not one, an error when the value asks for what it cannot do.
fn accepts_as_already_true(key: &str, value: &str) -> Result<bool, String> {
    let value = value.trim();
    let refused = |why: &str| Err(format!("{key} = {value:?} is not supported: {why}"));
    match key {
        "cleanup.policy" if value == "delete" => {}
        "cleanup.policy" => return refused("Relay never compacts; only \"delete\" (retention by time and size)"),
        "min.insync.replicas" if value == "1" => {}
        "min.insync.replicas" => return refused("this broker keeps one replica of each partition; only 1"),
        "unclean.leader.election.enable" => {
            boolean(key, value)?;
        }
        "compression.type" if value == "producer" => {}
        "compression.type" => {
            return refused(
                "Relay stores batches as the producer compressed them and never recompresses; \
                            only \"producer\" (set the codec on the producer)",
            )
        }
        "message.timestamp.type" if value == "CreateTime" => {}
        "message.timestamp.type" => return refused("Relay keeps the producer's timestamps; only \"CreateTime\""),
        "delete.retention.ms" | "min.compaction.lag.ms" | "max.compaction.lag.ms" => {
            at_least::<i64>(key, value, 0)?;
        }
        "min.cleanable.dirty.ratio" => {
            let ratio: f64 = parsed(key, value)?;
            if !(0.0..=1.0).contains(&ratio) {
                return refused("it is a ratio between 0 and 1");
            }
        }
        "segment.jitter.ms" if value == "0" => {}
        "segment.jitter.ms" => return refused("Relay rolls segments without jitter; only 0"),
        "preallocate" | "remote.storage.enable" if !boolean(key, value)? => {}
        "preallocate" => return refused("Relay does not preallocate segment files; only false"),
        "remote.storage.enable" => return refused("Relay has no tiered storage; only false"),
        _ => return Ok(false),
    }
    Ok(true)
}

fn parsed<T: FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{key} = {value:?} is not a valid {}", std::any::type_name::<T>()))
}

/// A number no smaller than `lowest`.
fn at_least<T: FromStr + TryFrom<i64> + PartialOrd>(key: &str, value: &str, lowest: i64) -> Result<T, String> {
    let number: i64 = parsed(key, value)?;
    if number < lowest {
        return Err(format!("{key} = {value:?} is below its least value {lowest}"));
    }
    T::try_from(number).map_err(|_| format!("{key} = {value:?} is too large"))
}

/// A number in `lowest..=highest`.
fn within(key: &str, value: &str, lowest: u64, highest: u64) -> Result<u64, String> {
    let number: i64 = parsed(key, value)?;
    match u64::try_from(number) {
        Ok(number) if (lowest..=highest).contains(&number) => Ok(number),
        _ => Err(format!("{key} = {value:?} is outside {lowest}..={highest}")),
    }
}

fn boolean(key: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{key} = {value:?} is neither true nor false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(configs: &[(&str, &str)]) -> Result<TopicSettings, String> {
        let mut settings = TopicSettings::default();
        for (key, value) in configs {
            apply(&mut settings, key, value)?;
        }
        Ok(settings)
    }

    #[test]
    fn honoured_configs_change_the_stored_settings() {
        let settings = applied(&[
            ("retention.ms", "3600000"),
            ("retention.bytes", "-1"),
            ("segment.bytes", "1048576"),
            ("segment.ms", "60000"),
            ("max.message.bytes", "2097152"),
            ("index.interval.bytes", "1024"),
            ("flush.messages", "1"),
        ])
        .unwrap();
        assert_eq!(settings.retention_ms, Some(3_600_000));
        assert_eq!(settings.retention_bytes, Some(-1));
        assert_eq!(settings.segment_bytes, Some(1_048_576));
        assert_eq!(settings.segment_ms, Some(60_000));
        assert_eq!(settings.message_bytes_max, Some(2_097_152));
        assert_eq!(settings.index_interval_bytes, Some(1024));
        assert_eq!(settings.fsync, Some(FsyncPolicy::Always));
    }

    #[test]
    fn configs_already_true_here_change_nothing() {
        let settings = applied(&[
            ("cleanup.policy", "delete"),
            ("min.insync.replicas", "1"),
            ("unclean.leader.election.enable", "false"),
            ("compression.type", "producer"),
            ("message.timestamp.type", "CreateTime"),
            ("delete.retention.ms", "900"),
            ("min.cleanable.dirty.ratio", "0.5"),
            ("segment.jitter.ms", "0"),
            ("preallocate", "false"),
            ("remote.storage.enable", "false"),
        ])
        .unwrap();
        assert_eq!(settings, TopicSettings::default());
    }

    #[test]
    fn refusals_name_the_config_and_why() {
        for (key, value, why) in [
            ("cleanup.policy", "compact", "never compacts"),
            ("cleanup.policy", "compact,delete", "never compacts"),
            ("min.insync.replicas", "2", "one replica"),
            ("compression.type", "lz4", "never recompresses"),
            ("message.timestamp.type", "LogAppendTime", "producer's timestamps"),
            ("flush.messages", "1000", "fsync"),
            ("segment.jitter.ms", "100", "without jitter"),
            ("remote.storage.enable", "true", "tiered storage"),
            ("retention.ms", "-2", "least value -1"),
            ("segment.bytes", "big", "not a valid"),
            ("segment.bytes", "14", "outside 128..="),
            ("max.message.bytes", "0", "outside 128..="),
            ("segment.ms", "0", "least value 1"),
            ("min.cleanable.dirty.ratio", "2", "ratio"),
            ("unclean.leader.election.enable", "maybe", "neither true nor false"),
            ("dummy.doesntexist", "x", "unknown topic config"),
        ] {
            let error = applied(&[(key, value)]).unwrap_err();
            assert!(error.contains(key), "{key}: {error}");
            assert!(error.contains(why), "{key} = {value}: {error}");
        }
    }
}
