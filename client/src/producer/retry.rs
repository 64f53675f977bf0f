//! The partition worker's retry policy, as pure decisions: what a produce
//! answer means for the oldest batch in flight ([`verdict`]: acknowledge,
//! retry, renumber, split a batch refused as too large, or fail), the order
//! in which batches are sent again after a failure ([`resend_order`]), and
//! how long to wait between attempts ([`backoff_delay`]). Never sends,
//! sleeps, splits or renumbers anything itself.

use crate::error::{ClientError, Result};
use kafka_protocol::error::ResponseError;
use std::collections::VecDeque;
use std::time::Duration;

/// Prometheus counter of produce attempts retried after a retriable error
/// (a batch retried, or a topic's metadata asked again), by topic.
pub const RETRIES_METRIC: &str = "relay_producer_retries_total";

/// The shortest wait between two attempts on a failing partition.
pub(super) const BACKOFF_MIN: Duration = Duration::from_millis(100);

/// What to do with the oldest in-flight batch once its answer is in.
#[derive(Debug)]
pub(super) enum Verdict {
    /// Written (or already written: DUPLICATE_SEQUENCE_NUMBER) at this base
    /// offset, -1 when the broker did not say.
    Acknowledged { base_offset: i64 },
    /// The broker lost this producer's sequence: bump the epoch and number
    /// the batch again.
    SequenceLost(ResponseError),
    /// Send the batch again, unchanged, after a metadata refresh.
    Retry(ClientError),
    /// The broker refused the batch, of several records, as too large: send
    /// its two halves in its place, at once.
    Split(ResponseError),
    /// Fail the batch's records with this error.
    Fail(ClientError),
}

/// The oldest in-flight batch, as much of it as a verdict depends on.
#[derive(Debug, Clone, Copy)]
pub(super) struct SentShape {
    pub records: usize,
    pub encoded_bytes: usize,
}

/// Judges a partition's answer to the batch `sent`: its
/// `(error_code, base_offset)`, or the error that stopped the request.
pub(super) fn verdict(answer: Result<(i16, i64)>, topic: &str, partition: i32, sent: SentShape) -> Verdict {
    match answer {
        Ok((code, base_offset)) => match ResponseError::try_from_code(code) {
            None | Some(ResponseError::DuplicateSequenceNumber) => Verdict::Acknowledged { base_offset },
            Some(
                error @ (ResponseError::OutOfOrderSequenceNumber
                | ResponseError::UnknownProducerId
                | ResponseError::InvalidProducerEpoch),
            ) => Verdict::SequenceLost(error),
            Some(error @ (ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge)) if sent.records > 1 => {
                Verdict::Split(error)
            }
            Some(error @ (ResponseError::MessageTooLarge | ResponseError::RecordListTooLarge)) => {
                let context = format!(
                    "producing a record of {} bytes (as a batch of one) to {topic}/{partition}: the broker accepts \
                     less (its message_bytes_max, Kafka's max.message.bytes)",
                    sent.encoded_bytes
                );
                Verdict::Fail(ClientError::broker(context, error))
            }
            Some(error) => {
                let error = ClientError::broker(format!("producing to {topic}/{partition}"), error);
                if error.is_retriable() {
                    Verdict::Retry(error)
                } else {
                    Verdict::Fail(error)
                }
            }
        },
        Err(error) if error.is_retriable() => Verdict::Retry(error),
        Err(error) => Verdict::Fail(error),
    }
}

/// After the oldest in-flight batch failed: that batch first (or the halves
/// it was split into), then the batches that were in flight behind it, then
/// those not yet sent, so the broker sees every sequence in order again.
pub(super) fn resend_order<T>(
    failed: impl IntoIterator<Item = T>,
    in_flight: impl IntoIterator<Item = T>,
    ready: VecDeque<T>,
) -> VecDeque<T> {
    let mut again: VecDeque<T> = VecDeque::with_capacity(2 + ready.len());
    again.extend(failed);
    again.extend(in_flight);
    again.extend(ready);
    again
}

