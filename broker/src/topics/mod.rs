//! The topics of a broker: which exist, their partitions' logs, creation,
//! deletion, and the periodic work on every partition (retention, interval
//! fsync). A topic's file under `<data_dir>/topics/` is the commit point of
//! its existence; see [`topic_file`].
//!
//! This layer knows logs and files, not the Kafka protocol, and not the
//! group offsets either: retention asks its caller for them
//! ([`retention::CommittedOffsets`]).
//!
//! # Layout
//! - this file: [`Topics`], opening, creating and deleting topics.
//! - [`retention`]: retention of every partition, protected groups' floors,
//!   the hard cap's deletions logged and counted.
//! - [`kafka_configs`]: CreateTopics' Kafka configs honoured, accepted or
//!   refused, never ignored.
//! - [`partition_pool`]: partitions opened and closed on several threads.
//! - [`names`], [`topic_file`].

pub mod kafka_configs;
pub mod names;
pub mod partition_pool;
pub mod retention;
pub mod topic_file;

use crate::config::{BrokerConfig, TopicSettings};
use crate::log::clean_checkpoint::{self, RecoveryCheckpoint, VerifiedSegment};
use crate::log::file_names::partition_dir;
use crate::log::{FaultInjector, LogConfig, LogError, PartitionLog};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use topic_file::TopicFile;

/// Most partitions one topic may have: each is a directory with open files
/// and mapped indexes (3 descriptors), so 10,000 partitions already needs
/// 30,000 descriptors.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("topic {0:?} already exists")]
    AlreadyExists(String),
    #[error("topic {0:?} does not exist")]
    Unknown(String),
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("invalid partition count {0}: must be 1..={PARTITIONS_PER_TOPIC_MAX}")]
    InvalidPartitions(i32),
    #[error("replication factor {0} is impossible on a single broker; use 1 or -1")]
    InvalidReplicationFactor(i16),
    #[error("invalid topic config: {0}")]
    InvalidConfig(String),
    #[error(transparent)]
    Log(#[from] LogError),
}

pub type Result<T, E = TopicError> = std::result::Result<T, E>;

/// One topic and its open partition logs.
pub struct Topic {
    pub name: String,
    pub id: uuid::Uuid,
    pub settings: TopicSettings,
    pub log_config: LogConfig,
    pub partitions: Vec<Arc<PartitionLog>>,
}

impl Topic {
    pub fn partition(&self, index: i32) -> Option<&Arc<PartitionLog>> {
        usize::try_from(index).ok().and_then(|i| self.partitions.get(i))
    }
}

pub struct Topics {
    data_dir: PathBuf,
    config: BrokerConfig,
    faults: FaultInjector,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises create and delete, which do slow file work outside `topics`.
    admin: parking_lot::Mutex<()>,
}

