//! The sender's Prometheus metrics. Per topic (label `topic`): lines and bytes
//! read and acknowledged, rejected lines, copytruncate restarts, send errors
//! and whether sending is blocked. Per watched file (labels `topic`, `file`)
//! only bytes behind (the file's size minus its acknowledged position), a
//! gauge: a file the sender no longer tracks disappears from the output after
//! the exporter's idle timeout, so rotated names cannot pile up series (file
//! paths are unbounded; counters per file would stay until a restart).
//! Counting a line is an atomic add on a handle taken once per file.

use metrics::{counter, gauge, Counter, Gauge};
use parking_lot::Mutex;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const LINES_READ: &str = "relay_sender_lines_read_total";
pub const BYTES_READ: &str = "relay_sender_bytes_read_total";
pub const LINES_ACKED: &str = "relay_sender_lines_acked_total";
pub const BYTES_ACKED: &str = "relay_sender_bytes_acked_total";
pub const BYTES_BEHIND: &str = "relay_sender_bytes_behind";
pub const LINES_REJECTED: &str = "relay_sender_lines_rejected_total";
pub const TRUNCATIONS: &str = "relay_sender_copytruncate_restarts_total";
pub const SEND_ERRORS: &str = "relay_sender_send_errors_total";
pub const SEND_BLOCKED: &str = "relay_sender_send_blocked";
pub const UNREADABLE_PATHS: &str = "relay_sender_unreadable_paths";
pub const DISCOVERY_OPENS: &str = "relay_sender_discovery_opens_total";

/// Help texts for the exposition; call once after installing a recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, Unit};
    describe_counter!(LINES_READ, Unit::Count, "Complete lines read, by topic.");
    describe_counter!(BYTES_READ, Unit::Bytes, "Bytes read, by topic.");
    describe_counter!(LINES_ACKED, Unit::Count, "Lines acknowledged by the broker, by topic.");
    describe_counter!(
        BYTES_ACKED,
        Unit::Bytes,
        "Bytes whose lines the broker acknowledged, by topic."
    );
    describe_gauge!(BYTES_BEHIND, Unit::Bytes, "File size minus acknowledged position.");
    describe_counter!(LINES_REJECTED, Unit::Count, "Lines written to the rejects file.");
    describe_counter!(
        TRUNCATIONS,
        Unit::Count,
        "Times a file was truncated or rewritten and read again from 0."
    );
    describe_counter!(
        SEND_ERRORS,
        Unit::Count,
        "Sends that failed for a reason not about the line (retried; no line skipped), by topic."
    );
    describe_gauge!(
        SEND_BLOCKED,
        Unit::Count,
        "1 while a topic's lines cannot be sent and are being retried, else 0."
    );
    describe_gauge!(
        UNREADABLE_PATHS,
        Unit::Count,
        "Path patterns matching nothing, directories or files the sender cannot read, by topic."
    );
    describe_counter!(
        DISCOVERY_OPENS,
        Unit::Count,
        "Files discovery opened to look at (new or changed since found settled), by topic."
    );
    describe_counter!(
        relay_client::producer::RETRIES_METRIC,
        Unit::Count,
        "Produce attempts retried after a retriable error, by topic."
    );
}

/// One open file's metric handles and the two positions "behind" is made of.
pub struct FileMetrics {
    pub lines_read: Counter,
    pub bytes_read: Counter,
    pub lines_acked: Counter,
    pub bytes_acked: Counter,
    pub lines_rejected: Counter,
    pub truncations: Counter,
    /// The gauge's handle, taken again at least every [`GAUGE_REFRESH`]: a
    /// gauge left unset past the exporter's idle timeout is dropped, and a
    /// handle taken before that would update nothing visible.
    bytes_behind: Mutex<(Gauge, Instant)>,
    labels: [(&'static str, String); 2],
    size_bytes: AtomicU64,
    acked_position: AtomicU64,
}

/// How often a file's bytes-behind handle is taken again (well inside the
/// exporter's idle timeout, so an active file's gauge never goes away).
const GAUGE_REFRESH: Duration = Duration::from_secs(60);

impl FileMetrics {
    pub fn new(topic: &str, path: &Path, acked_position: u64) -> Self {
        let per_topic = [("topic", topic.to_owned())];
        let labels = [("topic", topic.to_owned()), ("file", path.display().to_string())];
        Self {
            lines_read: counter!(LINES_READ, &per_topic),
            bytes_read: counter!(BYTES_READ, &per_topic),
            lines_acked: counter!(LINES_ACKED, &per_topic),
            bytes_acked: counter!(BYTES_ACKED, &per_topic),
            lines_rejected: counter!(LINES_REJECTED, &per_topic),
            truncations: counter!(TRUNCATIONS, &per_topic),
            bytes_behind: Mutex::new((gauge!(BYTES_BEHIND, &labels), Instant::now())),
            labels,
            size_bytes: AtomicU64::new(acked_position),
            acked_position: AtomicU64::new(acked_position),
        }
    }

    /// The file's size as last seen by its tailer.
    pub fn set_size(&self, size_bytes: u64) {
        self.size_bytes.store(size_bytes, Ordering::Relaxed);
        self.publish_behind();
    }

    /// The registry's position moved to `position` (0 after a truncation).
    pub fn set_acked(&self, position: u64) {
        let previous = self.acked_position.swap(position, Ordering::Relaxed);
        if position > previous {
            self.bytes_acked.increment(position - previous);
        }
        self.publish_behind();
    }

    fn publish_behind(&self) {
        let size = self.size_bytes.load(Ordering::Relaxed);
        let acked = self.acked_position.load(Ordering::Relaxed);
        let mut behind = self.bytes_behind.lock();
        if behind.1.elapsed() >= GAUGE_REFRESH {
            *behind = (gauge!(BYTES_BEHIND, &self.labels), Instant::now());
        }
        behind.0.set(size.saturating_sub(acked) as f64);
    }
}

/// A topic's send trouble: errors seen, and whether sending is blocked.
pub struct TopicMetrics {
    pub send_errors: Counter,
    pub send_blocked: Gauge,
}

impl TopicMetrics {
    pub fn new(topic: &str) -> Self {
        let labels = [("topic", topic.to_owned())];
        let metrics = Self {
            send_errors: counter!(SEND_ERRORS, &labels),
            send_blocked: gauge!(SEND_BLOCKED, &labels),
        };
        metrics.send_blocked.set(0.0);
        metrics
    }
}
