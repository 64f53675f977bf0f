//! relay-sender: the file sender behind `relay send`: tails every file matching its path
//! patterns and produces each complete line to a topic, saving a file's
//! position only after the broker acknowledged every line before it.
//!
//! # Layout
//! - [`pattern`]: which paths are watched (`*`, `?` in the file name).
//! - [`identity`]: device + inode + fingerprint: which file is which.
//! - [`registry`]: acknowledged positions, saved atomically.
//! - [`status`]: a state directory's files as `relay status` shows them.
//! - [`lines`]: splitting bytes into lines across reads; over-long lines.
//! - [`problems`]: paths that cannot be read, reported once, in `/health`.
//! - [`delivery`]: sending a line through any error not about the line.
//! - [`sender`]: [`Sender`], the discovery loop: which files to open, where each
//!   starts, room under `open_files_max`, checkpoints, the stop.
//! - [`shared`]: [`SenderShared`], what the loop and the tailers share (producer,
//!   registry, rejects, idle files, handovers), behind its own methods.
//! - [`tailer`]: one task per open file: read, produce, acknowledge, watch.
//! - [`rejects`]: the rejects file for lines that cannot be sent.
//! - [`metrics`]: per-file Prometheus counters and the bytes-behind gauge.
//! - [`config`]: [`SenderConfig`], the `[[send]]` section, with its defaults.
//! - [`error`]: [`SenderError`], the one error type of this layer.
//!
//! It builds on relay-client's producer only. The headers it puts on every
//! record and its registry's layout are contracts in relay-proto
//! ([`relay_proto::source_headers`], [`relay_proto::registry`]).
//!
//! Guarantees: a line is sent once it is complete; a restart resumes at the
//! first line not acknowledged, so a crash can only duplicate lines whose
//! acknowledgement was in flight, and those carry the same source headers
//! (`relay_source`: host, path and file id; `rp`: the position) so
//! downstream can de-duplicate them. Memory is bounded whatever the file sizes. A line
//! that can never be sent (too long, refused by the broker, or left
//! unterminated by a file that went away) goes to the rejects file with its
//! bytes and reason. Symlinks matching the paths are followed
//! (`follow_symlinks`): identity is the target's, the path shown the link's.

pub mod compressed;
pub mod config;
pub mod delivery;
pub mod error;
pub mod identity;
pub mod lines;
pub mod metrics;
pub mod pattern;
pub mod problems;
pub mod registry;
pub mod rejects;
pub mod sender;
pub mod shared;
pub mod status;
pub mod tailer;
pub mod wake;

pub use config::{SenderConfig, LINE_BYTES_MAX_DEFAULT};
pub use error::{Result, SenderError};
pub use lines::key_of;
pub use sender::{producer_config, Sender, PRODUCER_BUFFER_BYTES_MAX};
pub use shared::{Handover, SenderShared, HANDOVERS_MAX};
