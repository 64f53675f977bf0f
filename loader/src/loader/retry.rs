//! Waiting on a batch without losing sight of the broker: the same batch
//! tried again while the warehouse is unavailable (capped backoff), or while
//! it fails though every probe of its rows passes (capped backoff, ERROR at
//! most once a minute, `relay_loader_batch_retries_total`, `/health` 503
//! after [`BATCH_RETRIES_UNHEALTHY_MIN`](super::BATCH_RETRIES_UNHEALTHY_MIN)
//! attempts). Meanwhile, and during any warehouse call that takes long, the
//! lag keeps following each partition's end offset (ListOffsets latest every
//! [`LAG_FOLLOW_INTERVAL`]), so a backlog that grows during an outage shows
//! in `relay_loader_lag`. Never skips a batch.

use super::{Loader, LoaderError};
use crate::metrics::LoaderMetrics;
use crate::sink::{Sink, SinkError};
use relay_client::backoff::Backoff;
use relay_client::consumer::{list_offset, StartPosition, TopicPartition};
use relay_client::offsets::committed_offsets;
use relay_client::Cluster;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How often a waiting loader lists its partitions' end offsets for the
/// lag: as often as Prometheus' usual 15 s scrape sees a fresh value, at
/// one small request per partition.
pub const LAG_FOLLOW_INTERVAL: Duration = Duration::from_secs(2);

/// A batch failing while its rows all pass their probes is logged at ERROR
/// at most this often (each attempt is counted in the metric).
pub const STUCK_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The first pause before trying a stuck batch again; it doubles up to
/// `retry_backoff_max_ms`.
const STUCK_BACKOFF_MIN: Duration = Duration::from_millis(100);

/// The first pause before calling an unavailable warehouse again; it
/// doubles up to `retry_backoff_max_ms`.
const OUTAGE_BACKOFF_MIN: Duration = Duration::from_millis(100);

/// The pause before asking the broker again where a partition starts.
const START_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// ListOffsets timestamp for a partition's end offset.
const LATEST_TIMESTAMP: i64 = -1;

/// Each partition's end offset as last listed while waiting, the last
/// fetch's high watermark, and the offset its lag counts from (the
/// warehouse's next offset, or the first fetched).
#[derive(Debug, Default)]
pub(super) struct LagFollower {
    listed_end: HashMap<TopicPartition, i64>,
    pub high_watermark: HashMap<TopicPartition, i64>,
    pub loaded_to: HashMap<TopicPartition, i64>,
    listed_at: Option<Instant>,
}

impl LagFollower {
    /// The partition's end: the later of the last fetch's high watermark
    /// and the last listed end offset.
    pub fn end(&self, tp: &TopicPartition) -> Option<i64> {
        match (self.high_watermark.get(tp), self.listed_end.get(tp)) {
            (Some(a), Some(b)) => Some(*a.max(b)),
            (a, b) => a.or(b).copied(),
        }
    }

    /// Lists each partition's end offset (at most every
    /// [`LAG_FOLLOW_INTERVAL`]) and publishes the lag from it. Best effort:
    /// a broker that does not answer leaves the lag as it was. Touches
    /// neither the consumer nor the warehouse, so it runs while a write is
    /// in flight.
    /// Follows `partitions` counting from `loaded_to` (see [`broker_positions`]).
    pub fn counting_from(loaded_to: HashMap<TopicPartition, i64>) -> Self {
        Self {
            loaded_to,
            ..Self::default()
        }
    }

    pub async fn follow(&mut self, cluster: &Cluster, metrics: &LoaderMetrics) {
        if self.listed_at.is_some_and(|at| at.elapsed() < LAG_FOLLOW_INTERVAL) {
            return;
        }
        self.listed_at = Some(Instant::now());
        let partitions: Vec<TopicPartition> = self.loaded_to.keys().cloned().collect();
        for tp in partitions {
            match list_offset(cluster, &tp, LATEST_TIMESTAMP).await {
                Ok(end) => {
                    self.listed_end.insert(tp.clone(), end);
                    if let (Some(end), Some(loaded_to)) = (self.end(&tp), self.loaded_to.get(&tp)) {
                        metrics.lag(&tp.topic, tp.partition, end - loaded_to);
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, topic = %tp.topic, partition = tp.partition, "listing the end offset for the lag failed")
                }
            }
        }
    }
}

