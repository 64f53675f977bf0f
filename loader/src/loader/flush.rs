//! One micro-batch from fetched records to a committed transaction, in
//! three steps: build the batch (transform each record, find the gaps, the
//! offsets to advance), write it until the warehouse commits it (the first
//! attempt alongside the next fetch, then retried; refused rows isolated
//! into the rejects; a fenced batch dropped), and record the commit (stats,
//! metrics, the stored offsets, the broker's mirror).

use super::{retry, Loader, LoaderError};
use crate::route::Routed;
use crate::sink::{Batch, OffsetAdvance, SinkError};
use crate::transform::{transform, Transformed};
use relay_client::consumer::{Consumer, Poll, TopicPartition};
use relay_client::records::{RecordView, Records};
use relay_client::ClientError;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A batch built from fetched records, before its write.
struct Built<'r> {
    batch: Batch,
    /// The record of each row, to reject it if the warehouse refuses it.
    sources: Vec<RecordView<'r>>,
    /// The next offset per partition once the batch commits.
    next: BTreeMap<TopicPartition, i64>,
    /// Records no route took, and records a discard route took.
    skipped: Skipped,
}

/// A batch's records not loaded by rule or on purpose.
#[derive(Debug, Default, Clone, Copy)]
struct Skipped {
    unrouted: u64,
    discarded: u64,
}

impl Loader {
    /// Transforms `records` and writes them with their offsets in one
    /// transaction; with `prefetch`, the next records are fetched meanwhile.
    pub(super) async fn flush(&mut self, records: Vec<Records>, prefetch: bool) -> Result<(), LoaderError> {
        let started = Instant::now();
        let Built {
            batch,
            mut sources,
            next,
            skipped,
        } = self.build_batch(&records).await?;
        if batch.offsets.is_empty() {
            return Ok(());
        }
        let built = started.elapsed();
        let Some(batch) = self.write_until_committed(batch, &mut sources, prefetch).await? else {
            return Ok(()); // fenced: the rejoin fetches again
        };
        let written = started.elapsed();
        self.record_commit(&batch, next, skipped).await;
        // Where a batch's time goes, for finding what the warehouse waits on.
        tracing::debug!(
            rows = batch.rows.len(),
            partitions = batch.offsets.len(),
            fetched_ahead = self.prefetched.len(),
            build_ms = built.as_secs_f64() * 1e3,
            write_ms = (written - built).as_secs_f64() * 1e3,
            record_ms = (started.elapsed() - written).as_secs_f64() * 1e3,
            "batch committed"
        );
        Ok(())
    }

