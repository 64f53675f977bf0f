//! [`SenderConfig`]: what one sender tails and into which topic. It is the
//! `[[send]]` section of the config file as it stands (serde, unknown keys
//! refused) and what `relay send --topic --path` builds; every default is
//! written here once.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Default longest line: 1 MiB, Kafka's default `message.max.bytes`.
pub const LINE_BYTES_MAX_DEFAULT: usize = 1024 * 1024;
/// Default files read at once: each holds one read buffer and one unfinished
/// line, so 256 files stay within a few MiB beyond the producer's budget.
pub const OPEN_FILES_MAX_DEFAULT: usize = 256;
const DISCOVER_INTERVAL_MS_DEFAULT: u64 = 500;
const POLL_INTERVAL_MS_DEFAULT: u64 = 100;
const ROTATE_WAIT_MS_DEFAULT: u64 = 5_000;
const DRAIN_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// Registry saves at most this often: each is a write, two fsyncs and a
/// rename (about 2-5 ms on this machine's disk), so 50 ms costs under 10 %
/// of one core's I/O wait while acknowledgements flow, and a kill -9 sends
/// again at most 50 ms of acknowledged lines beyond what was in flight.
const CHECKPOINT_INTERVAL_MS_DEFAULT: u64 = 50;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderConfig {
    pub topic: String,
    /// Path patterns; `*` and `?` in the file name only.
    pub paths: Vec<String>,
    /// Where the registry and rejects live [default: `./state/send-<topic>`].
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// JSON field whose value becomes the record key (same key, same partition).
    #[serde(default)]
    pub key_field: Option<String>,
    /// Longer lines go to the rejects file, streamed, never held in memory.
    #[serde(default = "line_bytes_max_default")]
    pub line_bytes_max: usize,
    /// Files read at once; more wait their turn.
    #[serde(default = "open_files_max_default")]
    pub open_files_max: usize,
    /// How often watched directories are listed for new files.
    #[serde(default = "discover_interval_ms_default")]
    pub discover_interval_ms: u64,
    /// How often a file at its end is checked for growth.
    #[serde(default = "poll_interval_ms_default")]
    pub poll_interval_ms: u64,
    /// A file that left the watched paths is closed after this long without growth.
    #[serde(default = "rotate_wait_ms_default")]
    pub rotate_wait_ms: u64,
    /// How long a stop waits for acknowledgements of lines already sent.
    #[serde(default = "drain_timeout_ms_default")]
    pub drain_timeout_ms: u64,
    /// The registry is saved at most this often while positions move.
    #[serde(default = "checkpoint_interval_ms_default")]
    pub checkpoint_interval_ms: u64,
    /// Symlinks matching the paths are read (their target's identity, shown
    /// under the link's path); `false` skips them.
    #[serde(default = "follow_symlinks_default")]
    pub follow_symlinks: bool,
    /// Log in as this user instead of `[client]`'s (`[send.login]`).
    #[serde(default)]
    pub login: Option<relay_client::settings::Login>,
}

fn follow_symlinks_default() -> bool {
    true
}

fn line_bytes_max_default() -> usize {
    LINE_BYTES_MAX_DEFAULT
}
fn open_files_max_default() -> usize {
    OPEN_FILES_MAX_DEFAULT
}
fn discover_interval_ms_default() -> u64 {
    DISCOVER_INTERVAL_MS_DEFAULT
}
fn poll_interval_ms_default() -> u64 {
    POLL_INTERVAL_MS_DEFAULT
}
fn rotate_wait_ms_default() -> u64 {
    ROTATE_WAIT_MS_DEFAULT
}
fn drain_timeout_ms_default() -> u64 {
    DRAIN_TIMEOUT_MS_DEFAULT
}
fn checkpoint_interval_ms_default() -> u64 {
    CHECKPOINT_INTERVAL_MS_DEFAULT
}

impl SenderConfig {
    /// A sender of `paths` into `topic` with every other setting at its default.
    pub fn new(topic: &str, paths: Vec<String>) -> Self {
        Self {
            topic: topic.to_owned(),
            paths,
            state_dir: None,
            key_field: None,
            line_bytes_max: LINE_BYTES_MAX_DEFAULT,
            open_files_max: OPEN_FILES_MAX_DEFAULT,
            discover_interval_ms: DISCOVER_INTERVAL_MS_DEFAULT,
            poll_interval_ms: POLL_INTERVAL_MS_DEFAULT,
            rotate_wait_ms: ROTATE_WAIT_MS_DEFAULT,
            drain_timeout_ms: DRAIN_TIMEOUT_MS_DEFAULT,
            checkpoint_interval_ms: CHECKPOINT_INTERVAL_MS_DEFAULT,
            follow_symlinks: follow_symlinks_default(),
            login: None,
        }
    }

    /// The state directory, or `./state/send-<topic>` when none is set.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("./state/send-{}", self.topic)))
    }

    pub fn discover_interval(&self) -> Duration {
        Duration::from_millis(self.discover_interval_ms)
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub fn rotate_wait(&self) -> Duration {
        Duration::from_millis(self.rotate_wait_ms)
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }

    pub fn checkpoint_interval(&self) -> Duration {
        Duration::from_millis(self.checkpoint_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_with_only_topic_and_paths_gets_every_default() {
        let parsed: SenderConfig = toml::from_str("topic = \"t\"\npaths = [\"./logs/*.log\"]").unwrap();
        let built = SenderConfig::new("t", vec!["./logs/*.log".into()]);
        assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
        assert_eq!(built.state_dir(), PathBuf::from("./state/send-t"));
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let error = toml::from_str::<SenderConfig>("topic = \"t\"\npaths = []\nrotate_wait = 5").unwrap_err();
        assert!(error.to_string().contains("rotate_wait"), "{error}");
    }
}
