//! Sticky headers on the way out: which of a record's headers go on the
//! wire given the record before it in the same batch
//! ([`ProducerConfig::sticky_header_keys`](super::ProducerConfig)). Both the
//! size count ([`super::batch_size`]) and the encoder ([`super::batch`]) ask
//! here, so they agree byte for byte. Never encodes anything.
//!
//! The rule, for a sticky key `K` (the consumer's side is in
//! `crate::records`, which gives a record without `K` the latest value of
//! `K` before it in its batch):
//! - a record with exactly one `K`, non-null, equal to the previous record's
//!   last `K`, goes without it;
//! - a record without `K` after a record whose last `K` is non-null carries
//!   `K` with a null value, which the consumer reads as "no `K`" (so a null
//!   `K` is the same as none);
//! - the first record of a batch carries all of its headers.
//!
//! A consumer that does not know the key (kcat, librdkafka, the Java client)
//! sees `K` only where it is carried: on the first record of every run of
//! equal values in a batch.

use super::record::Outgoing;
use bytes::Bytes;

/// A header as it goes on the wire: name and value (null allowed).
pub(super) type WireHeader<'a> = (&'a [u8], Option<&'a [u8]>);

/// The headers of `record` that go on the wire after `previous` (the record
/// before it in the batch, `None` for the first), `sticky` naming the
/// sticky keys: null markers first, then the record's own headers in order
/// less those the consumer will inherit.
pub(super) fn wire_headers<'a>(
    record: &'a Outgoing,
    previous: Option<&'a Outgoing>,
    sticky: &'a [Bytes],
) -> impl Iterator<Item = WireHeader<'a>> + Clone + 'a {
    let previous = previous.filter(|_| !sticky.is_empty());
    let markers = sticky
        .iter()
        .filter(move |key| {
            previous.is_some_and(|previous| matches!(last_value(previous, key), Some(Some(_))))
                && last_value(record, key).is_none()
        })
        .map(|key| (&key[..], None));
    let own = record
        .headers
        .iter()
        .filter(move |(key, value)| !inherited(record, previous, sticky, key, value.as_ref()))
        .map(|(key, value)| (&key[..], value.as_deref()));
    markers.chain(own)
}

/// Whether the header (`key`, `value`) of `record` is left for the consumer
/// to inherit from `previous`.
fn inherited(
    record: &Outgoing,
    previous: Option<&Outgoing>,
    sticky: &[Bytes],
    key: &Bytes,
    value: Option<&Bytes>,
) -> bool {
    let Some(previous) = previous else {
        return false;
    };
    value.is_some()
        && sticky.contains(key)
        && record.headers.iter().filter(|(name, _)| name == key).count() == 1
        && last_value(previous, key).is_some_and(|before| same_value(before, value))
}

/// Whether two header values are equal: callers that share one value
/// between records (the sender's source) answer by pointer, without a
/// byte comparison.
fn same_value(a: Option<&Bytes>, b: Option<&Bytes>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b,
        (a, b) => a.is_none() && b.is_none(),
    }
}

