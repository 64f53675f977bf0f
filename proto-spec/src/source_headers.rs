//! The record headers the sender puts on every line it produces: the line's
//! source identity. The loader reads them to build a dedup key for events
//! without an id (host, file id, position: the same for every copy of one
//! line, whatever the file was called when it was read) and to fill the
//! `source_*` metadata columns, so this module is the one contract between
//! the two; it owns names only, never I/O.
//!
//! | header            | value (UTF-8)                                   |
//! |-------------------|-------------------------------------------------|
//! | `source_host`     | the sending machine's host name                 |
//! | `source_file`     | the file's path when the line was read          |
//! | `source_file_id`  | the file's identity: 32 hex digits ([`crate::registry::FileId`]) |
//! | `source_position` | decimal byte position of the line in that file  |
//!
//! `proto-spec/STORAGE.md` ("Sender state") gives the same table.

/// The sending machine's host name.
pub const HEADER_HOST: &str = "source_host";
/// The path of the file the line was read from.
pub const HEADER_FILE: &str = "source_file";
/// The file's identity, which follows it through renames and restarts.
pub const HEADER_FILE_ID: &str = "source_file_id";
/// The line's byte position in its file, in decimal.
pub const HEADER_POSITION: &str = "source_position";
