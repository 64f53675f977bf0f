//! A record's line source (`relay_proto::source_headers`), in either form
//! the sender wrote it: the dedup key of an event without an id and the
//! `source_file` / `source_position` metadata cells. The consumer has given
//! every record its sticky `relay_source` header before this runs
//! ([`STICKY_HEADER_KEYS`] in the loader's consumer settings).

use relay_client::records::RecordView;
use relay_proto::source_headers::LineSource;
pub use relay_proto::source_headers::STICKY_HEADER_KEYS;
use std::borrow::Cow;

/// The sticky header keys as the consumer's settings take them.
pub fn sticky_header_keys() -> Vec<bytes::Bytes> {
    STICKY_HEADER_KEYS
        .iter()
        .map(|key| bytes::Bytes::from_static(key.as_bytes()))
        .collect()
}

/// The record's line source: `Ok(None)` when no Relay sender produced it,
/// an error naming the record when its compact header cannot be read.
fn line_source<'a>(record: &RecordView<'a>) -> Result<Option<LineSource<'a>>, String> {
    LineSource::read(|name| record.header(name)).map_err(|error| {
        format!(
            "{}/{} offset {}: {error}",
            record.topic, record.partition, record.offset
        )
    })
}

/// The line's source identity (`host:file_id:position`, or
/// `host:file:position` for a file without an id), the same in both forms;
/// `None` for a record that is not a sender's line or whose source header
/// cannot be read (its offset then keys it).
pub fn identity(record: &RecordView<'_>) -> Option<String> {
    line_source(record).ok().flatten()?.identity()
}

/// The path the line was read from, as bytes; `Ok(None)` without one.
pub fn file<'a>(record: &RecordView<'a>) -> Result<Option<Cow<'a, [u8]>>, String> {
    Ok(line_source(record)?.and_then(|source| source.file))
}

/// The line's byte position; `Ok(None)` without one or when it is not a
/// number a BIGINT holds.
pub fn position(record: &RecordView<'_>) -> Result<Option<i64>, String> {
    Ok(line_source(record)?
        .and_then(|source| source.position_number())
        .and_then(|position| i64::try_from(position).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use relay_client::records::ConsumerRecord;
    use relay_proto::registry::FileId;
    use relay_proto::source_headers::{
        encode_source, put_position, Source, HEADER_FILE, HEADER_FILE_ID, HEADER_HOST, HEADER_LINE_POSITION,
        HEADER_POSITION, HEADER_SOURCE,
    };

    fn record(headers: Vec<(&str, Vec<u8>)>) -> ConsumerRecord {
        ConsumerRecord {
            topic: "events".into(),
            partition: 2,
            offset: 7,
            timestamp_ms: 0,
            key: None,
            value: None,
            headers: headers
                .into_iter()
                .map(|(name, value)| (name.to_owned(), Some(Bytes::from(value))))
                .collect(),
            undecodable: None,
        }
    }

    fn compact(file_id: Option<FileId>, position: u64) -> ConsumerRecord {
        let source = encode_source(&Source {
            host: b"web-1",
            file: b"/var/log/app.jsonl",
            file_id,
        });
        let mut varint = Vec::new();
        put_position(&mut varint, position);
        record(vec![(HEADER_SOURCE, source), (HEADER_LINE_POSITION, varint)])
    }

    fn legacy(file_id: &str, position: &str) -> ConsumerRecord {
        record(vec![
            (HEADER_HOST, b"web-1".to_vec()),
            (HEADER_FILE, b"/var/log/app.jsonl".to_vec()),
            (HEADER_FILE_ID, file_id.as_bytes().to_vec()),
            (HEADER_POSITION, position.as_bytes().to_vec()),
        ])
    }

    #[test]
    fn a_line_has_the_same_identity_file_and_position_in_both_forms() {
        let id = FileId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        for (new, old) in [
            (compact(Some(id), 1_048_576), legacy(&id.to_string(), "1048576")),
            (compact(None, 0), legacy("", "0")),
        ] {
            assert_eq!(identity(&new.view()), identity(&old.view()));
            assert_eq!(file(&new.view()).unwrap(), file(&old.view()).unwrap());
            assert_eq!(position(&new.view()).unwrap(), position(&old.view()).unwrap());
        }
        assert_eq!(
            identity(&compact(Some(id), 42).view()).unwrap(),
            "web-1:0123456789abcdef0011223344556677:42"
        );
        assert_eq!(
            identity(&compact(None, 42).view()).unwrap(),
            "web-1:/var/log/app.jsonl:42"
        );
    }

    #[test]
    fn an_unreadable_compact_header_is_an_error_naming_the_record_and_no_identity() {
        let broken = record(vec![(HEADER_SOURCE, vec![9, 0, 0, 0]), (HEADER_LINE_POSITION, vec![1])]);
        assert_eq!(identity(&broken.view()), None);
        let error = file(&broken.view()).unwrap_err();
        assert!(
            error.starts_with("events/2 offset 7: relay_source header has version 9"),
            "{error}"
        );
        assert!(position(&broken.view()).is_err());
    }

    #[test]
    fn records_without_source_headers_have_no_source() {
        let other = record(vec![("trace", b"x".to_vec())]);
        assert_eq!(
            (identity(&other.view()), file(&other.view()), position(&other.view())),
            (None, Ok(None), Ok(None))
        );
    }
}
