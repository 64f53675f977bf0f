//! Consumer groups: the coordinator's membership protocol (join, sync,
//! heartbeat, leave, session and rebalance timeouts) and the durable store of
//! committed offsets and group metadata.
//!
//! # Layout
//! - [`coordinator`]: every group behind one lock, the async entry points, the
//!   ticker (Kafka's `GroupCoordinator`).
//! - [`state`]: one group's state machine, with client-side assignment passed
//!   through unchanged.
//! - [`join`]: what one JoinGroup does to a group (new, known, pending and
//!   static members).
//! - [`static_member`]: static membership (KIP-345): instance ids, fencing.
//! - [`delete`]: DeleteGroups: an empty group and its offsets, durably.
//! - [`offset_store`]: durable offsets and membership in an internal log.
//! - [`records`]: the byte layout of that log's records.

pub mod coordinator;
pub mod delete;
pub mod join;
pub mod offset_store;
pub mod records;
pub mod state;
pub mod static_member;
