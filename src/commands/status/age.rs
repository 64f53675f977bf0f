//! Lag in time for `relay status`: the timestamp of the oldest record a
//! group has not loaded, which is the record at its committed offset.
//!
//! How it is fetched, and why it stays small: for each (group, topic) with
//! lag, one groupless consumer positioned at the committed offset of every
//! lagging partition (and at the end of the others, so they return nothing)
//! sends ONE Fetch per leader, each partition capped at
//! [`OLDEST_FETCH_BYTES_PER_PARTITION_MAX`] (the broker still returns a
//! first batch larger than that, KIP-74), never waiting for new data. Only
//! the first record at or after the committed offset is read. At most
//! [`AGED_PARTITIONS_MAX`] partitions are asked per look; the rest show no
//! age. A partition whose committed offset is no longer in the log
//! (deleted by retention) or that answers nothing in time shows none either.

use relay_client::admin::Admin;
use relay_client::consumer::{Consumer, ConsumerConfig, TopicPartition};
use relay_client::StartPosition;
use std::collections::HashMap;
use std::time::Duration;

/// Bytes asked per partition: the first record's timestamp is all that is
/// read, and a batch of small records fits in far less.
const OLDEST_FETCH_BYTES_PER_PARTITION_MAX: i32 = 64 * 1024;
/// Partitions whose oldest record is fetched per look: past this, a look
/// would read more than a screen is worth.
const AGED_PARTITIONS_MAX: usize = 256;
/// How long one (group, topic)'s fetch may take: the data is there (the
/// group lags), so a healthy broker answers at once.
const OLDEST_FETCH_SECONDS_MAX: u64 = 2;

/// One group's lagging partitions on one topic: (partition, committed, end).
pub(super) type Lagging = Vec<(i32, i64, i64)>;

/// The timestamp (ms since the epoch) of the record at each lagging
/// partition's committed offset, by (group, topic, partition).
pub(super) async fn oldest_unloaded(
    admin: &Admin,
    wanted: Vec<((String, String), Lagging)>,
) -> HashMap<(String, String, i32), i64> {
    let mut found = HashMap::new();
    let mut budget = AGED_PARTITIONS_MAX;
    for ((group, topic), lagging) in wanted {
        if lagging.len() > budget {
            break;
        }
        budget -= lagging.len();
        let fetched = tokio::time::timeout(
            Duration::from_secs(OLDEST_FETCH_SECONDS_MAX),
            first_records(admin, &topic, &lagging),
        )
        .await;
        match fetched {
            Ok(Ok(timestamps)) => {
                for (partition, timestamp_ms) in timestamps {
                    found.insert((group.clone(), topic.clone(), partition), timestamp_ms);
                }
            }
            Ok(Err(error)) => tracing::debug!(%error, %group, %topic, "no oldest record"),
            Err(_) => tracing::debug!(%group, %topic, "no oldest record in time"),
        }
    }
    found
}

/// One Fetch from the committed offsets of `lagging`: the first record's
/// timestamp of each partition that answered.
async fn first_records(admin: &Admin, topic: &str, lagging: &Lagging) -> relay_client::Result<HashMap<i32, i64>> {
    let mut config = ConsumerConfig::new(vec![topic.to_owned()], None);
    // Partitions not lagging (or not committed) start at the end: no data.
    config.start = StartPosition::Latest;
    config.fetch_wait_ms_max = 0;
    config.partition_bytes_max = OLDEST_FETCH_BYTES_PER_PARTITION_MAX;
    config.fetch_bytes_max = OLDEST_FETCH_BYTES_PER_PARTITION_MAX.saturating_mul(lagging.len().max(1) as i32);
    let mut consumer = Consumer::new(admin.cluster().clone(), config).await?;
    consumer.fetch_ahead(false);
    for (partition, committed, _end) in lagging {
        let tp = TopicPartition {
            topic: topic.to_owned(),
            partition: *partition,
        };
        consumer.seek(tp, *committed);
    }
    let mut first: HashMap<i32, (i64, i64)> = HashMap::new();
    for record in &consumer.poll().await?.records {
        let entry = first
            .entry(record.partition)
            .or_insert((record.offset, record.timestamp_ms));
        if record.offset < entry.0 {
            *entry = (record.offset, record.timestamp_ms);
        }
    }
    Ok(first
        .into_iter()
        .filter(|(_, (_, timestamp_ms))| *timestamp_ms > 0)
        .map(|(partition, (_, timestamp_ms))| (partition, timestamp_ms))
        .collect())
}
