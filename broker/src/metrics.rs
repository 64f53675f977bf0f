//! The broker's Prometheus metrics: every name, label and unit in one place.
//!
//! Counters and latency histograms are recorded where the work happens
//! (through the `metrics` facade, which costs nothing when no exporter is
//! installed). Gauges that describe state — offsets, lag, segments, bytes
//! on disk — are computed from that state when scraped, by
//! [`publish_state_gauges`], so they can never drift from it.
//! `docs/operations.md` explains what to watch and alert on.

use crate::context::BrokerContext;
use metrics::{counter, gauge, histogram};
use relay_proto::clock::now_ms;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

pub const RECORDS_IN: &str = "relay_broker_records_in_total";
pub const BYTES_IN: &str = "relay_broker_bytes_in_total";
pub const RECORDS_OUT: &str = "relay_broker_records_out_total";
pub const BYTES_OUT: &str = "relay_broker_bytes_out_total";
pub const PRODUCE_LATENCY: &str = "relay_broker_produce_latency_seconds";
pub const FETCH_LATENCY: &str = "relay_broker_fetch_latency_seconds";
pub use crate::log::partition_log::FSYNC_LATENCY_METRIC as FSYNC_LATENCY;
pub const REQUESTS: &str = "relay_broker_requests_total";
pub const REQUESTS_REJECTED: &str = "relay_broker_requests_rejected_total";
pub const AUTHENTICATIONS: &str = "relay_broker_authentications_total";
pub const AUTHORIZATION_DENIED: &str = "relay_broker_authorization_denied_total";
pub const PRODUCE_ERRORS: &str = "relay_broker_produce_errors_total";
pub const CONNECTIONS: &str = "relay_broker_connections";
pub const CONNECTIONS_ACCEPTED: &str = "relay_broker_connections_accepted_total";
pub const LOG_START_OFFSET: &str = "relay_broker_log_start_offset";
pub const LOG_END_OFFSET: &str = "relay_broker_log_end_offset";
pub const LOG_SEGMENTS: &str = "relay_broker_log_segments";
pub const LOG_SIZE_BYTES: &str = "relay_broker_log_size_bytes";
pub const PARTITION_POISONED: &str = "relay_broker_partition_poisoned";
pub const CORRUPT_BATCHES: &str = "relay_broker_corrupt_batches_total";
pub const GROUP_COMMITTED_OFFSET: &str = "relay_broker_group_committed_offset";
pub const GROUP_LAG: &str = "relay_broker_group_lag";
pub const GROUP_COMMIT_AGE: &str = "relay_broker_group_commit_age_seconds";
pub const GROUP_MEMBERS: &str = "relay_broker_group_members";
pub const REQUEST_MEMORY_IN_USE: &str = "relay_broker_request_memory_bytes";
pub use crate::topics::retention::PROTECTED_DELETED_RECORDS_METRIC as RETENTION_PROTECTED_DELETED_RECORDS;
pub const RETENTION_PROTECTED_BYTES: &str = "relay_broker_retention_protected_bytes";
pub const RETENTION_HARD_LIMIT_BYTES: &str = "relay_broker_retention_hard_limit_bytes";

/// Help texts for the exposition; call once after installing a recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        RECORDS_IN,
        Unit::Count,
        "Records appended, by topic (retried duplicates excluded)."
    );
    describe_counter!(BYTES_IN, Unit::Bytes, "Record batch bytes appended, by topic.");
    describe_counter!(
        RECORDS_OUT,
        Unit::Count,
        "Records sent to consumers in whole batches, by topic."
    );
    describe_counter!(
        BYTES_OUT,
        Unit::Bytes,
        "Record batch bytes sent to consumers, by topic."
    );
    describe_histogram!(
        PRODUCE_LATENCY,
        Unit::Seconds,
        "Produce request arrival to durable answer."
    );
    describe_histogram!(
        FETCH_LATENCY,
        Unit::Seconds,
        "Fetch request arrival to answer, long-poll wait included."
    );
    describe_histogram!(
        FSYNC_LATENCY,
        Unit::Seconds,
        "fsync of a partition's active segment (one per group commit)."
    );
    describe_counter!(REQUESTS, Unit::Count, "Requests decoded and handled, by API.");
    describe_counter!(
        AUTHENTICATIONS,
        Unit::Count,
        "SASL logins, by mechanism and result (ok, failed)."
    );
    describe_counter!(
        REQUESTS_REJECTED,
        Unit::Count,
        "Connections or requests turned away, by reason."
    );
    describe_counter!(
        PRODUCE_ERRORS,
        Unit::Count,
        "Partition produces refused, by topic and Kafka error."
    );
    describe_gauge!(CONNECTIONS, Unit::Count, "Open client connections.");
    describe_counter!(
        AUTHORIZATION_DENIED,
        Unit::Count,
        "Operations refused to an authenticated user by [[broker.grants]], by operation."
    );
    describe_counter!(CONNECTIONS_ACCEPTED, Unit::Count, "Client connections accepted.");
    describe_gauge!(LOG_START_OFFSET, Unit::Count, "First offset still in the log.");
    describe_gauge!(
        LOG_END_OFFSET,
        Unit::Count,
        "Next offset to be written and readable (high watermark)."
    );
    describe_gauge!(LOG_SEGMENTS, Unit::Count, "Segments of the partition on disk.");
    describe_gauge!(
        LOG_SIZE_BYTES,
        Unit::Bytes,
        "Bytes of the partition's segments on disk."
    );
    describe_gauge!(
        PARTITION_POISONED,
        Unit::Count,
        "1 when a failed fsync made the partition refuse writes."
    );
    describe_counter!(
        CORRUPT_BATCHES,
        Unit::Count,
        "Corrupt batches set aside in quarantine files (at recovery or when read) since the broker started; their offsets are a gap."
    );
    describe_gauge!(GROUP_COMMITTED_OFFSET, Unit::Count, "A group's committed offset.");
    describe_gauge!(GROUP_LAG, Unit::Count, "End offset minus the group's committed offset.");
    describe_gauge!(
        GROUP_COMMIT_AGE,
        Unit::Seconds,
        "Time since the group last committed this partition."
    );
    describe_gauge!(GROUP_MEMBERS, Unit::Count, "Members of the group.");
    describe_counter!(
        RETENTION_PROTECTED_DELETED_RECORDS,
        Unit::Count,
        "Records deleted past retention_bytes_hard that a protected group had not read, by topic and group."
    );
    describe_gauge!(
        RETENTION_PROTECTED_BYTES,
        Unit::Bytes,
        "Bytes of the partition kept only because protected groups have not read them."
    );
    describe_gauge!(
        RETENTION_HARD_LIMIT_BYTES,
        Unit::Bytes,
        "retention_bytes_hard of a topic with protected groups: past it, unread records are deleted."
    );
    describe_gauge!(
        REQUEST_MEMORY_IN_USE,
        Unit::Bytes,
        "Request bytes in flight, of requests_memory_bytes_max."
    );
}