impl Topics {
    /// Opens every topic recorded under `<data_dir>/topics/`, recovering each
    /// partition (on several threads). Partition directories of no topic
    /// (left by an interrupted delete) are moved aside, never deleted.
    pub fn open(config: &BrokerConfig, faults: FaultInjector) -> Result<Self> {
        let data_dir = config.data_dir.clone();
        // Taken before any partition accepts a write: it says clean once.
        let checkpoint = clean_checkpoint::take(&data_dir)?;
        let files = topic_file::read_all(&data_dir)?;
        let mut topics = BTreeMap::new();
        for topic in open_topics(&data_dir, config, &faults, files, &checkpoint)? {
            topics.insert(topic.name.clone(), Arc::new(topic));
        }
        set_aside_orphans(&data_dir, &topics)?;
        Ok(Self {
            data_dir,
            config: config.clone(),
            faults,
            topics: RwLock::new(topics),
            admin: parking_lot::Mutex::new(()),
        })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Topic>> {
        self.topics.read().values().cloned().collect()
    }

    pub fn auto_create_enabled(&self) -> bool {
        self.config.auto_create_topics
    }

    /// Creates a topic. `partitions` -1 means the configured default;
    /// `kafka_configs` are Kafka topic configs (`retention.ms`, ...).
    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        kafka_configs: &[(String, String)],
        validate_only: bool,
    ) -> Result<Arc<Topic>> {
        names::validate(name).map_err(|reason| TopicError::InvalidName {
            name: name.into(),
            reason,
        })?;
        if !matches!(replication_factor, -1 | 1) {
            return Err(TopicError::InvalidReplicationFactor(replication_factor));
        }
        let settings = self.settings_of_new_topic(name, partitions, kafka_configs)?;
        let partitions = settings.partitions.expect("settings_of_new_topic sets the count");

        let _admin = self.admin.lock();
        if self.topics.read().contains_key(name) {
            return Err(TopicError::AlreadyExists(name.into()));
        }
        let file = TopicFile {
            name: name.into(),
            id: uuid::Uuid::new_v4(),
            settings,
        };
        if validate_only {
            return Ok(Arc::new(Topic {
                name: file.name,
                id: file.id,
                log_config: file.settings.apply(&self.config.log),
                settings: file.settings,
                partitions: Vec::new(),
            }));
        }
        for index in 0..partitions {
            let dir = partition_dir(&self.data_dir, name, index);
            if dir.exists() {
                set_aside(&dir)?;
            }
        }
        let checkpoint = RecoveryCheckpoint::default();
        let opened = open_topics(
            &self.data_dir,
            &self.config,
            &self.faults,
            vec![file.clone()],
            &checkpoint,
        )?;
        let topic = Arc::new(opened.into_iter().next().expect("one topic opened"));
        topic_file::write(&self.data_dir, &file)?;
        self.topics.write().insert(name.into(), Arc::clone(&topic));
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// The settings a new topic gets: the broker config's for its name, then
    /// the request's Kafka configs, then its partition count (-1: the
    /// default), all checked.
    fn settings_of_new_topic(
        &self,
        name: &str,
        partitions: i32,
        kafka_configs: &[(String, String)],
    ) -> Result<TopicSettings> {
        let configured = self.config.topics.get(name).cloned().unwrap_or_default();
        let mut requested = TopicSettings::default();
        for (key, value) in kafka_configs {
            kafka_configs::apply(&mut requested, key, value).map_err(TopicError::InvalidConfig)?;
        }
        if let Some(bytes) = requested
            .message_bytes_max
            .filter(|b| *b >= self.config.request_bytes_max)
        {
            return Err(TopicError::InvalidConfig(format!(
                "max.message.bytes = {bytes} must be less than this broker's request_bytes_max ({}): a batch that \
                 large could not arrive in a request",
                self.config.request_bytes_max
            )));
        }
        let mut settings = configured.merged_with(&requested);
        let partitions = match partitions {
            -1 => settings.partitions.unwrap_or(self.config.default_partitions),
            n => n,
        };
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partitions) {
            return Err(TopicError::InvalidPartitions(partitions));
        }
        settings.partitions = Some(partitions);
        settings
            .apply(&self.config.log)
            .validate()
            .map_err(TopicError::InvalidConfig)?;
        Ok(settings)
    }

    /// Deletes a topic: its file goes first (the commit point), then its data.
    pub fn delete(&self, name: &str) -> Result<()> {
        let _admin = self.admin.lock();
        let topic = self
            .topics
            .write()
            .remove(name)
            .ok_or_else(|| TopicError::Unknown(name.into()))?;
        topic_file::remove(&self.data_dir, name)?;
        for log in &topic.partitions {
            let _ = log.close();
            let dir = log.dir().to_path_buf();
            if let Err(error) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), %error, "could not remove a deleted topic's partition");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// fsyncs partitions whose policy is `interval` (idle ones included).
    /// The group offsets log, which this layer does not know, is fsynced by
    /// the same timer next to it (`broker::flush_interval_logs`).
    pub fn flush_interval_partitions(&self) {
        for topic in self.list() {
            if topic.log_config.fsync != crate::log::FsyncPolicy::Interval {
                continue;
            }
            for log in &topic.partitions {
                if let Err(error) = log.flush() {
                    tracing::error!(dir = %log.dir().display(), %error, "interval fsync failed");
                }
            }
        }
    }

    /// Closes every partition cleanly (flush, seal indexes) on several
    /// threads, then writes the one recovery checkpoint that says they are
    /// clean ([`clean_checkpoint`]).
    pub fn close_all(&self) {
        let logs: Vec<Arc<PartitionLog>> = self.list().iter().flat_map(|t| t.partitions.clone()).collect();
        let closed = partition_pool::run(&logs, |log| {
            log.close_for_checkpoint().unwrap_or_else(|error| {
                tracing::error!(dir = %log.dir().display(), %error, "closing partition failed");
                None
            })
        });
        let clean: Vec<(&Path, VerifiedSegment)> = logs
            .iter()
            .zip(closed)
            .filter_map(|(log, segment)| Some((log.dir(), segment?)))
            .collect();
        // Nothing closed now (a second call): keep the checkpoint written first.
        if clean.is_empty() {
            return;
        }
        if let Err(error) = clean_checkpoint::write(&self.data_dir, &clean) {
            tracing::error!(%error, "writing the recovery checkpoint failed; the next start recovers every partition");
        }
    }
}