/// The value of the last header named `key` in `record`: `None` without one.
fn last_value<'a>(record: &'a Outgoing, key: &[u8]) -> Option<Option<&'a Bytes>> {
    record
        .headers
        .iter()
        .rev()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(headers: &[(&'static str, Option<&'static str>)]) -> Outgoing {
        Outgoing {
            key: None,
            value: None,
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        Bytes::from_static(k.as_bytes()),
                        v.map(|v| Bytes::from_static(v.as_bytes())),
                    )
                })
                .collect(),
        }
    }

    fn wire<'a>(record: &'a Outgoing, previous: Option<&'a Outgoing>, sticky: &'a [Bytes]) -> Vec<WireHeader<'a>> {
        wire_headers(record, previous, sticky).collect()
    }

    #[allow(clippy::declare_interior_mutable_const)]
    const SRC: Bytes = Bytes::from_static(b"src");
    static STICKY_KEYS: [Bytes; 1] = [SRC];
    const STICKY: &[Bytes] = &STICKY_KEYS;

    #[test]
    fn an_equal_sticky_header_goes_only_on_the_first_record_of_its_run() {
        let first = record(&[("src", Some("a")), ("p", Some("1"))]);
        let second = record(&[("src", Some("a")), ("p", Some("2"))]);
        let third = record(&[("src", Some("b")), ("p", Some("3"))]);
        assert_eq!(
            wire(&first, None, STICKY),
            vec![(&b"src"[..], Some(&b"a"[..])), (b"p", Some(b"1"))]
        );
        assert_eq!(wire(&second, Some(&first), STICKY), vec![(&b"p"[..], Some(&b"2"[..]))]);
        assert_eq!(wire(&third, Some(&second), STICKY).len(), 2, "a new value is carried");
    }

    #[test]
    fn without_sticky_keys_every_header_goes() {
        let first = record(&[("src", Some("a"))]);
        assert_eq!(wire(&first, Some(&first), &[]).len(), 1);
    }

    #[test]
    fn a_record_without_the_key_after_one_with_it_carries_a_null_marker() {
        let with = record(&[("src", Some("a"))]);
        let without = record(&[("p", Some("2"))]);
        assert_eq!(
            wire(&without, Some(&with), STICKY),
            vec![(&b"src"[..], None), (b"p", Some(&b"2"[..]))]
        );
        assert_eq!(
            wire(&without, Some(&without), STICKY),
            vec![(&b"p"[..], Some(&b"2"[..]))]
        );
    }

    #[test]
    fn repeated_or_null_sticky_headers_are_always_carried() {
        let twice = record(&[("src", Some("a")), ("src", Some("a"))]);
        assert_eq!(wire(&twice, Some(&twice), STICKY).len(), 2);
        let null = record(&[("src", None)]);
        assert_eq!(wire(&null, Some(&null), STICKY), vec![(&b"src"[..], None)]);
    }

    /// Records of generated shapes: a sticky value drawn from a few (or none,
    /// or null) first, then a per-record header.
    fn generated(shapes: &[Option<Option<u8>>]) -> Vec<crate::producer::record::ProducerRecord> {
        shapes
            .iter()
            .enumerate()
            .map(|(index, shape)| {
                let mut headers = Vec::new();
                if let Some(value) = shape {
                    headers.push(("src".to_owned(), value.map(|v| Bytes::from(vec![v; 3]))));
                }
                headers.push(("p".to_owned(), Some(Bytes::from(index.to_string()))));
                crate::producer::record::ProducerRecord {
                    topic: "events".into(),
                    value: Some(Bytes::from(format!("line {index}"))),
                    headers,
                    ..Default::default()
                }
            })
            .collect()
    }

    proptest::proptest! {
        /// Whatever the runs of values, a consumer naming the key reads
        /// every record with the sticky header it was produced with (a null
        /// one reads as none), from any offset, under every codec.
        #[test]
        fn a_consumer_naming_the_key_reads_every_record_as_produced(
            shapes in proptest::collection::vec(
                proptest::option::of(proptest::option::of(0u8..3)), 1..40),
            from_fraction in 0.0f64..1.0,
            codec in 0usize..2,
        ) {
            use crate::producer::batch::{encode, Batch};
            use crate::producer::record::queued_for_test;
            use crate::producer::sequence::Identity;
            use kafka_protocol::records::Compression;
            let records = generated(&shapes);
            let batch = Batch {
                records: records.iter().map(|r| queued_for_test(r.clone(), 1_000)).collect(),
                base_sequence: 0,
                identity: Identity::NONE,
            };
            let compression = [Compression::None, Compression::Lz4][codec];
            let sticky_keys = [Bytes::from_static(b"src")];
            let encoded = encode(&batch, compression, &sticky_keys, "events", 0).unwrap();
            let from = (from_fraction * records.len() as f64) as i64;
            let (decoded, _) = crate::records::decode("events", 0, &encoded, from, &sticky_keys).unwrap();
            let expected: Vec<Vec<(String, Option<Bytes>)>> = records[from as usize..]
                .iter()
                .map(|r| r.headers.iter().filter(|(_, v)| v.is_some()).cloned().collect())
                .collect();
            let seen: Vec<Vec<(String, Option<Bytes>)>> = decoded.iter().map(|r| r.to_owned().headers).collect();
            proptest::prop_assert_eq!(seen, expected);
        }
    }
}
