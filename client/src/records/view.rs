//! Fetched records held once and lent out: [`Records`] keeps a poll's
//! buffers (the fetched bytes of each partition, a decompressed copy of each
//! compressed batch), the topic once per partition as an `Arc<str>`, and per
//! record a fixed-size slot of offsets into those buffers; headers of every
//! record live in one shared list of spans. [`RecordView`] reads a slot
//! back as slices, with no allocation; [`RecordView::to_owned`] makes the
//! owned [`ConsumerRecord`] for a caller that keeps records apart from
//! their poll.

use super::ConsumerRecord;
use bytes::Bytes;
use std::sync::Arc;

/// Where a part of a record lies in its buffer (`len == NONE_LEN`: null).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    start: u32,
    len: u32,
}

/// `Span::len` of a null key, value or header value.
const NONE_LEN: u32 = u32::MAX;

/// The largest buffer records are placed in (spans are 32-bit offsets; a
/// Fetch response is bounded by an i32 byte count anyway).
pub(super) const BUFFER_BYTES_MAX: usize = u32::MAX as usize - 1;

impl Span {
    pub(super) const NONE: Span = Span {
        start: 0,
        len: NONE_LEN,
    };

    /// The span of `part`, a slice inside `buffer` (None: null).
    pub(super) fn within(buffer: &[u8], part: Option<&[u8]>) -> Span {
        match part {
            None => Span::NONE,
            Some(part) => Span {
                start: (part.as_ptr() as usize - buffer.as_ptr() as usize) as u32,
                len: part.len() as u32,
            },
        }
    }

    /// The span of `bytes` appended at the end of `buffer`.
    pub(super) fn appended(buffer: &mut bytes::BytesMut, bytes: Option<&[u8]>) -> Span {
        let start = buffer.len() as u32;
        match bytes {
            None => Span::NONE,
            Some(bytes) => {
                buffer.extend_from_slice(bytes);
                Span {
                    start,
                    len: bytes.len() as u32,
                }
            }
        }
    }

    pub(super) fn is_some(self) -> bool {
        self.len != NONE_LEN
    }

    pub(super) fn of(self, buffer: &[u8]) -> Option<&[u8]> {
        self.is_some()
            .then(|| &buffer[self.start as usize..self.start as usize + self.len as usize])
    }
}

/// One header: its name and value in the record's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HeaderSpan {
    pub name: Span,
    pub value: Span,
}

/// A buffer records point into, with the partition they came from.
#[derive(Debug)]
pub(super) struct Part {
    pub topic: Arc<str>,
    pub partition: i32,
    pub buffer: Bytes,
}

/// One record: where its parts lie in its `Part`'s buffer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub part: u32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Span,
    pub value: Span,
    /// Its headers' range in `Records::headers`.
    pub headers: (u32, u32),
    /// 1 + its index in `Records::reasons` when undecodable; 0 otherwise.
    pub undecodable: u32,
}

/// The records of one poll, in fetch order (runs per partition), owning
/// the buffers they point into.
#[derive(Debug, Default)]
pub struct Records {
    pub(super) parts: Vec<Part>,
    pub(super) slots: Vec<Slot>,
    pub(super) headers: Vec<HeaderSpan>,
    pub(super) reasons: Vec<String>,
}

impl Records {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<RecordView<'_>> {
        self.slots.get(index).map(|slot| self.view(slot))
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = RecordView<'_>> + ExactSizeIterator + '_ {
        self.slots.iter().map(|slot| self.view(slot))
    }

    /// Owned copies of every record (allocates per record: for callers
    /// that keep records apart from their poll, and tests).
    pub fn to_owned_records(&self) -> Vec<ConsumerRecord> {
        self.iter().map(|record| record.to_owned()).collect()
    }

    fn view(&self, slot: &Slot) -> RecordView<'_> {
        let part = &self.parts[slot.part as usize];
        let buffer = &part.buffer[..];
        let (first, end) = slot.headers;
        RecordView {
            topic: &part.topic,
            shared: Some(&part.topic),
            partition: part.partition,
            offset: slot.offset,
            timestamp_ms: slot.timestamp_ms,
            key: slot.key.of(buffer),
            value: slot.value.of(buffer),
            undecodable: slot
                .undecodable
                .checked_sub(1)
                .map(|index| self.reasons[index as usize].as_str()),
            headers: HeaderList::Spans {
                buffer,
                spans: &self.headers[first as usize..end as usize],
            },
            buffer: Some(&part.buffer),
        }
    }
}

impl<'a> IntoIterator for &'a Records {
    type Item = RecordView<'a>;
    type IntoIter = Box<dyn Iterator<Item = RecordView<'a>> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// Owned copies, for `Vec::extend` in tests and callers that keep records.
impl IntoIterator for Records {
    type Item = ConsumerRecord;
    type IntoIter = std::vec::IntoIter<ConsumerRecord>;