    /// The batch of `records` for the partitions still owned: rows,
    /// rejects, gaps and the offsets it advances.
    async fn build_batch<'r>(&self, records: &'r [Records]) -> Result<Built<'r>, LoaderError> {
        let mut batch = Batch::default();
        let mut sources: Vec<RecordView<'r>> = Vec::new();
        let mut next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        let mut skipped = Skipped::default();
        // Records come in runs per partition: a run's partition is named
        // and looked up once, its next offset noted when the run ends.
        let mut run: Option<(TopicPartition, bool, Option<i64>)> = None;
        for record in records.iter().flat_map(Records::iter) {
            let same = run
                .as_ref()
                .is_some_and(|(tp, ..)| tp.partition == record.partition && tp.topic == record.topic);
            if !same {
                if let Some((tp, _, Some(after))) = run.take() {
                    next.insert(tp, after);
                }
                let tp = TopicPartition {
                    topic: record.topic.to_owned(),
                    partition: record.partition,
                };
                let ours = self.stored.contains_key(&tp);
                run = Some((tp, ours, None));
            }
            let (_, ours, after) = run.as_mut().expect("a run for this record");
            if !*ours {
                continue; // not ours any more
            }
            *after = Some(record.offset + 1);
            match transform(&self.loading, &record) {
                Transformed::Row(row) => {
                    batch.rows.push(row);
                    sources.push(record);
                }
                Transformed::Reject(reject) => batch.rejects.push(reject),
                Transformed::Skipped(Routed::Unrouted) => skipped.unrouted += 1,
                Transformed::Skipped(Routed::Discarded) => skipped.discarded += 1,
                Transformed::Skipped(_) => {}
            }
        }
        if let Some((tp, _, Some(after))) = run {
            next.insert(tp, after);
        }
        batch.gaps = self.gaps(records).await?;
        batch.offsets = next
            .iter()
            .map(|(tp, next)| OffsetAdvance {
                topic: tp.topic.clone(),
                partition: tp.partition,
                previous: self.stored.get(tp).copied().flatten(),
                next: *next,
            })
            .collect();
        assert_gaps_advance(&batch);
        Ok(Built {
            batch,
            sources,
            next,
            skipped,
        })
    }

    /// Writes `batch` until the warehouse commits it (the batch as
    /// committed, refused rows moved to its rejects), or `None` when it was
    /// fenced (another loader owns a partition now: the loader rejoins).
    async fn write_until_committed(
        &mut self,
        mut batch: Batch,
        sources: &mut Vec<RecordView<'_>>,
        prefetch: bool,
    ) -> Result<Option<Batch>, LoaderError> {
        let mut first_attempt = None;
        if prefetch && self.prefetched.is_empty() && self.consumer.next_poll_only_fetches() {
            let (written, fetched) = self.write_while_fetching(batch).await;
            batch = written.0;
            first_attempt = Some(written.1);
            self.prefetched = fetched;
        }
        loop {
            let (returned, written) = self.write_attempt(batch, first_attempt.take()).await;
            batch = returned;
            match written {
                Ok(elapsed) => {
                    self.metrics.committed(elapsed);
                    self.batch_unstuck();
                    return Ok(Some(batch));
                }
                Err(LoaderError::Sink(SinkError::Refused(reason))) => {
                    self.reject_refused_rows(&mut batch, sources, &reason).await?;
                }
                Err(LoaderError::Sink(SinkError::Fenced {
                    topic,
                    partition,
                    expected,
                })) => {
                    tracing::warn!(topic = %topic, partition, ?expected, "batch fenced: another loader owns the partition; rejoining");
                    self.consumer.request_rejoin();
                    // Records fetched behind the fenced batch must not be
                    // loaded after it: the rejoin fetches from the warehouse's
                    // offsets again.
                    self.prefetched.clear();
                    return Ok(None);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// One attempt's outcome: the first one's (made alongside a fetch) if
    /// it is given and was not an outage, else a write retried while the
    /// warehouse is unavailable.
    async fn write_attempt(
        &mut self,
        batch: Batch,
        first_attempt: Option<Result<Duration, SinkError>>,
    ) -> (Batch, Result<Duration, LoaderError>) {
        match first_attempt {
            Some(Ok(elapsed)) => {
                self.stats.warehouse_down.store(false, Ordering::Relaxed);
                self.metrics.warehouse_up(true);
                (batch, Ok(elapsed))
            }
            Some(Err(error)) if !matches!(error, SinkError::Unavailable(_)) => (batch, Err(error.into())),
            _ => {
                let shared = Arc::new(batch);
                let written = self
                    .retry("writing a batch", |sink, group| {
                        let batch = Arc::clone(&shared);
                        Box::pin(async move {
                            let started = Instant::now();
                            sink.write(group, &batch).await.map(|()| started.elapsed())
                        })
                    })
                    .await;
                let batch = Arc::try_unwrap(shared).expect("the batch is not shared after its write");
                (batch, written)
            }
        }
    }

    /// The first attempt at writing `batch`, with the next fetches running
    /// alongside (the pipeline: the broker and the loader's decoding work
    /// while the warehouse commits), one after another until they hold a
    /// batch's worth of records, so the next batch is ready when this write
    /// ends. The fetch in flight is dropped unfinished if the write ends
    /// first (it only fetches, see `Consumer::next_poll_only_fetches`, so
    /// dropping it moves nothing); every fetch that ended is kept.
    async fn write_while_fetching(
        &mut self,
        batch: Batch,
    ) -> (
        (Batch, Result<Duration, SinkError>),
        VecDeque<Result<Poll, ClientError>>,
    ) {
        let shared = Arc::new(batch);
        let group = self.config.group.clone();
        let records_max = self.config.batch_records_max;
        let mut fetched = VecDeque::new();
        let written = {
            let started = Instant::now();
            let write = retry::following_lag(
                self.sink.write(&group, &shared),
                &mut self.lag,
                &self.cluster,
                &self.metrics,
            );
            let polls = fetch_batch_worth(&mut self.consumer, records_max, &mut fetched);
            tokio::pin!(write, polls);
            let mut polling = true;
            loop {
                tokio::select! {
                    written = &mut write => break written.map(|()| started.elapsed()),
                    () = &mut polls, if polling => polling = false,
                }
            }
        };
        if let Err(SinkError::Unavailable(_)) = &written {
            self.metrics.warehouse_errors.increment(1);
        }
        let batch = Arc::try_unwrap(shared).expect("the batch is not shared after its write");
        ((batch, written), fetched)
    }

    /// A batch committed: counts it, logs its rejects and gaps, moves the
    /// stored offsets to `next` and mirrors them to the broker.
    async fn record_commit(&mut self, batch: &Batch, next: BTreeMap<TopicPartition, i64>, skipped: Skipped) {
        let inserted = batch.inserted.load(Ordering::Relaxed);
        self.stats.rows_loaded.fetch_add(inserted, Ordering::Relaxed);
        self.stats
            .rows_present
            .fetch_add((batch.rows.len() as u64).saturating_sub(inserted), Ordering::Relaxed);
        self.metrics.batches.increment(1);
        self.metrics.records_unrouted.increment(skipped.unrouted);
        self.metrics.records_discarded.increment(skipped.discarded);
        self.skipped_log.add(skipped.unrouted, skipped.discarded);
        self.metrics.rows_loaded.increment(batch.rows.len() as u64);
        self.metrics.rows_rejected.increment(batch.rejects.len() as u64);
        if !batch.rejects.is_empty() {
            tracing::warn!(rejected = batch.rejects.len(), first = %batch.rejects[0].error, "records rejected into relay_rejects");
        }
        for gap in &batch.gaps {
            tracing::error!(topic = %gap.topic, partition = gap.partition, first = gap.first_offset, last = gap.last_offset, records = gap.records(),
                "{}", gap.cause.describe());
            self.metrics.lost(&gap.topic, gap.records());
        }
        for (tp, offset) in &next {
            self.stored.insert(tp.clone(), Some(*offset));
        }
        self.publish_lag(&HashMap::new());
        for gap in &batch.gaps {
            let tp = TopicPartition {
                topic: gap.topic.clone(),
                partition: gap.partition,
            };
            *self.open_gaps.entry(tp).or_default() += 1;
        }
        self.mirror_to_broker(next.into_iter().collect()).await;
    }
}

/// Fetches into `fetched` until it holds `records_max` records, a fetch
/// fails or reports an assignment (kept, like every fetch with records),
/// or the next poll would do more than fetch. Each answer is pushed as soon
/// as its fetch ends, so dropping this future (the write ended) loses none
/// that moved a position.
async fn fetch_batch_worth(
    consumer: &mut Consumer,
    records_max: usize,
    fetched: &mut VecDeque<Result<Poll, ClientError>>,
) {
    let mut records = 0;
    loop {
        let polled = consumer.poll().await;
        let more = polled.as_ref().is_ok_and(|poll| poll.assigned.is_none());
        match &polled {
            // Nothing new before the fetch's wait ran out: ask again.
            Ok(poll) if more && poll.records.is_empty() => {}
            _ => {
                records += polled.as_ref().map_or(0, |poll| poll.records.len());
                fetched.push_back(polled);
            }
        }
        if !more || records >= records_max || !consumer.next_poll_only_fetches() {
            return;
        }
    }
}

/// A gap is recorded only in the transaction that moves its partition's
/// offset past it, and never over offsets the warehouse already has (the
/// partition's previous next offset).
fn assert_gaps_advance(batch: &Batch) {
    for gap in &batch.gaps {
        let advance = batch
            .offsets
            .iter()
            .find(|advance| advance.topic == gap.topic && advance.partition == gap.partition);
        assert!(
            advance.is_some_and(|advance| advance.previous.is_none_or(|previous| previous <= gap.first_offset)),
            "gap {}..={} of {}/{} without its partition's offset advancing from below it: {advance:?}",
            gap.first_offset,
            gap.last_offset,
            gap.topic,
            gap.partition
        );
    }
}
