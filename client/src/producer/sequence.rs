//! Idempotence bookkeeping of one partition: the producer id and epoch a
//! batch is numbered in ([`Identity`]) and the base sequences handed out to
//! closed batches ([`Sequencer`]).
//!
//! Sequences count records per partition within one (producer id, epoch):
//! a batch of n records takes n numbers, the count starts at 0 whenever the
//! id or the epoch changes, and it wraps from `i32::MAX` to 0 as Kafka's
//! does. Without a producer id (no idempotence) batches carry sequence -1.
//! This module never talks to a broker and never renumbers a batch by
//! itself: a retried batch keeps its numbers, a batch split in two after
//! MESSAGE_TOO_LARGE hands its own range to its halves ([`sequence_after`]),
//! and only the worker decides to number batches again ([`Sequencer::rewind`]:
//! after an epoch bump, or to take back the range of a record refused as too
//! large).

/// A producer id and epoch, as InitProducerId answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Identity {
    pub producer_id: i64,
    pub epoch: i16,
}

impl Identity {
    /// No producer id: before InitProducerId, and always without idempotence.
    pub const NONE: Identity = Identity {
        producer_id: -1,
        epoch: -1,
    };
}

/// The base sequence of a batch sent without a producer id.
pub(super) const SEQUENCE_NONE: i32 = -1;

/// The next sequence of one partition, and the identity it counts in.
#[derive(Debug, Default)]
pub(super) struct Sequencer {
    next_sequence: i32,
    numbered_in: Option<Identity>,
}

impl Sequencer {
    /// The base sequence of a batch of `record_count` records closed under
    /// `identity`; the records after it start `record_count` later.
    pub fn assign(&mut self, identity: Identity, record_count: usize) -> i32 {
        if self.numbered_in != Some(identity) {
            self.numbered_in = Some(identity);
            self.next_sequence = 0;
        }
        if identity.producer_id < 0 {
            return SEQUENCE_NONE;
        }
        let base_sequence = self.next_sequence;
        self.next_sequence = sequence_after(base_sequence, record_count);
        base_sequence
    }

    /// The identity the last batch was numbered in.
    pub fn numbered_in(&self) -> Option<Identity> {
        self.numbered_in
    }

    /// Makes `next_sequence` the next base sequence under `identity`: the
    /// worker takes back sequences the broker never wrote, or numbers its
    /// queue again from where it starts.
    pub fn rewind(&mut self, identity: Identity, next_sequence: i32) {
        self.numbered_in = Some(identity);
        self.next_sequence = next_sequence;
    }
}

/// The base sequence of the batch that follows `record_count` records
/// numbered from `base_sequence`, wrapping from `i32::MAX` to 0 as Kafka's
/// broker counts. Without a producer id it stays [`SEQUENCE_NONE`].
pub(super) fn sequence_after(base_sequence: i32, record_count: usize) -> i32 {
    if base_sequence == SEQUENCE_NONE {
        return SEQUENCE_NONE;
    }
    ((i64::from(base_sequence) + record_count as i64) % (i64::from(i32::MAX) + 1)) as i32
}

