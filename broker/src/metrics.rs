//! The broker's Prometheus metrics, the top half: gauges that describe state
//! (offsets, lag, segments, bytes on disk) are computed from that state when
//! scraped, by [`publish_state_gauges`], so they can never drift from it.
//! Every name, label and unit, and the helpers that record counters and
//! latency histograms where the work happens, are [`crate::metric_names`]'s
//! (re-exported here), below every layer that records.
//! `docs/operations.md` explains what to watch and alert on.

use crate::context::BrokerContext;
pub use crate::metric_names::*;
use metrics::{counter, gauge};
use relay_proto::clock::now_ms;

/// Sets the state gauges from the topics and the group offsets: called just
/// before every scrape.
pub fn publish_state_gauges(ctx: &BrokerContext) {
    gauge!(CONNECTIONS).set(connections_open() as f64);
    let in_use = ctx.config.requests_memory_bytes_max - ctx.request_memory.available_permits();
    gauge!(REQUEST_MEMORY_IN_USE).set(in_use as f64);
    ctx.security.authorizer.publish_zero_counts();
    let mut end_offsets = std::collections::HashMap::new();
    let store = ctx.coordinator.store();
    let now = now_ms();
    for topic in ctx.topics.list() {
        let protected = !topic.settings.protected_groups().is_empty();
        if let (true, Some(hard)) = (protected, topic.log_config.retention_hard_bytes_max()) {
            gauge!(RETENTION_HARD_LIMIT_BYTES, "topic" => topic.name.clone()).set(hard as f64);
        }
        // Counted only when it happens, but shown from the start: an alert on
        // its increase needs the series before the first event.
        for group in topic.settings.protected_groups() {
            counter!(RETENTION_PROTECTED_DELETED_RECORDS, "topic" => topic.name.clone(), "group" => group.clone())
                .increment(0);
        }
        for (index, log) in topic.partitions.iter().enumerate() {
            let labels = [("topic", topic.name.clone()), ("partition", index.to_string())];
            let end = log.high_watermark();
            end_offsets.insert((topic.name.clone(), index as i32), end);
            gauge!(LOG_START_OFFSET, &labels).set(log.log_start_offset() as f64);
            gauge!(LOG_END_OFFSET, &labels).set(end as f64);
            gauge!(LOG_SEGMENTS, &labels).set(log.segment_count() as f64);
            gauge!(LOG_SIZE_BYTES, &labels).set(log.size_bytes() as f64);
            gauge!(PARTITION_POISONED, &labels).set(if log.is_poisoned() { 1.0 } else { 0.0 });
            // Kept by the log (recovery counts before any recorder could), shown from zero.
            counter!(CORRUPT_BATCHES, &labels).absolute(log.corrupt_batches());
            if protected {
                let floor = topic.retention_floor(index as i32, store.as_ref());
                gauge!(RETENTION_PROTECTED_BYTES, &labels).set(log.retention_protected_bytes(now, floor) as f64);
            }
        }
    }
    for (group, _, _) in ctx.coordinator.list() {
        let members = ctx.coordinator.describe(&group).members.len();
        gauge!(GROUP_MEMBERS, "group" => group.clone()).set(members as f64);
        for (topic, partition, committed) in store.group_offsets(&group) {
            let Some(end) = end_offsets.get(&(topic.clone(), partition)) else {
                continue;
            };
            let labels = [
                ("group", group.clone()),
                ("topic", topic),
                ("partition", partition.to_string()),
            ];
            gauge!(GROUP_COMMITTED_OFFSET, &labels).set(committed.offset as f64);
            gauge!(GROUP_LAG, &labels).set((end - committed.offset).max(0) as f64);
            let age_ms = (now - committed.commit_timestamp_ms).max(0);
            gauge!(GROUP_COMMIT_AGE, &labels).set(age_ms as f64 / 1000.0);
        }
    }
}
