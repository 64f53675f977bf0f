//! The batch a partition worker is filling ([`OpenBatch`]) and the size rule
//! that closes it: a record that would take the encoded batch past
//! `batch_bytes_max` closes the batch without it and starts the next one, so
//! a closed batch is never larger than the cap, unless it is one record
//! larger than the cap on its own. Sizes are [`super::batch_size`]'s count of
//! the encoding. Closing by age (`linger`) and numbering are the worker's.

use super::batch_size::{BatchSize, Next};
use super::inbox::Inbox;
use super::record::{Queued, TIMESTAMP_UNSET};
use bytes::Bytes;
use relay_proto::clock::now_ms;
use std::time::Instant;

/// The records gathered into the next batch.
#[derive(Default)]
pub(super) struct OpenBatch {
    records: Vec<Queued>,
    size: BatchSize,
    since: Option<Instant>,
}

impl OpenBatch {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// When the first record came in.
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// Whether the batch is at the cap (or one record past it on its own)
    /// and must be closed before it takes in anything else.
    pub fn is_full(&self, batch_bytes_max: usize) -> bool {
        self.size.bytes() >= batch_bytes_max
    }

    /// Takes in `first` and everything already queued behind it while the
    /// batch has room: one pass of the worker's loop per drain, not per
    /// record. Records without a timestamp get this drain's clock reading.
    ///
    /// Returns the records of a batch closed on the way: the one a record
    /// would have taken past `batch_bytes_max`. That record then starts the
    /// open batch, and the drain stops there. `sticky` names the sticky
    /// header keys, which the count leaves out where the encoding will.
    pub fn take_in(
        &mut self,
        first: Queued,
        queue: &mut Inbox,
        batch_bytes_max: usize,
        sticky: &[Bytes],
    ) -> Option<Vec<Queued>> {
        let now = now_ms();
        let mut closed = None;
        let mut next = Some(first);
        while let Some(mut queued) = next.take() {
            if queued.timestamp_ms == TIMESTAMP_UNSET {
                queued.timestamp_ms = now;
            }
            let added = self.size.with(
                Next {
                    record: &queued.record,
                    previous: self.records.last().map(|previous| &previous.record),
                    sticky,
                },
                queued.timestamp_ms,
            );
            if !self.records.is_empty() && added.bytes() > batch_bytes_max {
                closed = Some(self.take());
                let first = Next {
                    record: &queued.record,
                    previous: None,
                    sticky,
                };
                self.size.add(first, queued.timestamp_ms);
            } else {
                self.size = added;
            }
            self.records.push(queued);
            self.since.get_or_insert_with(Instant::now);
            if closed.is_none() && !self.is_full(batch_bytes_max) {
                next = queue.try_next();
            }
        }
        closed
    }

