//! What keeps a sender from reading: a path pattern that matches nothing,
//! a directory it cannot list, a file it cannot open. Each is logged when it
//! starts (WARN for an empty pattern, ERROR with the OS error otherwise) and
//! when it ends, never in between, and is shown in `/health` (degraded) and
//! as the `relay_sender_unreadable_paths` gauge for `relay status`.

use crate::metrics::UNREADABLE_PATHS;
use parking_lot::Mutex;
use std::collections::BTreeMap;

/// The open problems of one sender, by the path they concern.
pub struct Problems {
    topic: String,
    open: Mutex<BTreeMap<String, String>>,
}

/// How loud a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Nothing to read yet (a pattern matching no file): normal at first.
    Waiting,
    /// Something there cannot be read: an operator must act.
    Unreadable,
}

impl Problems {
    pub fn new(topic: &str) -> Self {
        Self {
            topic: topic.to_owned(),
            open: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records that `path` has `problem` (logged only when it is new or changed).
    pub fn report(&self, path: &str, problem: String, severity: Severity) {
        let mut open = self.open.lock();
        if open.get(path) == Some(&problem) {
            return;
        }
        match severity {
            Severity::Waiting => tracing::warn!(topic = %self.topic, path, "{problem}"),
            Severity::Unreadable => tracing::error!(topic = %self.topic, path, "{problem}"),
        }
        open.insert(path.to_owned(), problem);
        self.publish(&open);
    }

    /// Records that `path` is fine now.
    pub fn clear(&self, path: &str) {
        let mut open = self.open.lock();
        if open.remove(path).is_some() {
            tracing::info!(topic = %self.topic, path, "readable again");
            self.publish(&open);
        }
    }

    /// The open problems, one line each; empty when the sender reads fine.
    pub fn describe(&self) -> Vec<String> {
        self.open
            .lock()
            .iter()
            .map(|(path, problem)| format!("{path}: {problem}"))
            .collect()
    }

    fn publish(&self, open: &BTreeMap<String, String>) {
        metrics::gauge!(UNREADABLE_PATHS, "topic" => self.topic.clone()).set(open.len() as f64);
    }
}
