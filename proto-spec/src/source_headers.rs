//! The record headers that carry a line's source identity from the sender
//! to the loader: the one contract between the two. The loader reads them to
//! build a dedup key for events without an id (host, file id, position: the
//! same for every copy of one line, whatever the file was called when it was
//! read) and to fill the `source_*` metadata columns; `relay consume` shows
//! them. Pure functions on bytes: no I/O.
//!
//! Two forms, both read everywhere (`proto-spec/SOURCE_HEADERS.md` gives the
//! byte tables and the per-record budget):
//!
//! | form | header | value |
//! |---|---|---|
//! | compact (written) | [`HEADER_SOURCE`] `relay_source`, *sticky* | version byte 1, then host, path and file id, each an unsigned LEB128 length and its bytes |
//! | compact (written) | [`HEADER_LINE_POSITION`] `rp` | the line's byte position, unsigned LEB128 |
//! | legacy (read only) | [`HEADER_HOST`] `source_host` | the host name (UTF-8) |
//! | legacy | [`HEADER_FILE`] `source_file` | the file's path |
//! | legacy | [`HEADER_FILE_ID`] `source_file_id` | 32 hex digits, or empty |
//! | legacy | [`HEADER_POSITION`] `source_position` | decimal position |
//!
//! `relay_source` is a sticky header: within one record batch the producer
//! omits it from a record whose previous record carried the same value, and
//! the consumer gives such a record the latest value before it in the batch
//! (`relay_client`'s `sticky_header_keys` settings). [`LineSource::read`]
//! takes a record's headers after that and answers the same for either form.

use crate::registry::FileId;
use std::borrow::Cow;

/// The compact form's sticky header: host, path and file id in one value.
pub const HEADER_SOURCE: &str = "relay_source";
/// The compact form's per-record header: the line's position as a varint.
pub const HEADER_LINE_POSITION: &str = "rp";
/// The headers a producer writes and a consumer reads as sticky (once per
/// run of equal values in a batch) for this contract.
pub const STICKY_HEADER_KEYS: &[&str] = &[HEADER_SOURCE];
/// The first byte of a [`HEADER_SOURCE`] value this release writes and reads.
pub const SOURCE_VERSION: u8 = 1;
/// Bytes of a file id in the compact form: the 128 bits, big-endian.
pub const FILE_ID_BYTES: usize = 16;
/// Longest unsigned LEB128 of a `u64`: ceil(64 / 7) = 10 groups of 7 bits.
pub const POSITION_BYTES_MAX: usize = 10;

/// Legacy form: the sending machine's host name.
pub const HEADER_HOST: &str = "source_host";
/// Legacy form: the path of the file the line was read from.
pub const HEADER_FILE: &str = "source_file";
/// Legacy form: the file's identity as 32 hex digits.
pub const HEADER_FILE_ID: &str = "source_file_id";
/// Legacy form: the line's byte position in its file, in decimal.
pub const HEADER_POSITION: &str = "source_position";

/// Why a compact source header cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceHeaderError {
    #[error("{HEADER_SOURCE} header is empty")]
    Empty,
    #[error("{HEADER_SOURCE} header has version {found}; this release reads version {SOURCE_VERSION}")]
    UnknownVersion { found: u8 },
    #[error("{HEADER_SOURCE} header ends inside its {field} field")]
    Truncated { field: &'static str },
    #[error("{HEADER_SOURCE} header's file id has {found} bytes, not 0 or {FILE_ID_BYTES}")]
    FileIdBytes { found: usize },
    #[error("{HEADER_SOURCE} header has {extra} bytes after its last field")]
    TrailingBytes { extra: usize },
    #[error("{HEADER_LINE_POSITION} header is not one unsigned LEB128 varint of at most {POSITION_BYTES_MAX} bytes")]
    Position,
}

/// A compact [`HEADER_SOURCE`] value's fields, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source<'a> {
    pub host: &'a [u8],
    pub file: &'a [u8],
    /// `None` for a file the sender had no identity for.
    pub file_id: Option<FileId>,
}

/// The [`HEADER_SOURCE`] value for `source`.
pub fn encode_source(source: &Source<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 3 * 2 + source.host.len() + source.file.len() + FILE_ID_BYTES);
    out.push(SOURCE_VERSION);
    for field in [source.host, source.file] {
        put_unsigned(&mut out, field.len() as u64);
        out.extend_from_slice(field);
    }
    match source.file_id {
        None => put_unsigned(&mut out, 0),
        Some(id) => {
            put_unsigned(&mut out, FILE_ID_BYTES as u64);
            out.extend_from_slice(&id.0.to_be_bytes());
        }
    }
    out
}

