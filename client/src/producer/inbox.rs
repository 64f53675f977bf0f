//! A partition worker's inbox ([`Inbox`]): the channel `send` and
//! `send_batch` put records on, a run of records per message (one for
//! `send`, a batch's share of the partition for `send_batch`), handed to the
//! worker one record at a time in the order they were queued. Never batches
//! or sends anything.

use super::record::Queued;
use std::collections::VecDeque;
use tokio::sync::mpsc;

pub(super) struct Inbox {
    queue: mpsc::Receiver<Vec<Queued>>,
    /// What is left of the run last taken off the channel.
    pending: VecDeque<Queued>,
}

impl Inbox {
    pub fn new(queue: mpsc::Receiver<Vec<Queued>>) -> Self {
        Self {
            queue,
            pending: VecDeque::new(),
        }
    }

    /// The next record if one is queued, without waiting.
    pub fn try_next(&mut self) -> Option<Queued> {
        loop {
            if let Some(queued) = self.pending.pop_front() {
                return Some(queued);
            }
            self.pending = self.queue.try_recv().ok()?.into();
        }
    }

    /// The next record; `None` once every sender is gone and all is taken.
    pub async fn next(&mut self) -> Option<Queued> {
        loop {
            if let Some(queued) = self.pending.pop_front() {
                return Some(queued);
            }
            self.pending = self.queue.recv().await?.into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::record::{queued_for_test, ProducerRecord};
    use bytes::Bytes;

    fn queued(value: &'static str) -> Queued {
        let record = ProducerRecord {
            value: Some(Bytes::from_static(value.as_bytes())),
            ..ProducerRecord::default()
        };
        queued_for_test(record, 0)
    }

    fn value(queued: Option<Queued>) -> Option<Bytes> {
        queued.and_then(|queued| queued.record.value)
    }

    #[tokio::test]
    async fn runs_come_out_one_record_at_a_time_in_queue_order() {
        let (sender, receiver) = mpsc::channel(4);
        let mut inbox = Inbox::new(receiver);
        sender.try_send(vec![queued("a"), queued("b")]).unwrap();
        sender.try_send(vec![]).unwrap();
        sender.try_send(vec![queued("c")]).unwrap();
        assert_eq!(value(inbox.try_next()), Some(Bytes::from_static(b"a")));
        assert_eq!(value(inbox.next().await), Some(Bytes::from_static(b"b")));
        assert_eq!(value(inbox.try_next()), Some(Bytes::from_static(b"c")));
        assert!(inbox.try_next().is_none());
        drop(sender);
        assert!(inbox.next().await.is_none());
    }
}
