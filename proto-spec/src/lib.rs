//! relay-proto: the byte formats Relay shares between the wire and the disk.
//!
//! Relay stores Kafka record batches (magic 2) on disk exactly as producers send
//! them, so one set of code reads a batch header whether it arrived in a Produce
//! request or sits in a segment file. This crate owns that view and every other
//! contract between two crates (record headers, the sender's registry); its
//! only I/O is reading and atomically replacing small state files.
//!
//! # Layout
//! - [`batch`]: zero-copy view of the 61-byte record batch v2 header, its
//!   validation (length, magic, CRC-32C), and patching the base offset.
//! - [`crc`]: CRC-32C over the part of a batch the checksum covers.
//! - [`records`]: walking the records of an uncompressed batch without copying.
//! - [`varint`]: Kafka's zig-zag variable-length integers.
//! - [`builder`]: a plain encoder of uncompressed batches for tests and benches.
//! - [`sasl`]: PLAIN and SCRAM-SHA-256 messages and the hashed credential format.
//! - [`source_headers`]: the record headers that carry a line's source
//!   identity from the sender to the loader.
//! - [`registry`]: the sender's registry file (acknowledged file positions).
//! - [`offset_metadata`]: what a loader says in its committed offsets' metadata (open gaps).
//! - [`durable_file`]: replacing a state file atomically (write, fsync, rename, fsync).
//! - [`clock`]: wall-clock milliseconds and microseconds since the Unix epoch.
//! - [`stop`]: the stop signal the supervisor hands every long-running task.
//! - [`error`]: [`BatchError`], the one error type of this layer.
//!
//! Byte layouts live in `proto-spec/STORAGE.md`; golden files in `proto-spec/vectors/`.

pub mod batch;
pub mod builder;
pub mod clock;
pub mod crc;
pub mod durable_file;
pub mod error;
pub mod offset_metadata;
pub mod records;
pub mod registry;
pub mod sasl;
pub mod source_headers;
pub mod stop;
pub mod varint;

pub use batch::{BatchHeader, Compression, RecordBatches};
pub use builder::{BatchBuilder, RecordSpec};
pub use error::{BatchError, Result};