/// The sequence of the record `index` places after a batch's first, as a
/// reader of the batch derives it (the encoder writes only the base).
#[cfg(test)]
pub(super) fn record_sequence(base_sequence: i32, index: usize) -> i32 {
    base_sequence.wrapping_add(index as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: Identity = Identity {
        producer_id: 7,
        epoch: 0,
    };

    #[test]
    fn sequences_advance_per_batch_by_record_count() {
        let mut sequencer = Sequencer::default();
        assert_eq!(sequencer.assign(FIRST, 3), 0);
        assert_eq!(sequencer.assign(FIRST, 5), 3);
        assert_eq!(sequencer.assign(FIRST, 1), 8);
        assert_eq!(sequencer.assign(FIRST, 1), 9);
    }

    #[test]
    fn sequences_wrap_from_i32_max_to_zero() {
        let mut sequencer = Sequencer::default();
        assert_eq!(sequencer.assign(FIRST, i32::MAX as usize - 1), 0);
        assert_eq!(sequencer.assign(FIRST, 3), i32::MAX - 1);
        // MAX - 1, MAX, then 0: the next batch starts at 1.
        assert_eq!(sequencer.assign(FIRST, 2), 1);
        assert_eq!(sequencer.assign(FIRST, 1), 3);
    }

    #[test]
    fn a_batch_ending_exactly_at_i32_max_is_followed_by_zero() {
        let mut sequencer = Sequencer::default();
        assert_eq!(sequencer.assign(FIRST, i32::MAX as usize), 0);
        assert_eq!(sequencer.assign(FIRST, 1), i32::MAX);
        assert_eq!(sequencer.assign(FIRST, 4), 0);
        assert_eq!(sequencer.assign(FIRST, 1), 4);
    }

    #[test]
    fn epoch_bump_numbers_from_zero_again() {
        let mut sequencer = Sequencer::default();
        assert_eq!(sequencer.assign(FIRST, 4), 0);
        assert_eq!(sequencer.assign(FIRST, 2), 4);
        let bumped = Identity { epoch: 1, ..FIRST };
        assert_eq!(sequencer.assign(bumped, 3), 0);
        assert_eq!(sequencer.assign(bumped, 2), 3);
    }

    #[test]
    fn rewind_hands_the_same_sequences_out_again() {
        let mut sequencer = Sequencer::default();
        assert_eq!(sequencer.assign(FIRST, 4), 0);
        assert_eq!(sequencer.assign(FIRST, 1), 4);
        assert_eq!(sequencer.assign(FIRST, 3), 5);
        // The batch at 4 was never written: the batch behind it takes 4.
        sequencer.rewind(FIRST, 4);
        assert_eq!(sequencer.numbered_in(), Some(FIRST));
        assert_eq!(sequencer.assign(FIRST, 3), 4);
        assert_eq!(sequencer.assign(FIRST, 1), 7);
        // Rewound to an old identity, a new one still starts at 0.
        sequencer.rewind(FIRST, 4);
        let bumped = Identity { epoch: 1, ..FIRST };
        assert_eq!(sequencer.assign(bumped, 3), 0);
    }

    #[test]
    fn new_producer_id_numbers_from_zero_again() {
        let mut sequencer = Sequencer::default();
        assert_eq!(sequencer.assign(FIRST, 10), 0);
        let other = Identity {
            producer_id: 8,
            epoch: 0,
        };
        assert_eq!(sequencer.assign(other, 1), 0);
        assert_eq!(sequencer.assign(other, 1), 1);
    }

    #[test]
    fn batches_without_a_producer_id_carry_no_sequence() {
        let mut sequencer = Sequencer::default();
        assert_eq!(sequencer.assign(Identity::NONE, 5), SEQUENCE_NONE);
        assert_eq!(sequencer.assign(Identity::NONE, 5), -1);
        assert_eq!(sequencer.assign(FIRST, 2), 0);
        assert_eq!(sequencer.assign(FIRST, 2), 2);
    }

    #[test]
    fn sequence_after_a_range_wraps_to_zero_and_none_stays_none() {
        assert_eq!(sequence_after(0, 3), 3);
        assert_eq!(sequence_after(i32::MAX - 1, 2), 0);
        assert_eq!(sequence_after(i32::MAX, 4), 3);
        assert_eq!(sequence_after(SEQUENCE_NONE, 4), SEQUENCE_NONE);
    }

    #[test]
    fn record_sequences_follow_the_base_and_wrap_like_the_encoder() {
        assert_eq!(record_sequence(5, 0), 5);
        assert_eq!(record_sequence(5, 3), 8);
        assert_eq!(record_sequence(i32::MAX, 1), i32::MIN);
        assert_eq!(record_sequence(SEQUENCE_NONE, 2), 1);
    }
}