/// The fields of a [`HEADER_SOURCE`] value; every byte must belong to one.
pub fn decode_source(bytes: &[u8]) -> Result<Source<'_>, SourceHeaderError> {
    let (&version, mut rest) = bytes.split_first().ok_or(SourceHeaderError::Empty)?;
    if version != SOURCE_VERSION {
        return Err(SourceHeaderError::UnknownVersion { found: version });
    }
    let mut field = |name: &'static str| -> Result<&[u8], SourceHeaderError> {
        let truncated = SourceHeaderError::Truncated { field: name };
        let (length, used) = get_unsigned(rest).ok_or(truncated.clone())?;
        let length = usize::try_from(length).map_err(|_| truncated.clone())?;
        let value = rest
            .get(used..used.checked_add(length).ok_or(truncated.clone())?)
            .ok_or(truncated)?;
        rest = &rest[used + length..];
        Ok(value)
    };
    let host = field("host")?;
    let file = field("file")?;
    let file_id = match field("file id")? {
        [] => None,
        id => Some(FileId(u128::from_be_bytes(
            id.try_into()
                .map_err(|_| SourceHeaderError::FileIdBytes { found: id.len() })?,
        ))),
    };
    if !rest.is_empty() {
        return Err(SourceHeaderError::TrailingBytes { extra: rest.len() });
    }
    Ok(Source { host, file, file_id })
}

/// Appends the [`HEADER_LINE_POSITION`] value of `position`.
pub fn put_position(out: &mut Vec<u8>, position: u64) {
    put_unsigned(out, position);
}

/// Bytes of the [`HEADER_LINE_POSITION`] value of `position`.
pub fn position_bytes(position: u64) -> usize {
    (64 - (position | 1).leading_zeros() as usize).div_ceil(7)
}

/// The position in a [`HEADER_LINE_POSITION`] value: one varint, nothing after it.
pub fn decode_position(bytes: &[u8]) -> Result<u64, SourceHeaderError> {
    match get_unsigned(bytes) {
        Some((position, used)) if used == bytes.len() => Ok(position),
        _ => Err(SourceHeaderError::Position),
    }
}

