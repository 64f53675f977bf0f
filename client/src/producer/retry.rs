//! The partition worker's retry policy, as pure decisions: what a produce
//! answer means for the oldest batch in flight ([`verdict`]), the order in
//! which batches are sent again after a failure ([`resend_order`]), and how
//! long to wait between attempts ([`backoff_delay`]). Never sends, sleeps or
//! renumbers anything itself.

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
    /// Fail the batch's records with this error.
    Fail(ClientError),
}

/// Judges a partition's answer: its `(error_code, base_offset)`, or the
/// error that stopped the request.
pub(super) fn verdict(answer: Result<(i16, i64)>, topic: &str, partition: i32) -> Verdict {
    match answer {
        Ok((code, base_offset)) => match ResponseError::try_from_code(code) {
            None | Some(ResponseError::DuplicateSequenceNumber) => Verdict::Acknowledged { base_offset },
            Some(
                error @ (ResponseError::OutOfOrderSequenceNumber
                | ResponseError::UnknownProducerId
                | ResponseError::InvalidProducerEpoch),
            ) => Verdict::SequenceLost(error),
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

/// After the oldest in-flight batch failed: that batch first, then the
/// batches that were in flight behind it, then those not yet sent, so the
/// broker sees every sequence in order again.
pub(super) fn resend_order<T>(failed: T, in_flight: impl IntoIterator<Item = T>, ready: VecDeque<T>) -> VecDeque<T> {
    let mut again: VecDeque<T> = VecDeque::with_capacity(1 + ready.len());
    again.push_back(failed);
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

    fn judge(code: i16) -> Verdict {
        verdict(Ok((code, 500)), "events", 3)
    }

    #[test]
    fn success_and_duplicate_sequence_both_acknowledge() {
        assert!(matches!(judge(0), Verdict::Acknowledged { base_offset: 500 }));
        assert!(matches!(
            judge(ResponseError::DuplicateSequenceNumber.code()),
            Verdict::Acknowledged { base_offset: 500 }
        ));
        assert!(matches!(
            verdict(Ok((0, -1)), "events", 3),
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
        assert!(matches!(judge(ResponseError::MessageTooLarge.code()), Verdict::Fail(_)));
        assert!(matches!(
            judge(ResponseError::TopicAuthorizationFailed.code()),
            Verdict::Fail(_)
        ));
    }

    #[test]
    fn lost_connections_retry_and_invalid_answers_fail() {
        let lost = ClientError::Disconnected {
            address: "b:9092".into(),
            reason: "reset".into(),
        };
        assert!(matches!(verdict(Err(lost), "events", 3), Verdict::Retry(_)));
        let empty = ClientError::Invalid("empty produce response".into());
        assert!(matches!(verdict(Err(empty), "events", 3), Verdict::Fail(_)));
    }

    #[test]
    fn retried_batch_goes_first_then_in_flight_then_unsent() {
        // Batches named by base sequence: 0 failed, 3 and 5 were in flight
        // behind it, 9 and 12 were waiting.
        let again = resend_order(0, [3, 5], VecDeque::from([9, 12]));
        assert_eq!(again, VecDeque::from([0, 3, 5, 9, 12]));
        let alone = resend_order(0, [], VecDeque::new());
        assert_eq!(alone, VecDeque::from([0]));
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
