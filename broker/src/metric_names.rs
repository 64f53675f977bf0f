//! The broker's Prometheus metrics, the bottom half: every name, label and
//! unit in one place, their help texts, and the helpers that record counters
//! and latency histograms where the work happens (through the `metrics`
//! facade, which costs nothing when no exporter is installed). It reads no
//! broker state, so every layer may record; the state gauges computed at
//! scrape time are [`crate::metrics`]'s, above the context they read.

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, histogram, Key, Label, Level, Metadata, Unit,
};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

pub const RECORDS_IN: &str = "relay_broker_records_in_total";
pub const BYTES_IN: &str = "relay_broker_bytes_in_total";
pub const RECORDS_OUT: &str = "relay_broker_records_out_total";
pub const BYTES_OUT: &str = "relay_broker_bytes_out_total";
pub const PRODUCE_LATENCY: &str = "relay_broker_produce_latency_seconds";
pub const FETCH_LATENCY: &str = "relay_broker_fetch_latency_seconds";
/// Each stage of a request, by api and stage (`server::timing`).
pub const REQUEST_STAGE: &str = "relay_broker_request_stage_seconds";
/// A request's frame read to its answer flushed, by api (`server::timing`).
pub const REQUEST_LATENCY: &str = "relay_broker_request_latency_seconds";
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
/// Records the hard cap deleted that a protected group had not read, by
/// topic and group (counted by [`crate::topics::retention`]).
pub const RETENTION_PROTECTED_DELETED_RECORDS: &str = "relay_broker_retention_protected_deleted_records_total";
pub const RETENTION_PROTECTED_BYTES: &str = "relay_broker_retention_protected_bytes";
pub const RETENTION_HARD_LIMIT_BYTES: &str = "relay_broker_retention_hard_limit_bytes";

/// Help texts for the exposition; call once after installing a recorder.
pub fn describe() {
    describe_traffic();
    describe_requests();
    describe_partitions();
    describe_groups();
    describe_retention_and_memory();
}

/// Records and bytes in and out, and how long produce, fetch and fsync take.
fn describe_traffic() {
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
    describe_histogram!(
        REQUEST_STAGE,
        Unit::Seconds,
        "Time of each stage of a request (queue, decode, handle or append and fsync_wait, response), by api."
    );
    describe_histogram!(
        REQUEST_LATENCY,
        Unit::Seconds,
        "Request frame read to its answer written and flushed, by api."
    );
}

/// Requests, logins, connections, and what was turned away or refused.
fn describe_requests() {
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
}

/// Each partition's offsets, segments, size and health.
fn describe_partitions() {
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
}

/// Each group's committed offsets, lag, commit age and members.
fn describe_groups() {
    describe_gauge!(GROUP_COMMITTED_OFFSET, Unit::Count, "A group's committed offset.");
    describe_gauge!(GROUP_LAG, Unit::Count, "End offset minus the group's committed offset.");
    describe_gauge!(
        GROUP_COMMIT_AGE,
        Unit::Seconds,
        "Time since the group last committed this partition."
    );
    describe_gauge!(GROUP_MEMBERS, Unit::Count, "Members of the group.");
}

/// Protected retention, and the request memory in use.
fn describe_retention_and_memory() {
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

/// Where a histogram recorded with a prebuilt key says it comes from.
static TIMING_METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The key of one stage of one API's requests, built once by its caller
/// (its hash too), so recording allocates and hashes nothing.
pub fn request_stage_key(api: String, stage: &'static str) -> Key {
    Key::from_parts(REQUEST_STAGE, vec![Label::new("api", api), Label::new("stage", stage)])
}

/// The key of one API's whole requests, built once like [`request_stage_key`].
pub fn request_latency_key(api: String) -> Key {
    Key::from_parts(REQUEST_LATENCY, vec![Label::new("api", api)])
}

/// One request's stage or total, under a key made by [`request_stage_key`]
/// or [`request_latency_key`].
pub fn request_time(key: &Key, elapsed: Duration) {
    metrics::with_recorder(|recorder| recorder.register_histogram(key, &TIMING_METADATA)).record(elapsed.as_secs_f64());
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

/// Open client connections now, for the gauge published at scrape time.
pub fn connections_open() -> i64 {
    CONNECTIONS_OPEN.load(Ordering::Relaxed)
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