/// The wait before the next attempt on a partition failing for
/// `failing_for`: half that, at least [`BACKOFF_MIN`], at most `backoff_max`.
pub(super) fn backoff_delay(failing_for: Duration, backoff_max: Duration) -> Duration {
    BACKOFF_MIN.max(failing_for / 2).min(backoff_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEVERAL: SentShape = SentShape {
        records: 4,
        encoded_bytes: 2_000,
    };

    fn judge(code: i16) -> Verdict {
        verdict(Ok((code, 500)), "events", 3, SEVERAL)
    }

    #[test]
    fn success_and_duplicate_sequence_both_acknowledge() {
        assert!(matches!(judge(0), Verdict::Acknowledged { base_offset: 500 }));
        assert!(matches!(
            judge(ResponseError::DuplicateSequenceNumber.code()),
            Verdict::Acknowledged { base_offset: 500 }
        ));
        assert!(matches!(
            verdict(Ok((0, -1)), "events", 3, SEVERAL),
            Verdict::Acknowledged { base_offset: -1 }
        ));
    }

    #[test]
    fn lost_sequence_errors_ask_for_an_epoch_bump() {
        for error in [
            ResponseError::OutOfOrderSequenceNumber,
            ResponseError::UnknownProducerId,
            ResponseError::InvalidProducerEpoch,
        ] {
            match judge(error.code()) {
                Verdict::SequenceLost(seen) => assert_eq!(seen, error),
                other => panic!("{error:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn retriable_broker_errors_retry_and_others_fail() {
        match judge(ResponseError::NotLeaderOrFollower.code()) {
            Verdict::Retry(error) => assert_eq!(
                error.to_string(),
                format!(
                    "producing to events/3: {} (Kafka error code 6)",
                    ResponseError::NotLeaderOrFollower
                )
            ),
            other => panic!("NOT_LEADER_OR_FOLLOWER gave {other:?}"),
        }
        assert!(matches!(
            judge(ResponseError::TopicAuthorizationFailed.code()),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn too_large_batch_of_several_records_is_split() {
        for error in [ResponseError::MessageTooLarge, ResponseError::RecordListTooLarge] {
            match judge(error.code()) {
                Verdict::Split(seen) => assert_eq!(seen, error),
                other => panic!("{error:?} gave {other:?}"),
            }
        }
        let two = SentShape {
            records: 2,
            encoded_bytes: 1_048_700,
        };
        let answer = verdict(Ok((ResponseError::MessageTooLarge.code(), -1)), "events", 3, two);
        assert!(matches!(answer, Verdict::Split(ResponseError::MessageTooLarge)));
    }

    #[test]
    fn too_large_single_record_fails_as_record_too_large() {
        let one = SentShape {
            records: 1,
            encoded_bytes: 2_097_230,
        };
        for error in [ResponseError::MessageTooLarge, ResponseError::RecordListTooLarge] {
            match verdict(Ok((error.code(), -1)), "events", 3, one) {
                Verdict::Fail(failure) => {
                    assert!(failure.is_record_too_large());
                    assert!(!failure.is_retriable());
                    assert_eq!(
                        failure.to_string(),
                        format!(
                            "producing a record of 2097230 bytes (as a batch of one) to events/3: the broker accepts \
                             less (its message_bytes_max, Kafka's max.message.bytes): {error} (Kafka error code {})",
                            error.code()
                        )
                    );
                }
                other => panic!("{error:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn lost_connections_retry_and_invalid_answers_fail() {
        let lost = ClientError::Disconnected {
            address: "b:9092".into(),
            reason: "reset".into(),
        };
        assert!(matches!(verdict(Err(lost), "events", 3, SEVERAL), Verdict::Retry(_)));
        let empty = ClientError::Invalid("empty produce response".into());
        assert!(matches!(verdict(Err(empty), "events", 3, SEVERAL), Verdict::Fail(_)));
    }

    #[test]
    fn retried_batch_goes_first_then_in_flight_then_unsent() {
        // Batches named by base sequence: 0 failed, 3 and 5 were in flight
        // behind it, 9 and 12 were waiting.
        let again = resend_order([0], [3, 5], VecDeque::from([9, 12]));
        assert_eq!(again, VecDeque::from([0, 3, 5, 9, 12]));
        let alone = resend_order([0], [], VecDeque::new());
        assert_eq!(alone, VecDeque::from([0]));
    }

    #[test]
    fn split_halves_go_first_in_order_then_the_rest() {
        // Batch 0 (records 0..4) split into 0 and 2; 4 and 6 were in flight.
        let again = resend_order([0, 2], [4, 6], VecDeque::from([9]));
        assert_eq!(again, VecDeque::from([0, 2, 4, 6, 9]));
    }

    #[test]
    fn backoff_is_half_the_failing_time_within_bounds() {
        let max = Duration::from_secs(5);
        assert_eq!(backoff_delay(Duration::ZERO, max), Duration::from_millis(100));
        assert_eq!(
            backoff_delay(Duration::from_millis(150), max),
            Duration::from_millis(100)
        );
        assert_eq!(backoff_delay(Duration::from_secs(3), max), Duration::from_millis(1_500));
        assert_eq!(backoff_delay(Duration::from_secs(60), max), Duration::from_secs(5));
        assert_eq!(
            backoff_delay(Duration::from_secs(60), Duration::from_millis(50)),
            Duration::from_millis(50)
        );
    }
}
