//! relay-proto: the byte formats Relay shares between the wire and the disk.
//!
//! Relay stores Kafka record batches (magic 2) on disk exactly as producers send
//! them, so one set of code reads a batch header whether it arrived in a Produce
//! request or sits in a segment file. This crate owns that view and nothing that
//! does I/O.
//!
//! # Layout
//! - [`batch`]: zero-copy view of the 61-byte record batch v2 header, its
//!   validation (length, magic, CRC-32C), and patching the base offset.
//! - [`crc`]: CRC-32C over the part of a batch the checksum covers.
//! - [`records`]: walking the records of an uncompressed batch without copying.
//! - [`varint`]: Kafka's zig-zag variable-length integers.
//! - [`builder`]: a plain encoder of uncompressed batches for tests and benches.
//! - [`sasl`]: PLAIN and SCRAM-SHA-256 messages and the hashed credential format.
//! - [`error`]: [`BatchError`], the one error type of this layer.
//!
//! Byte layouts live in `proto-spec/STORAGE.md`; golden files in `proto-spec/vectors/`.

pub mod batch;
pub mod builder;
pub mod crc;
pub mod error;
pub mod records;
pub mod sasl;
pub mod varint;

pub use batch::{BatchHeader, Compression, RecordBatches};
pub use builder::{BatchBuilder, RecordSpec};
pub use error::{BatchError, Result};
