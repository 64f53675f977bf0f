//! Plain types shared by the consumer, the admin client, the offsets
//! helpers and the assignor: [`TopicPartition`] and [`StartPosition`]. This
//! is the bottom layer above [`crate::error`]: it never talks to a broker
//! (resolving a start position takes the ListOffsets lookup as an argument)
//! and never imports another module of this crate but `error`.

use crate::error::{ClientError, Result};
use std::future::Future;

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

/// Where a partition without a committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    Earliest,
    Latest,
    Offset(i64),
    /// The first record at or after this time (Unix ms).
    Timestamp(i64),
}

/// ListOffsets' timestamp that asks for the log end offset; also its answer
/// when no record is at or after the asked time.
pub const LIST_OFFSETS_LATEST: i64 = -1;
/// ListOffsets' timestamp that asks for the log start offset.
pub const LIST_OFFSETS_EARLIEST: i64 = -2;

impl StartPosition {
    /// The offset this position names in one partition. `list_offset` is
    /// that partition's ListOffsets: a timestamp (or [`LIST_OFFSETS_LATEST`],
    /// [`LIST_OFFSETS_EARLIEST`]) in, an offset out. A time after the last
    /// record resolves to the end of the partition.
    pub async fn resolve<F, Fut>(self, mut list_offset: F) -> Result<i64>
    where
        F: FnMut(i64) -> Fut,
        Fut: Future<Output = Result<i64>>,
    {
        match self {
            // An offset past the end is a mistake (a typo, another topic's
            // number), not "wait for it": refused with the partition's range.
            StartPosition::Offset(offset) => {
                let end = list_offset(LIST_OFFSETS_LATEST).await?;
                if offset > end {
                    let start = list_offset(LIST_OFFSETS_EARLIEST).await?;
                    return Err(ClientError::Invalid(format!(
                        "offset {offset} is past the end: the partition's offsets run from {start} to {end}"
                    )));
                }
                Ok(offset)
            }
            StartPosition::Earliest => list_offset(LIST_OFFSETS_EARLIEST).await,
            StartPosition::Latest => list_offset(LIST_OFFSETS_LATEST).await,
            StartPosition::Timestamp(ms) => match list_offset(ms).await? {
                LIST_OFFSETS_LATEST => list_offset(LIST_OFFSETS_LATEST).await,
                offset => Ok(offset),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resolves `start` against a partition whose log spans offsets 5..90
    /// and whose records at or after time 1_000 start at offset 40.
    async fn resolve(start: StartPosition) -> (i64, Vec<i64>) {
        let mut asked = Vec::new();
        let offset = start
            .resolve(|timestamp| {
                asked.push(timestamp);
                async move {
                    Ok(match timestamp {
                        LIST_OFFSETS_EARLIEST => 5,
                        LIST_OFFSETS_LATEST => 90,
                        ms if ms <= 1_000 => 40,
                        _ => LIST_OFFSETS_LATEST,
                    })
                }
            })
            .await
            .unwrap();
        (offset, asked)
    }

    #[tokio::test]
    async fn explicit_offset_is_checked_against_the_end_only() {
        assert_eq!(
            resolve(StartPosition::Offset(42)).await,
            (42, vec![LIST_OFFSETS_LATEST])
        );
        assert_eq!(
            resolve(StartPosition::Offset(90)).await,
            (90, vec![LIST_OFFSETS_LATEST])
        );
    }

    #[tokio::test]
    async fn an_offset_past_the_end_is_refused_with_the_partition_range() {
        let error = StartPosition::Offset(999_999_999)
            .resolve(|timestamp| async move { Ok(if timestamp == LIST_OFFSETS_EARLIEST { 5 } else { 90 }) })
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "offset 999999999 is past the end: the partition's offsets run from 5 to 90"
        );
    }

    #[tokio::test]
    async fn earliest_and_latest_ask_for_the_log_bounds() {
        assert_eq!(resolve(StartPosition::Earliest).await, (5, vec![-2]));
        assert_eq!(resolve(StartPosition::Latest).await, (90, vec![-1]));
    }

    #[tokio::test]
    async fn timestamp_resolves_to_the_first_record_at_or_after_it() {
        assert_eq!(resolve(StartPosition::Timestamp(1_000)).await, (40, vec![1_000]));
    }

    #[tokio::test]
    async fn timestamp_after_the_last_record_resolves_to_the_end() {
        assert_eq!(resolve(StartPosition::Timestamp(2_000)).await, (90, vec![2_000, -1]));
    }
}