/// Opens the topics of `files`, every partition of all of them on the
/// partition pool's threads.
fn open_topics(
    data_dir: &Path,
    config: &BrokerConfig,
    faults: &FaultInjector,
    files: Vec<TopicFile>,
    checkpoint: &RecoveryCheckpoint,
) -> Result<Vec<Topic>> {
    let mut jobs = Vec::new();
    let mut configs = Vec::with_capacity(files.len());
    for (slot, file) in files.iter().enumerate() {
        let settings = file.settings.with_protection_of(config.topics.get(&file.name));
        let log_config = settings.apply(&config.log);
        let partitions = file.settings.partitions.unwrap_or(config.default_partitions);
        jobs.extend((0..partitions).map(|index| (slot, partition_dir(data_dir, &file.name, index))));
        configs.push((settings, log_config));
    }
    let opened = partition_pool::run(&jobs, |(slot, dir)| {
        open_partition(dir, &configs[*slot].1, faults, checkpoint)
    });
    let mut logs: Vec<Vec<Arc<PartitionLog>>> = files.iter().map(|_| Vec::new()).collect();
    for ((slot, _), log) in jobs.iter().zip(opened) {
        logs[*slot].push(Arc::new(log?));
    }
    let topics = files.into_iter().zip(configs).zip(logs);
    Ok(topics
        .map(|((file, (settings, log_config)), partitions)| topic_of(file, settings, log_config, partitions))
        .collect())
}

/// Opens one partition, logging what its recovery found.
fn open_partition(
    dir: &Path,
    log_config: &LogConfig,
    faults: &FaultInjector,
    checkpoint: &RecoveryCheckpoint,
) -> Result<PartitionLog> {
    let told = checkpoint.partition(dir);
    let (log, summary) = PartitionLog::open_checkpointed(dir, log_config.clone(), faults.clone(), &told)?;
    if summary.segments_rescanned > 0 || summary.bytes_truncated > 0 || summary.batches_set_aside > 0 {
        tracing::info!(
            dir = %dir.display(),
            clean_shutdown = summary.clean_shutdown,
            segments = summary.segments,
            rescanned = summary.segments_rescanned,
            bytes_truncated = summary.bytes_truncated,
            batches_set_aside = summary.batches_set_aside,
            end_offset = log.end_offset(),
            "recovered partition"
        );
    }
    Ok(log)
}

fn topic_of(file: TopicFile, settings: TopicSettings, log_config: LogConfig, logs: Vec<Arc<PartitionLog>>) -> Topic {
    if !settings.protected_groups().is_empty() {
        tracing::info!(
            topic = %file.name,
            groups = %settings.protected_groups().join(", "),
            retention_bytes_hard = log_config.retention_hard_bytes_max().map_or(-1, |bytes| bytes as i64),
            "retention keeps what these groups have not read, up to retention_bytes_hard (-1: no cap)"
        );
    }
    Topic {
        name: file.name,
        id: file.id,
        log_config,
        settings,
        partitions: logs,
    }
}

/// Renames a directory that holds no topic's data to `<name>.orphaned-<time>`.
fn set_aside(dir: &Path) -> Result<()> {
    let now = relay_proto::clock::now_ms() / 1000;
    let target = PathBuf::from(format!("{}.orphaned-{now}", dir.display()));
    tracing::warn!(dir = %dir.display(), moved_to = %target.display(), "partition directory of no topic moved aside");
    // Durably: a move-aside lost in a crash would bring the old data back
    // under a new topic of the same name.
    Ok(crate::log::checkpoint::rename(dir, &target)?)
}

fn set_aside_orphans(data_dir: &Path, topics: &BTreeMap<String, Arc<Topic>>) -> Result<()> {
    let known: std::collections::HashSet<PathBuf> = topics
        .values()
        .flat_map(|t| t.partitions.iter().map(|p| p.dir().to_path_buf()))
        .collect();
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let looks_like_partition = name
            .rsplit_once('-')
            .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if path.is_dir() && looks_like_partition && !name.starts_with("__") && !known.contains(&path) {
            set_aside(&path)?;
        }
    }
    Ok(())
}
