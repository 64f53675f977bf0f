//! The loader's account of records it can never load: finding offsets the
//! broker deleted before they were loaded (a gap, recorded in `relay_gaps`
//! in the batch's own transaction), and telling readers of the broker's
//! committed offsets how many gaps nobody acknowledged yet (the metadata
//! contract of [`relay_proto::offset_metadata`]).

use super::{Loader, LoaderError};
use crate::config::OnGap;
use crate::sink::Gap;
use relay_client::consumer::{list_offset, TopicPartition};
use relay_client::records::ConsumerRecord;
use relay_proto::offset_metadata;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often the loader looks whether gaps were acknowledged: an operator's
/// UPDATE shows in `relay lag` within this long.
const GAPS_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// ListOffsets' timestamp for a partition's first offset.
const EARLIEST_TIMESTAMP: i64 = -2;

impl Loader {
    /// Commits `offsets` to the broker too, for `relay lag` (best effort:
    /// the warehouse is the truth), each with its partition's count of
    /// unacknowledged gaps in the metadata, so `relay lag` and `relay status`
    /// can say so without the warehouse.
    pub(super) async fn mirror_to_broker(&mut self, offsets: Vec<(TopicPartition, i64)>) {
        let Some((generation, member)) = self.consumer.generation() else {
            return;
        };
        let metadata: Vec<String> = offsets
            .iter()
            .map(|(tp, _)| offset_metadata::encode_gaps(self.open_gaps.get(tp).copied().unwrap_or(0)))
            .collect();
        let with_metadata: Vec<(TopicPartition, i64, &str)> = offsets
            .into_iter()
            .zip(&metadata)
            .map(|((tp, offset), metadata)| (tp, offset, metadata.as_str()))
            .collect();
        if let Err(error) = self
            .consumer
            .commit_offsets_with_metadata(&with_metadata, generation, &member)
            .await
        {
            tracing::debug!(%error, "committing offsets to the broker failed (the warehouse has them)");
        }
    }

    /// Re-reads the unacknowledged gaps (someone may have acknowledged one)
    /// at most every [`GAPS_REFRESH_INTERVAL`]; when the counts changed, the
    /// broker's mirror is committed again with them.
    pub(super) async fn refresh_open_gaps(&mut self, force: bool) -> Result<(), LoaderError> {
        if !force && self.gaps_checked.elapsed() < GAPS_REFRESH_INTERVAL {
            return Ok(());
        }
        self.gaps_checked = Instant::now();
        let open = self
            .retry("reading relay_gaps", |sink, group| Box::pin(sink.open_gaps(group)))
            .await?;
        let open: HashMap<TopicPartition, i64> = open
            .into_iter()
            .map(|((topic, partition), count)| (TopicPartition { topic, partition }, count))
            .collect();
        if open != self.open_gaps {
            self.open_gaps = open;
            let offsets: Vec<(TopicPartition, i64)> = self
                .stored
                .iter()
                .filter_map(|(tp, offset)| offset.map(|offset| (tp.clone(), offset)))
                .collect();
            self.mirror_to_broker(offsets).await;
        }
        Ok(())
    }

    /// Offsets this loader needed that the broker no longer has: a
    /// partition whose batch starts after the warehouse's next offset, and
    /// whose log now starts after it too (retention deleted them). A jump
    /// over offsets the log still has is not a gap (transaction markers of a
    /// Kafka cluster). With `on_gap = "stop"` it is an error instead.
    pub(super) async fn gaps(&self, records: &[ConsumerRecord]) -> Result<Vec<Gap>, LoaderError> {
        let mut gaps = Vec::new();
        let mut previous: Option<(&str, i32)> = None;
        for record in records {
            if previous == Some((record.topic.as_str(), record.partition)) {
                continue;
            }
            previous = Some((record.topic.as_str(), record.partition));
            let tp = TopicPartition {
                topic: record.topic.clone(),
                partition: record.partition,
            };
            let Some(Some(expected)) = self.stored.get(&tp).copied() else {
                continue;
            };
            if record.offset <= expected
                || gaps
                    .iter()
                    .any(|g: &Gap| g.topic == tp.topic && g.partition == tp.partition)
            {
                continue;
            }
            let log_start = list_offset(&self.cluster, &tp, EARLIEST_TIMESTAMP).await?;
            if log_start <= expected {
                continue;
            }
            let last = record.offset.min(log_start) - 1;
            if self.config.on_gap == OnGap::Stop {
                return Err(LoaderError::Gap {
                    topic: tp.topic,
                    partition: tp.partition,
                    first: expected,
                    last,
                });
            }
            gaps.push(Gap {
                topic: tp.topic,
                partition: tp.partition,
                first_offset: expected,
                last_offset: last,
            });
        }
        Ok(gaps)
    }
}
