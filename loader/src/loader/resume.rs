//! Where each assigned partition resumes: the warehouse's next offset (the
//! only truth), else `from`. A partition the warehouse has no offset for
//! though the broker's copy of the group's offsets says it was loaded
//! further (the warehouse was replaced or emptied) is named in a WARN: it
//! loads again from `from`, which must not pass as an ordinary start.

use super::{retry, Loader, LoaderError};
use relay_client::consumer::TopicPartition;
use std::collections::HashMap;

impl Loader {
    /// Seeks every partition of `assigned` to where the warehouse says it
    /// is loaded to, and reads their open gaps.
    pub(super) async fn resume_from_warehouse(&mut self, assigned: &[TopicPartition]) -> Result<(), LoaderError> {
        // Until the warehouse says where each partition is, the lag counts
        // from the broker's copy: an outage at an assignment (a loader just
        // restarted, a rebalance) still shows the backlog growing.
        let start = self.config.start_position().map_err(LoaderError::Config)?;
        let group = self.config.group.clone();
        let from_broker = retry::broker_positions(&self.cluster, &group, start, assigned).await;
        self.lag = retry::LagFollower::counting_from(from_broker.clone());
        let stored = self
            .retry("reading offsets", |sink, group| Box::pin(sink.offsets(group)))
            .await?;
        self.stored.clear();
        self.started_at.clear();
        // The lag is followed for the partitions owned now only, from where
        // each resumes (the rest of the assignment may still wait on the
        // warehouse: reading the gaps below).
        let mut resumed_at = HashMap::new();
        let mut behind_the_mirror = Vec::new();
        for tp in assigned {
            let offset = stored.get(&(tp.topic.clone(), tp.partition)).copied();
            let position = match offset {
                Some(offset) => offset,
                // Without a stored offset the position may still point past
                // records that were fetched but dropped with the old batch:
                // start the partition afresh, at `from`.
                None => {
                    let offset = self.start_offset(tp).await?;
                    self.started_at.insert(tp.clone(), offset);
                    if let Some(mirrored) = from_broker.get(tp).filter(|mirrored| **mirrored > offset) {
                        behind_the_mirror.push(format!(
                            "{}/{}: {offset} (broker's copy {mirrored})",
                            tp.topic, tp.partition
                        ));
                    }
                    offset
                }
            };
            self.consumer.seek(tp.clone(), position);
            resumed_at.insert(tp.clone(), position);
            self.stored.insert(tp.clone(), offset);
        }
        if !behind_the_mirror.is_empty() {
            // A warehouse replaced or emptied under the group (a deleted
            // SQLite file, a new database): everything loads again, which
            // must not pass as an ordinary start.
            tracing::warn!(
                group = %group,
                partitions = %behind_the_mirror.join(", "),
                "the warehouse holds no offsets for these partitions though the broker's copy of the group's offsets \
                 says they were loaded further: a new, emptied or replaced warehouse; loading them again from `from`"
            );
        }
        self.lag = retry::LagFollower::counting_from(resumed_at);
        // The broker's copy of the offsets is written again at every
        // assignment: the warehouse is the truth, and a broker that restarted
        // may hold an older copy than the last batch committed.
        self.mirror_failed = true;
        self.refresh_open_gaps(true).await?;
        tracing::info!(
            partitions = assigned.len(),
            from_warehouse = self.stored.values().filter(|o| o.is_some()).count(),
            "resuming assigned partitions"
        );
        Ok(())
    }
}
