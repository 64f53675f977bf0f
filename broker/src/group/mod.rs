//! Consumer groups: the coordinator's membership protocol (join, sync,
//! heartbeat, leave, session and rebalance timeouts) and the durable store of
//! committed offsets and group metadata.
//!
//! # Layout
//! - [`coordinator`]: the group state machine, as Kafka's `GroupCoordinator`
//!   with client-side assignment passed through unchanged.
//! - [`offset_store`]: durable offsets and membership in an internal log.
//! - [`records`]: the byte layout of that log's records.

pub mod coordinator;
pub mod group;
pub mod offset_store;
pub mod records;
