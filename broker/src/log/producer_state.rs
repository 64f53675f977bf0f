//! Idempotent-producer state of one partition: per producer id, its epoch
//! and the last [`BATCHES_PER_PRODUCER_MAX`] batches it appended, so a retried
//! batch is recognised and answered with its original offset instead of being
//! written twice. Rebuilt from batch headers when a partition opens; this
//! module itself does no I/O.
//!
//! Rules, as Kafka's broker applies them to non-transactional producers:
//! - a batch equal (first and last sequence) to a remembered one is a duplicate;
//! - an older epoch is fenced; a newer epoch must start at sequence 0;
//! - otherwise the batch must continue the last sequence (wrapping at i32::MAX);
//! - a producer this partition never saw must start at sequence 0.

use crate::log::error::{LogError, Result};
use relay_proto::BatchHeader;
use std::collections::{HashMap, VecDeque};

/// Batches remembered per producer: Kafka clients keep at most 5 requests in
/// flight per partition with idempotence on, so a retry is always one of the
/// last 5 batches.
pub const BATCHES_PER_PRODUCER_MAX: usize = 5;

/// Offsets and sequences of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSequence {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchSequence>,
}

/// Outcome of checking a batch against the producer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not idempotent, or the next batch in order: append it.
    Append,
    /// Already appended: answer with these offsets and append nothing.
    Duplicate(BatchSequence),
}

#[derive(Debug, Clone, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

impl ProducerStates {
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Decides what to do with a batch before it is appended.
    pub fn check(&self, header: &BatchHeader<'_>) -> Result<SequenceCheck> {
        if !header.has_producer_id() {
            return Ok(SequenceCheck::Append);
        }
        let producer_id = header.producer_id();
        let epoch = header.producer_epoch();
        let first_sequence = header.base_sequence();
        let Some(entry) = self.producers.get(&producer_id) else {
            if first_sequence == 0 {
                return Ok(SequenceCheck::Append);
            }
            return Err(LogError::UnknownProducerId {
                producer_id,
                sequence: first_sequence,
            });
        };
        if epoch < entry.epoch {
            return Err(LogError::ProducerFenced {
                producer_id,
                epoch,
                current_epoch: entry.epoch,
            });
        }
        if epoch > entry.epoch {
            if first_sequence == 0 {
                return Ok(SequenceCheck::Append);
            }
            return Err(LogError::OutOfOrderSequence {
                producer_id,
                expected: 0,
                received: first_sequence,
            });
        }
        let last_sequence = header.last_sequence();
        if let Some(original) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == first_sequence && b.last_sequence == last_sequence)
        {
            return Ok(SequenceCheck::Duplicate(*original));
        }
        let expected = entry.batches.back().map_or(0, |b| next_sequence(b.last_sequence));
        if first_sequence != expected {
            return Err(LogError::OutOfOrderSequence {
                producer_id,
                expected,
                received: first_sequence,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records a batch that was appended (or found in the log on recovery),
    /// whose header carries its assigned base offset.
    pub fn record(&mut self, header: &BatchHeader<'_>) {
        if !header.has_producer_id() {
            return;
        }
        let entry = self.producers.entry(header.producer_id()).or_default();
        if header.producer_epoch() != entry.epoch {
            entry.epoch = header.producer_epoch();
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_PER_PRODUCER_MAX {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchSequence {
            first_sequence: header.base_sequence(),
            last_sequence: header.last_sequence(),
            first_offset: header.base_offset(),
            last_offset: header.last_offset(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relay_proto::batch::patch_base_offset;
    use relay_proto::{BatchBuilder, RecordSpec};

    fn batch(producer_id: i64, epoch: i16, sequence: i32, records: usize, base_offset: i64) -> Vec<u8> {
        let mut builder = BatchBuilder::new(0).producer(producer_id, epoch, sequence);
        for _ in 0..records {
            builder.push(RecordSpec::value(b"x".to_vec()));
        }
        let mut bytes = builder.build();
        patch_base_offset(&mut bytes, base_offset);
        bytes
    }

    fn header(bytes: &[u8]) -> BatchHeader<'_> {
        BatchHeader::parse_whole(bytes).unwrap().unwrap()
    }

    #[test]
    fn retried_batch_is_a_duplicate_with_its_original_offsets() {
        let mut states = ProducerStates::default();
        let first = batch(1, 0, 0, 3, 100);
        assert_eq!(states.check(&header(&first)).unwrap(), SequenceCheck::Append);
        states.record(&header(&first));
        let second = batch(1, 0, 3, 2, 103);
        states.record(&header(&second));
        let retry = batch(1, 0, 0, 3, 0);
        assert_eq!(
            states.check(&header(&retry)).unwrap(),
            SequenceCheck::Duplicate(BatchSequence {
                first_sequence: 0,
                last_sequence: 2,
                first_offset: 100,
                last_offset: 102
            })
        );
    }

    #[test]
    fn gaps_and_unknown_producers_are_refused() {
        let mut states = ProducerStates::default();
        assert!(matches!(
            states.check(&header(&batch(9, 0, 5, 1, 0))),
            Err(LogError::UnknownProducerId { .. })
        ));
        states.record(&header(&batch(9, 0, 0, 1, 0)));
        assert!(matches!(
            states.check(&header(&batch(9, 0, 2, 1, 0))),
            Err(LogError::OutOfOrderSequence {
                expected: 1,
                received: 2,
                ..
            })
        ));
        assert_eq!(
            states.check(&header(&batch(9, 0, 1, 1, 0))).unwrap(),
            SequenceCheck::Append
        );
    }

    #[test]
    fn epochs_fence_and_reset() {
        let mut states = ProducerStates::default();
        states.record(&header(&batch(4, 2, 0, 1, 0)));
        assert!(matches!(
            states.check(&header(&batch(4, 1, 1, 1, 0))),
            Err(LogError::ProducerFenced { .. })
        ));
        assert!(matches!(
            states.check(&header(&batch(4, 3, 1, 1, 0))),
            Err(LogError::OutOfOrderSequence { .. })
        ));
        assert_eq!(
            states.check(&header(&batch(4, 3, 0, 1, 0))).unwrap(),
            SequenceCheck::Append
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut states = ProducerStates::default();
        for n in 0..7 {
            states.record(&header(&batch(1, 0, n, 1, i64::from(n))));
        }
        assert!(matches!(
            states.check(&header(&batch(1, 0, 2, 1, 0))),
            Ok(SequenceCheck::Duplicate(_))
        ));
        assert!(matches!(
            states.check(&header(&batch(1, 0, 1, 1, 0))),
            Err(LogError::OutOfOrderSequence { .. })
        ));
    }
}
