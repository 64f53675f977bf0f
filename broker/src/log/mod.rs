//! The storage engine: a partition is a directory of segments holding Kafka
//! record batches (magic 2) exactly as producers sent them, with the base
//! offset patched in. It validates every batch (header and CRC-32C) on append
//! and on read, and survives crashes by rescanning. A batch that fails its
//! CRC, at recovery or at read time, costs only itself: it is set aside in a
//! quarantine file and its offsets are a gap that consumers fetch past.
//!
//! Appends and reads pass batches through compressed. The one place the log
//! decompresses is a lookup by time (ListOffsets with a timestamp) that lands
//! in a compressed batch: the segment decodes that one batch to find the
//! exact record, as Kafka does (see [`segment`]'s lookups).
//!
//! # Layout (following Kafka's cut)
//! - [`partition_log`]: [`PartitionLog`], offsets, rolling, reads, durability
//!   (group commit, poisoning), retention, clean close.
//! - [`segment`]: one `.log` file with its indexes: append, find, recover, seal.
//! - [`offset_index`], [`time_index`] on [`segment_index`] (what they share)
//!   on [`mapped_index`]: sparse, preallocated, memory-mapped indexes, rebuilt
//!   when they cannot be trusted.
//! - [`recovery`]: opening a directory and deciding what to rescan.
//! - [`checkpoint`]: the recovery point and the clean-shutdown marker.
//! - [`clean_checkpoint`]: the data directory's one recovery checkpoint,
//!   written by a clean stop for every partition at once.
//! - [`quarantine`]: corrupt batches set aside whole, named by their offsets.
//! - [`producer_state`]: idempotent-producer sequences, rebuilt from headers.
//! - [`file_names`], [`config`], [`error`], [`faults`] (injected I/O failures).
//!
//! Byte layouts: `proto-spec/STORAGE.md`. This module never touches the network.

pub mod checkpoint;
pub mod clean_checkpoint;
pub mod config;
pub mod error;
pub mod faults;
pub mod file_names;
pub mod mapped_index;
pub mod offset_index;
pub mod partition_log;
pub mod producer_state;
pub mod quarantine;
pub mod recovery;
pub mod segment;
pub mod segment_index;
pub mod time_index;

pub use config::{FsyncPolicy, LogConfig};
pub use error::{LogError, Result};
pub use faults::FaultInjector;
pub use partition_log::{AppendInfo, PartitionLog, ReadResult, RetentionFloor, RetentionOutcome};
pub use recovery::LoadSummary;