    /// The records, leaving the batch empty.
    pub fn take(&mut self) -> Vec<Queued> {
        std::mem::take(self).records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::record::{queued_for_test, ProducerRecord};
    use bytes::Bytes;
    use relay_proto::batch::HEADER_BYTES;
    use tokio::sync::mpsc;

    /// A queue of records one at a time, as `send` puts them.
    struct Queue(mpsc::Sender<Vec<Queued>>);

    impl Queue {
        fn try_send(&self, queued: Queued) -> Result<(), ()> {
            self.0.try_send(vec![queued]).map_err(|_| ())
        }
    }

    fn channel(capacity: usize) -> (Queue, Inbox) {
        let (sender, receiver) = mpsc::channel(capacity);
        (Queue(sender), Inbox::new(receiver))
    }

    const T0_MS: i64 = 1_767_225_600_000;

    /// A record whose batch-of-one encodes to exactly `batch_bytes` bytes:
    /// 61 header + 2 length + 1 attributes + 1 timestamp + 1 offset + 1 null
    /// key + 2 value length + value + 1 header count. The value stays where
    /// both varints take 2 bytes, the count's guess included (body + 10 <
    /// 8,192).
    fn sized(batch_bytes: usize) -> Queued {
        let value_bytes = batch_bytes - HEADER_BYTES - 9;
        assert!((64..8_175).contains(&value_bytes));
        let record = ProducerRecord {
            topic: "events".into(),
            value: Some(Bytes::from(vec![b'v'; value_bytes])),
            ..ProducerRecord::default()
        };
        queued_for_test(record, T0_MS)
    }

    /// Bytes a sized record adds to a batch that already has one
    /// (it brings no second header).
    fn added(batch_bytes: usize) -> usize {
        batch_bytes - HEADER_BYTES
    }

    fn lengths(records: &[Queued]) -> Vec<usize> {
        records
            .iter()
            .map(|queued| queued.record.value.as_ref().unwrap().len())
            .collect()
    }

    #[test]
    fn a_batch_exactly_at_the_cap_takes_every_record_and_is_full() {
        let cap = 1_000 + added(500) + added(700);
        let (sender, mut queue) = channel(8);
        sender.try_send(sized(500)).unwrap();
        sender.try_send(sized(700)).unwrap();
        let mut open = OpenBatch::default();
        assert!(open.take_in(sized(1_000), &mut queue, cap, &[]).is_none());
        assert_eq!(open.size.bytes(), cap);
        assert!(open.is_full(cap));
        assert_eq!(open.take().len(), 3);
    }

    #[test]
    fn the_record_that_would_pass_the_cap_closes_the_batch_before_it() {
        let cap = 1_000 + added(500) + added(700) - 1;
        let (sender, mut queue) = channel(8);
        sender.try_send(sized(500)).unwrap();
        sender.try_send(sized(700)).unwrap();
        sender.try_send(sized(300)).unwrap();
        let mut open = OpenBatch::default();
        let closed = open
            .take_in(sized(1_000), &mut queue, cap, &[])
            .expect("a batch closes");
        assert_eq!(lengths(&closed), vec![1_000 - 70, 500 - 70]);
        assert_eq!(
            lengths(&open.records),
            vec![700 - 70],
            "the record that did not fit starts the next batch"
        );
        assert_eq!(open.size.bytes(), 700);
        assert!(open.since().is_some());
        // The drain stopped at the closed batch: the next record is still queued.
        let next = open.take_in(queue.try_next().unwrap(), &mut queue, cap, &[]);
        assert!(next.is_none());
        assert_eq!(open.size.bytes(), 700 + added(300));
    }

    #[test]
    fn a_record_larger_than_the_cap_goes_alone() {
        let cap = 2_000;
        let (sender, mut queue) = channel(8);
        sender.try_send(sized(5_000)).unwrap();
        sender.try_send(sized(200)).unwrap();
        let mut open = OpenBatch::default();
        let closed = open
            .take_in(sized(200), &mut queue, cap, &[])
            .expect("the large record closes the small batch");
        assert_eq!(lengths(&closed), vec![130]);
        assert_eq!(lengths(&open.records), vec![4_930]);
        assert!(open.is_full(cap), "the large record is closed on its own at once");
        let _ = open.take();
        // Arriving first, it takes nothing in behind it either.
        sender.try_send(sized(200)).unwrap();
        assert!(open.take_in(sized(5_000), &mut queue, cap, &[]).is_none());
        assert_eq!(lengths(&open.records), vec![4_930]);
        assert!(open.is_full(cap));
        assert_eq!(
            lengths(&[queue.try_next().unwrap(), queue.try_next().unwrap()]),
            vec![130, 130]
        );
    }

    #[test]
    fn records_without_a_timestamp_get_the_drains_clock() {
        let record = ProducerRecord {
            topic: "events".into(),
            value: Some(Bytes::from_static(b"v")),
            ..ProducerRecord::default()
        };
        let (_sender, mut queue) = channel(1);
        let mut open = OpenBatch::default();
        let before = now_ms();
        open.take_in(queued_for_test(record, TIMESTAMP_UNSET), &mut queue, 1_000, &[]);
        assert!(open.records[0].timestamp_ms >= before);
    }
}
