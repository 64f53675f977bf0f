//! The invariants of Relay's fuzz targets, one function per target. Each
//! takes arbitrary bytes and panics only when an invariant is broken (never
//! for input that is merely invalid). `fuzz/fuzz_targets/` feeds them to
//! libFuzzer (`cargo fuzz run <target>`); `tests/regressions.rs` replays
//! every input kept in `fuzz/regressions/<target>/` in the normal suite.
//!
//! - [`request_frame`]: frames, request headers and bodies as the broker
//!   reads them; whatever decodes re-encodes to an equal request.
//! - [`record_batch`]: batch header validation and the record walker; a
//!   batch accepted whole always passes its CRC and holds its record count.
//! - [`recovery_scan`]: a segment of valid batches followed by arbitrary
//!   bytes; recovery keeps every valid batch and yields only CRC-valid ones.
//! - [`line_splitter`]: the sender's line splitter across arbitrary reads;
//!   lines and positions are exactly those of the input, nothing lost.
//! - [`json_row`]: the loader's JSON-to-row mapping; a row has one value of
//!   the right type per column, a reject keeps the raw bytes and a reason.
//! - [`source_header`]: the compact source headers and the sticky-header
//!   walk of a record set; whatever decodes re-encodes to the same fields.

mod json_row;
mod line_splitter;
mod record_batch;
mod recovery_scan;
mod request_frame;
mod source_header;

pub use json_row::json_row;
pub use line_splitter::line_splitter;
pub use record_batch::record_batch;
pub use recovery_scan::recovery_scan;
pub use request_frame::request_frame;
pub use source_header::source_header;

/// A target's checks: panics when an invariant is broken.
pub type Check = fn(&[u8]);

/// Every target by name, for the regression runner.
pub const TARGETS: &[(&str, Check)] = &[
    ("request_frame", request_frame),
    ("record_batch", record_batch),
    ("recovery_scan", recovery_scan),
    ("line_splitter", line_splitter),
    ("json_row", json_row),
    ("source_header", source_header),
];