/// Where the broker says `partitions` are loaded to, for the lag while the
/// warehouse cannot say (an outage at an assignment, or at the loader's
/// start): the group's offsets as the loader last mirrored them there
/// (never ahead of the warehouse's), else where `start` resolves. Best
/// effort, each request bounded by [`LAG_FOLLOW_INTERVAL`]: a partition the
/// broker does not answer for is left out.
pub(super) async fn broker_positions(
    cluster: &Cluster,
    group: &str,
    start: StartPosition,
    partitions: &[TopicPartition],
) -> HashMap<TopicPartition, i64> {
    let bounded = |work| tokio::time::timeout(LAG_FOLLOW_INTERVAL, work);
    let committed = match bounded(cluster.coordinator(group)).await {
        Ok(Ok(coordinator)) => {
            tokio::time::timeout(LAG_FOLLOW_INTERVAL, committed_offsets(&coordinator, group, partitions))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default()
        }
        _ => HashMap::new(),
    };
    let mut positions = HashMap::new();
    for tp in partitions {
        let position = match committed.get(tp) {
            Some(offset) if *offset >= 0 => Some(*offset),
            _ => tokio::time::timeout(
                LAG_FOLLOW_INTERVAL,
                start.resolve(|timestamp| list_offset(cluster, tp, timestamp)),
            )
            .await
            .ok()
            .and_then(Result::ok),
        };
        if let Some(position) = position {
            positions.insert(tp.clone(), position);
        }
    }
    positions
}

/// The partitions of `topics` as the broker describes them now (a topic it
/// cannot describe is left out).
pub(super) async fn partitions_of(cluster: &Cluster, topics: &[String]) -> Vec<TopicPartition> {
    let mut partitions = Vec::new();
    for topic in topics {
        let described = tokio::time::timeout(LAG_FOLLOW_INTERVAL, cluster.topic(topic, false)).await;
        if let Ok(Ok(metadata)) = described {
            partitions.extend((0..metadata.leaders.len() as i32).map(|partition| TopicPartition {
                topic: topic.clone(),
                partition,
            }));
        }
    }
    partitions
}

/// Awaits `work` (a warehouse call), following the lag every
/// [`LAG_FOLLOW_INTERVAL`] meanwhile: a write that hangs (a locked SQLite
/// file waits out its busy timeout, a server that stopped answering) does
/// not freeze the lag either.
pub(super) async fn following_lag<T>(
    work: impl std::future::Future<Output = T>,
    lag: &mut LagFollower,
    cluster: &Cluster,
    metrics: &LoaderMetrics,
) -> T {
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = tokio::time::sleep(LAG_FOLLOW_INTERVAL) => lag.follow(cluster, metrics).await,
        }
    }
}

/// The batch in hand failing while every probe of its rows passes.
#[derive(Debug, Default)]
pub(super) struct StuckBatch {
    since: Option<Instant>,
    logged_at: Option<Instant>,
    /// The pauses between its attempts (from the first failure on).
    backoff: Option<Backoff>,
}