    fn into_iter(self) -> Self::IntoIter {
        self.to_owned_records().into_iter()
    }
}

/// A record lent by its [`Records`] (or by a [`ConsumerRecord`]): slices
/// of the fetched buffers, nothing copied.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'p> {
    /// The topic, lent by the poll's one `Arc<str>` per partition.
    pub topic: &'p str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<&'p [u8]>,
    pub value: Option<&'p [u8]>,
    /// As [`ConsumerRecord::undecodable`].
    pub undecodable: Option<&'p str>,
    headers: HeaderList<'p>,
    /// The buffer `key` and `value` lie in, for owned copies without a copy.
    buffer: Option<&'p Bytes>,
    /// The poll's topic, for [`RecordView::shared_topic`].
    shared: Option<&'p Arc<str>>,
}

#[derive(Debug, Clone, Copy)]
enum HeaderList<'p> {
    Spans { buffer: &'p [u8], spans: &'p [HeaderSpan] },
    Owned(&'p [(String, Option<Bytes>)]),
}

impl<'p> RecordView<'p> {
    /// The headers in order, as (name, value) slices.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&'p [u8], Option<&'p [u8]>)> + 'p {
        let list = self.headers;
        (0..self.header_count()).map(move |index| match list {
            HeaderList::Spans { buffer, spans } => {
                let header = spans[index];
                (header.name.of(buffer).unwrap_or_default(), header.value.of(buffer))
            }
            HeaderList::Owned(headers) => {
                let (name, value) = &headers[index];
                (name.as_bytes(), value.as_deref())
            }
        })
    }

    pub fn header_count(&self) -> usize {
        match self.headers {
            HeaderList::Spans { spans, .. } => spans.len(),
            HeaderList::Owned(headers) => headers.len(),
        }
    }

    /// The value of the first header named `name` (None: absent or null).
    pub fn header(&self, name: &str) -> Option<&'p [u8]> {
        self.headers()
            .find(|(key, _)| *key == name.as_bytes())
            .and_then(|(_, value)| value)
    }

    /// The topic as the poll holds it (shared, no copy), for a caller that
    /// keeps it past the poll; allocated for a view of a `ConsumerRecord`.
    pub fn shared_topic(&self) -> Arc<str> {
        self.shared.map_or_else(|| Arc::from(self.topic), Arc::clone)
    }

    /// An owned copy: key, value and header values share the fetched
    /// buffer (no byte copy); topic, header names and the reason are
    /// allocated.
    pub fn to_owned(&self) -> ConsumerRecord {
        let bytes = |part: Option<&[u8]>| {
            part.map(|part| match self.buffer {
                Some(buffer) => buffer.slice_ref(part),
                None => Bytes::copy_from_slice(part),
            })
        };
        ConsumerRecord {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset: self.offset,
            timestamp_ms: self.timestamp_ms,
            key: bytes(self.key),
            value: bytes(self.value),
            headers: self
                .headers()
                .map(|(name, value)| (String::from_utf8_lossy(name).into_owned(), bytes(value)))
                .collect(),
            undecodable: self.undecodable.map(str::to_owned),
        }
    }
}

impl ConsumerRecord {
    /// This record as a view, for code that takes views.
    pub fn view(&self) -> RecordView<'_> {
        RecordView {
            topic: &self.topic,
            shared: None,
            partition: self.partition,
            offset: self.offset,
            timestamp_ms: self.timestamp_ms,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            undecodable: self.undecodable.as_deref(),
            headers: HeaderList::Owned(&self.headers),
            buffer: None,
        }
    }
}

impl From<Vec<ConsumerRecord>> for Records {
    /// Records from owned ones (tests, and callers that build records):
    /// each record's bytes are copied into a buffer of its own.
    fn from(records: Vec<ConsumerRecord>) -> Self {
        let mut out = Records::default();
        let mut topics: Vec<Arc<str>> = Vec::new();
        for record in records {
            let topic = match topics.iter().find(|topic| ***topic == *record.topic) {
                Some(topic) => Arc::clone(topic),
                None => {
                    topics.push(Arc::from(record.topic.as_str()));
                    Arc::clone(topics.last().expect("just pushed"))
                }
            };
            let mut buffer = bytes::BytesMut::new();
            let key = Span::appended(&mut buffer, record.key.as_deref());
            let value = Span::appended(&mut buffer, record.value.as_deref());
            let first = out.headers.len() as u32;
            for (name, header) in &record.headers {
                out.headers.push(HeaderSpan {
                    name: Span::appended(&mut buffer, Some(name.as_bytes())),
                    value: Span::appended(&mut buffer, header.as_deref()),
                });
            }
            let undecodable = match record.undecodable {
                Some(reason) => {
                    out.reasons.push(reason);
                    out.reasons.len() as u32
                }
                None => 0,
            };
            out.slots.push(Slot {
                part: out.parts.len() as u32,
                offset: record.offset,
                timestamp_ms: record.timestamp_ms,
                key,
                value,
                headers: (first, out.headers.len() as u32),
                undecodable,
            });
            out.parts.push(Part {
                topic,
                partition: record.partition,
                buffer: buffer.freeze(),
            });
        }
        out
    }
}