/// A produced batch that was written (retried duplicates are not counted).
pub fn produced(topic: &str, records: u64, bytes: u64) {
    counter!(RECORDS_IN, "topic" => topic.to_owned()).increment(records);
    counter!(BYTES_IN, "topic" => topic.to_owned()).increment(bytes);
}

/// Whole batches sent to a consumer.
pub fn fetched(topic: &str, records: u64, bytes: u64) {
    if bytes == 0 {
        return;
    }
    counter!(RECORDS_OUT, "topic" => topic.to_owned()).increment(records);
    counter!(BYTES_OUT, "topic" => topic.to_owned()).increment(bytes);
}

/// A produce request answered, from its arrival to its durability.
pub fn produce_latency(elapsed: Duration) {
    histogram!(PRODUCE_LATENCY).record(elapsed.as_secs_f64());
}

/// A fetch answered, from its arrival (a long-poll's wait included).
pub fn fetch_latency(elapsed: Duration) {
    histogram!(FETCH_LATENCY).record(elapsed.as_secs_f64());
}

/// A request that was decoded and routed to its handler.
pub fn request(api: kafka_protocol::messages::ApiKey) {
    counter!(REQUESTS, "api" => format!("{api:?}")).increment(1);
}

/// A request or connection turned away. Reasons: `bad_frame`, `bad_request`,
/// `connections_max`.
pub fn rejected(reason: &'static str) {
    counter!(REQUESTS_REJECTED, "reason" => reason).increment(1);
}

/// A SASL login that succeeded or failed. The mechanism is bounded to the
/// two offered names; anything a client made up is counted as "other".
pub fn authentication(mechanism: &str, ok: bool) {
    let mechanism = relay_proto::sasl::mechanism(mechanism).unwrap_or("other");
    let result = if ok { "ok" } else { "failed" };
    counter!(AUTHENTICATIONS, "mechanism" => mechanism, "result" => result).increment(1);
}

/// A partition's produce refused with a Kafka error (e.g. `CorruptMessage`).
pub fn produce_error(topic: &str, error: String) {
    counter!(PRODUCE_ERRORS, "topic" => topic.to_owned(), "error" => error).increment(1);
}

/// Open client connections, published as a gauge at scrape time.
static CONNECTIONS_OPEN: AtomicI64 = AtomicI64::new(0);

pub fn connection_opened() {
    counter!(CONNECTIONS_ACCEPTED).increment(1);
    CONNECTIONS_OPEN.fetch_add(1, Ordering::Relaxed);
}

pub fn connection_closed() {
    CONNECTIONS_OPEN.fetch_sub(1, Ordering::Relaxed);
}

/// Sets the state gauges from the topics and the group offsets: called just
/// before every scrape.
pub fn publish_state_gauges(ctx: &BrokerContext) {
    gauge!(CONNECTIONS).set(CONNECTIONS_OPEN.load(Ordering::Relaxed) as f64);
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

/// Shows every operation's denial counter at zero (a broker with grants).
pub fn authorization_denied_zero(operations: &[&'static str]) {
    for operation in operations {
        counter!(AUTHORIZATION_DENIED, "operation" => *operation).increment(0);
    }
}

/// An operation refused by the grants.
pub fn authorization_denied(operation: &'static str) {
    counter!(AUTHORIZATION_DENIED, "operation" => operation).increment(1);
}