impl Loader {
    /// Retries a warehouse call while the warehouse is unavailable.
    pub(super) async fn retry<T>(
        &mut self,
        what: &str,
        call: impl for<'a> Fn(
            &'a mut Sink,
            &'a str,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, SinkError>> + Send + 'a>>,
    ) -> Result<T, LoaderError> {
        let group = self.config.group.clone();
        let mut backoff = Backoff::new(OUTAGE_BACKOFF_MIN, self.config.retry_backoff_max());
        let mut outage: Option<Instant> = None;
        loop {
            let called = following_lag(
                call(&mut self.sink, &group),
                &mut self.lag,
                &self.cluster,
                &self.metrics,
            )
            .await;
            match called {
                Ok(value) => {
                    self.stats.warehouse_down.store(false, Ordering::Relaxed);
                    self.metrics.warehouse_up(true);
                    if let Some(since) = outage {
                        tracing::info!(seconds = since.elapsed().as_secs(), "warehouse available again");
                    }
                    return Ok(value);
                }
                Err(SinkError::Unavailable(error)) => {
                    self.stats.warehouse_down.store(true, Ordering::Relaxed);
                    self.metrics.warehouse_errors.increment(1);
                    self.metrics.warehouse_up(false);
                    // Stopping: waiting on the warehouse would only delay the
                    // stop; what was not committed is loaded again on restart.
                    if self.stop.is_stopped() {
                        tracing::warn!(%error, "{what}: stopping while the warehouse is unavailable; what was not committed is loaded again after the restart");
                        return Err(SinkError::Unavailable(error).into());
                    }
                    if outage.is_none() {
                        tracing::warn!(%error, "{what}: warehouse unavailable; retrying the same batch with backoff");
                        outage = Some(Instant::now());
                    }
                    self.follow_lag().await;
                    self.pause(backoff.next()).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The batch failed with a data error, yet every probe of its rows
    /// passed: the refusal is not about them (a trigger, a constraint that
    /// holds only at commit). Waits before the next attempt, doubling up to
    /// `retry_backoff_max_ms`, and says so: counted each time, ERROR at most
    /// once a minute, `/health` failing from the
    /// [`BATCH_RETRIES_UNHEALTHY_MIN`](super::BATCH_RETRIES_UNHEALTHY_MIN)th.
    pub(super) async fn back_off_stuck_batch(&mut self, rows: usize, reason: &str) {
        let retries = self.stats.batch_retries.fetch_add(1, Ordering::Relaxed) + 1;
        self.metrics.batch_retries.increment(1);
        let since = *self.stuck.since.get_or_insert_with(Instant::now);
        if self.stuck.logged_at.is_none_or(|at| at.elapsed() >= STUCK_LOG_INTERVAL) {
            self.stuck.logged_at = Some(Instant::now());
            tracing::error!(rows, retries, failing_s = since.elapsed().as_secs(), %reason,
                "a batch keeps failing though the warehouse takes each of its rows on its own; retrying it with backoff (not skipping it): check the table's triggers and deferred constraints");
        }
        let max = self.config.retry_backoff_max();
        let pause = self
            .stuck
            .backoff
            .get_or_insert_with(|| Backoff::new(STUCK_BACKOFF_MIN, max))
            .next();
        self.follow_lag().await;
        tokio::time::sleep(pause).await;
    }

    /// A batch committed: it is not stuck any more.
    pub(super) fn batch_unstuck(&mut self) {
        if let Some(since) = self.stuck.since.take() {
            tracing::info!(
                seconds = since.elapsed().as_secs(),
                "the batch that kept failing committed"
            );
        }
        self.stuck = StuckBatch::default();
        self.stats.batch_retries.store(0, Ordering::Relaxed);
    }

    /// Where `tp` starts without a warehouse offset: `from` resolved on the
    /// broker, asking again while the broker is unreachable.
    pub(super) async fn start_offset(&mut self, tp: &TopicPartition) -> Result<i64, LoaderError> {
        let start = self.config.start_position().map_err(LoaderError::Config)?;
        loop {
            match start
                .resolve(|timestamp| list_offset(&self.cluster, tp, timestamp))
                .await
            {
                Ok(offset) => return Ok(offset),
                Err(error) if error.is_retriable() && !self.stop.is_stopped() => {
                    self.metrics.fetch_errors.increment(1);
                    tracing::warn!(%error, topic = %tp.topic, partition = tp.partition, "resolving the start position failed; retrying");
                    self.pause(START_RETRY_PAUSE).await;
                }
                Err(relay_client::ClientError::Invalid(reason)) => {
                    return Err(LoaderError::Config(format!(
                        "from: {}/{}: {reason}",
                        tp.topic, tp.partition
                    )))
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Waits `pause` before a retry, or less when the stop comes first:
    /// a stopping loader never sleeps out a backoff.
    pub(super) async fn pause(&self, pause: Duration) {
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stop.stopped() => {}
        }
    }

    /// Follows the lag from the broker's end offsets while the loader waits
    /// ([`LagFollower::follow`]).
    pub(super) async fn follow_lag(&mut self) {
        self.lag.follow(&self.cluster, &self.metrics).await;
    }
}