fn put_unsigned(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// An unsigned LEB128 from the front of `bytes` and its length; `None` when
/// the bytes end first or it overflows 64 bits.
fn get_unsigned(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (index, &byte) in bytes.iter().take(POSITION_BYTES_MAX).enumerate() {
        let group = u64::from(byte & 0x7f);
        if index == POSITION_BYTES_MAX - 1 && group > 1 {
            return None;
        }
        value |= group << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

/// A line's source as its record's headers carry it, in either form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSource<'a> {
    /// Always there in the compact form; a legacy record may lack it.
    pub host: Option<Cow<'a, [u8]>>,
    pub file: Option<Cow<'a, [u8]>>,
    /// 32 lowercase hex digits as the legacy form wrote them (or as read).
    pub file_id: Option<Cow<'a, str>>,
    /// Decimal as the legacy form wrote it (or as read).
    pub position: Option<Cow<'a, str>>,
}

impl<'a> LineSource<'a> {
    /// The source of a record whose header `name` has the value
    /// `header(name)` (the first one; `None` when absent or null): the
    /// compact form when it has [`HEADER_SOURCE`], else the legacy form when
    /// it has any of its headers, else `None` (not a Relay sender's line). A
    /// compact form that cannot be decoded is an error.
    pub fn read(header: impl Fn(&str) -> Option<&'a [u8]>) -> Result<Option<Self>, SourceHeaderError> {
        if let Some(value) = header(HEADER_SOURCE) {
            let source = decode_source(value)?;
            let position = header(HEADER_LINE_POSITION).map(decode_position).transpose()?;
            return Ok(Some(LineSource {
                host: Some(Cow::Borrowed(source.host)),
                file: Some(Cow::Borrowed(source.file)),
                file_id: source.file_id.map(|id| Cow::Owned(id.to_string())),
                position: position.map(|p| Cow::Owned(p.to_string())),
            }));
        }
        let text = |name| header(name).map(String::from_utf8_lossy);
        let source = LineSource {
            host: header(HEADER_HOST).map(Cow::Borrowed),
            file: header(HEADER_FILE).map(Cow::Borrowed),
            file_id: text(HEADER_FILE_ID).filter(|id| !id.is_empty()),
            position: text(HEADER_POSITION),
        };
        let any = source.host.is_some() || source.file.is_some() || source.file_id.is_some();
        Ok((any || source.position.is_some()).then_some(source))
    }

    /// The line's identity for deduplication, the same in both forms:
    /// `host:file_id:position`, or `host:file:position` for a line of a
    /// file without an id; `None` without a host or a position.
    pub fn identity(&self) -> Option<String> {
        let host = String::from_utf8_lossy(self.host.as_ref()?);
        let position = self.position.as_ref()?;
        match (&self.file_id, &self.file) {
            (Some(file_id), _) => Some(format!("{host}:{file_id}:{position}")),
            (None, Some(file)) => Some(format!("{host}:{}:{position}", String::from_utf8_lossy(file))),
            (None, None) => None,
        }
    }

    /// The position as a number, when it is one.
    pub fn position_number(&self) -> Option<u64> {
        self.position.as_ref()?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a [u8])]) -> impl Fn(&str) -> Option<&'a [u8]> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    #[test]
    fn both_forms_give_the_same_identity_and_fields() {
        let id = FileId(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834);
        let compact = encode_source(&Source {
            host: b"web-1",
            file: b"/var/log/app.jsonl",
            file_id: Some(id),
        });
        let mut position = Vec::new();
        put_position(&mut position, 81_549);
        let new = [(HEADER_SOURCE, &compact[..]), (HEADER_LINE_POSITION, &position[..])];
        let id_text = id.to_string();
        let old = [
            (HEADER_HOST, &b"web-1"[..]),
            (HEADER_FILE, b"/var/log/app.jsonl"),
            (HEADER_FILE_ID, id_text.as_bytes()),
            (HEADER_POSITION, b"81549"),
        ];
        let new = LineSource::read(headers(&new)).unwrap().unwrap();
        let old = LineSource::read(headers(&old)).unwrap().unwrap();
        assert_eq!(new, old);
        assert_eq!(new.identity().unwrap(), "web-1:9e3779b97f4a7c15f39cc0605cedc834:81549");
        assert_eq!(new.position_number(), Some(81_549));
    }

    #[test]
    fn a_file_without_an_id_is_keyed_by_its_path_in_both_forms() {
        let compact = encode_source(&Source {
            host: b"h",
            file: b"app.log",
            file_id: None,
        });
        let new = [(HEADER_SOURCE, &compact[..]), (HEADER_LINE_POSITION, &[10u8][..])];
        let old = [
            (HEADER_HOST, &b"h"[..]),
            (HEADER_FILE, b"app.log"),
            (HEADER_FILE_ID, b""),
            (HEADER_POSITION, b"10"),
        ];
        let new = LineSource::read(headers(&new)).unwrap().unwrap();
        assert_eq!(new.identity().unwrap(), "h:app.log:10");
        assert_eq!(
            LineSource::read(headers(&old)).unwrap().unwrap().identity(),
            new.identity()
        );
    }

    #[test]
    fn records_without_source_headers_have_no_source() {
        assert_eq!(LineSource::read(headers(&[("other", b"x")])).unwrap(), None);
    }

    #[test]
    fn malformed_compact_values_are_errors_that_say_what() {
        assert_eq!(decode_source(&[]), Err(SourceHeaderError::Empty));
        assert_eq!(decode_source(&[2]), Err(SourceHeaderError::UnknownVersion { found: 2 }));
        assert_eq!(
            decode_source(&[1, 5, b'h']),
            Err(SourceHeaderError::Truncated { field: "host" })
        );
        assert_eq!(
            decode_source(&[1, 0, 0, 3, 1, 2, 3]),
            Err(SourceHeaderError::FileIdBytes { found: 3 })
        );
        assert_eq!(
            decode_source(&[1, 0, 0, 0, 9]),
            Err(SourceHeaderError::TrailingBytes { extra: 1 })
        );
        assert_eq!(decode_position(&[0x80]), Err(SourceHeaderError::Position));
        assert_eq!(decode_position(&[1, 2]), Err(SourceHeaderError::Position));
        assert_eq!(decode_position(&[0xff; 10]), Err(SourceHeaderError::Position));
        let message = decode_source(&[7]).unwrap_err().to_string();
        assert!(
            message.contains("relay_source") && message.contains("version 7"),
            "{message}"
        );
    }

    #[test]
    fn position_widths_are_seven_bits_a_byte() {
        for (position, bytes) in [
            (0u64, 1usize),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::MAX, 10),
        ] {
            let mut out = Vec::new();
            put_position(&mut out, position);
            assert_eq!((out.len(), position_bytes(position)), (bytes, bytes), "{position}");
        }
    }

    proptest! {
        #[test]
        fn source_round_trips(
            host in proptest::collection::vec(any::<u8>(), 0..300),
            file in proptest::collection::vec(any::<u8>(), 0..5_000),
            file_id in proptest::option::of(any::<u128>()),
        ) {
            let source = Source { host: &host, file: &file, file_id: file_id.map(FileId) };
            let encoded = encode_source(&source);
            prop_assert_eq!(decode_source(&encoded), Ok(source));
            for cut in 0..encoded.len() {
                prop_assert!(decode_source(&encoded[..cut]).is_err());
            }
        }

        #[test]
        fn position_round_trips(position in any::<u64>()) {
            let mut out = Vec::new();
            put_position(&mut out, position);
            prop_assert_eq!(out.len(), position_bytes(position));
            prop_assert_eq!(decode_position(&out), Ok(position));
        }
    }
}
