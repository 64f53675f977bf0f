//! The loading loop. A group member consumes its partitions; on every
//! assignment it resumes each partition from the warehouse's next offset
//! (the only truth), else `from`; the broker's committed offsets only mirror
//! the warehouse for `relay lag`.
//! Records gather into a micro-batch (bounded by records and by time, and
//! written as soon as no write is in flight with `write_when_idle`), are
//! transformed, and go to the warehouse in one transaction with the offsets.
//! A warehouse that is down or failing gets the same batch again with capped
//! backoff (heartbeats keep the membership alive meanwhile); nothing is
//! skipped. A fenced batch (another loader owns a partition now) is dropped
//! and the loader rejoins. After each commit the same offsets go to the broker
//! too, so `relay lag` shows the loader's position.

use crate::config::LoaderConfig;
use crate::metrics::LoaderMetrics;
use crate::sink::{Sink, SinkError};
use crate::transform::Loading;
use relay_client::backoff::Backoff;
use relay_client::consumer::{Consumer, ConsumerConfig, Poll, Resume, TopicPartition};
use relay_client::records::{RecordView, Records};
use relay_client::{ClientError, Cluster};
use relay_proto::stop::Stop;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod flush;
mod gaps;
mod probe;
mod refused;
mod resume;
mod retry;
mod skipped;
mod stats;

pub use stats::{LoaderStats, BATCH_RETRIES_UNHEALTHY_MIN};

#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("configuration: {0}")]
    Config(String),
    /// Records this loader needed were deleted by the broker and `on_gap =
    /// "stop"`: the offset stays where it is.
    #[error("offsets {first}..={last} of {topic}/{partition} can no longer be loaded (deleted by retention, or not served by the broker); on_gap = \"stop\": not moving past them (set on_gap = \"record\" to record the gap in relay_gaps and go on)")]
    Gap {
        topic: String,
        partition: i32,
        first: i64,
        last: i64,
    },
}

impl LoaderError {
    /// The client's error behind this one, if any.
    pub fn client_error(&self) -> Option<&ClientError> {
        match self {
            Self::Client(error) => Some(error),
            _ => None,
        }
    }
}

/// Opens the warehouse, waiting (with capped backoff) while it is down: a
/// loader started before its database keeps trying instead of exiting, and
/// meanwhile shows the warehouse down and the backlog (the lag counted from
/// the broker's copy of the group's offsets, see [`retry::broker_positions`]).
async fn open_sink(
    config: &LoaderConfig,
    cluster: &Cluster,
    metrics: &LoaderMetrics,
    stats: &LoaderStats,
) -> Result<Sink, LoaderError> {
    let mut backoff = Backoff::new(OPEN_BACKOFF_MIN, config.retry_backoff_max());
    let mut lag: Option<retry::LagFollower> = None;
    loop {
        let opened = match lag.as_mut() {
            Some(lag) => retry::following_lag(Sink::open(config), lag, cluster, metrics).await,
            None => Sink::open(config).await,
        };
        match opened {
            Ok(sink) => {
                stats.warehouse_down.store(false, Ordering::Relaxed);
                metrics.warehouse_up(true);
                return Ok(sink);
            }
            Err(SinkError::Unavailable(error)) => {
                stats.warehouse_down.store(true, Ordering::Relaxed);
                metrics.warehouse_up(false);
                let lag = match lag.as_mut() {
                    Some(lag) => lag,
                    None => {
                        tracing::warn!(warehouse = %config.warehouse_redacted(), %error, "warehouse unavailable at start; retrying");
                        let start = config.start_position().map_err(LoaderError::Config)?;
                        let partitions = retry::partitions_of(cluster, &config.topics).await;
                        let from_broker = retry::broker_positions(cluster, &config.group, start, &partitions).await;
                        lag.insert(retry::LagFollower::counting_from(from_broker))
                    }
                };
                lag.follow(cluster, metrics).await;
                retry::following_lag(backoff.sleep(), lag, cluster, metrics).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

pub struct Loader {
    config: LoaderConfig,
    /// The parser and the routes, compiled once.
    loading: Loading,
    /// For the partitions' start offsets when a position jumps.
    cluster: Arc<Cluster>,
    consumer: Consumer,
    sink: Sink,
    /// Next offset per partition as stored in the warehouse (`None`: no row yet).
    stored: HashMap<TopicPartition, Option<i64>>,
    /// Where a partition without a stored offset was started (`from`
    /// resolved): its first record must be there, or the offsets before it
    /// are a gap like any other jump.
    started_at: HashMap<TopicPartition, i64>,
    /// The last commit of offsets to the broker failed: they are committed
    /// again at the next refresh, or `relay lag` would show a backlog that is
    /// long loaded for as long as no new batch comes.
    mirror_failed: bool,
    /// Unacknowledged relay_gaps rows per partition, as last read.
    open_gaps: HashMap<TopicPartition, i64>,
    gaps_checked: Instant,
    pub stats: Arc<LoaderStats>,
    metrics: LoaderMetrics,
    /// The next records, fetched while the last batch was being written
    /// (as many fetches as fit in a batch): taken by the next passes of the
    /// loop, in order, before it fetches again.
    prefetched: VecDeque<Result<Poll, ClientError>>,
    /// The lag's reference while a batch waits: each partition's end
    /// offset as last listed, and the offset its lag counts from.
    lag: retry::LagFollower,
    /// The batch in hand failing while its rows all pass their probes.
    stuck: retry::StuckBatch,
    /// The stop signal [`Loader::run`] was given: every retry ends on it.
    stop: Stop,
    /// Unrouted and discarded records not yet told in the log.
    skipped_log: skipped::SkippedLog,
}

impl Loader {
    /// Refuses a configuration that can never load (before anything
    /// connects, so a mistake stops the process at its start).
    pub fn check(config: &LoaderConfig) -> Result<(), LoaderError> {
        config.validate().map_err(LoaderError::Config)?;
        Loading::new(config).map_err(LoaderError::Config)?;
        config.start_position().map_err(LoaderError::Config)?;
        Ok(())
    }

    /// A loader ready to run: its warehouse open (waited for while it is
    /// down, see [`open_sink`]) and its consumer made. `stats` is what
    /// `/health` already watches.
    pub async fn new(
        cluster: Arc<Cluster>,
        config: LoaderConfig,
        stats: Arc<LoaderStats>,
    ) -> Result<Self, LoaderError> {
        Self::check(&config)?;
        let loading = Loading::new(&config).map_err(LoaderError::Config)?;
        let metrics = LoaderMetrics::new(&config.label());
        let sink = open_sink(&config, &cluster, &metrics, &stats).await?;
        let mut consumer_config = ConsumerConfig::new(config.topics.clone(), Some(config.group.clone()));
        // Every assigned partition is positioned by the loader itself (the
        // warehouse's offset, else `from`): the consumer's start only says
        // where a position the broker no longer has goes, the log's start,
        // so a loader that retention ran past loses only what was deleted
        // (resetting to the end, as `from = "latest"` would, skips records
        // the log still holds).
        consumer_config.start = relay_client::StartPosition::Earliest;
        consumer_config.commit_on_rebalance = false;
        // The warehouse is the only truth of the loader's position: a
        // partition without a relay_offsets row starts at `from`, never at
        // an offset the broker holds for the group (a new or wiped warehouse
        // must get everything from the start).
        consumer_config.resume = Resume::FromStartPosition;
        // The sender writes its lines' source once per run in a batch.
        consumer_config.sticky_header_keys = crate::source::sticky_header_keys();
        let consumer = Consumer::new(Arc::clone(&cluster), consumer_config).await?;
        for topic in &config.topics {
            metrics.lost_zero(topic);
        }
        Ok(Self {
            config,
            loading,
            cluster,
            consumer,
            sink,
            stored: HashMap::new(),
            started_at: HashMap::new(),
            mirror_failed: false,
            open_gaps: HashMap::new(),
            gaps_checked: Instant::now(),
            stats,
            metrics,
            prefetched: VecDeque::new(),
            lag: retry::LagFollower::default(),
            stuck: retry::StuckBatch::default(),
            stop: Stop::never(),
            skipped_log: skipped::SkippedLog::default(),
        })
    }

    /// Loads until `stop` is on, then goes on until it has loaded what
    /// the topic holds (at most [`STOP_DRAIN_WAIT_MAX`]) and commits the
    /// batch in hand; with `until_end` it also stops by itself once caught up.
    pub async fn run(mut self, mut stop: Stop) -> Result<(), LoaderError> {
        tracing::info!(group = %self.config.group, topics = ?self.config.topics, table = %self.config.label(), "loader started");
        self.stop = stop.clone();
        self.consumer.stop_retrying_on(stop.clone());
        let mut gathering = Gathering::default();
        let mut fetch_failing_since: Option<Instant> = None;
        let mut drain = Drain::default();
        loop {
            if stop.is_stopped() && drain.since.is_none() {
                drain.since = Some(Instant::now());
                self.consumer.fetch_ahead(false);
            }
            if self.done(&drain) {
                break;
            }
            let Some(poll) = self.next_poll(&mut stop, &mut drain).await else {
                continue;
            };
            let poll = match poll {
                Ok(poll) => {
                    fetch_failing_since = None;
                    poll
                }
                // Stopping, and the broker cannot be asked what is left:
                // nothing more to drain (what is gathered is written below).
                Err(error) if error.is_retriable() && drain.since.is_some() => {
                    tracing::info!(%error, "stopping without draining: the broker does not answer");
                    break;
                }
                Err(error) if error.is_retriable() => {
                    self.fetch_failed(&error, &mut fetch_failing_since).await;
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            if let Some(assigned) = poll.assigned {
                // Records fetched under the old assignment are fetched again
                // from the warehouse's positions.
                gathering.clear();
                self.resume_from_warehouse(&assigned).await?;
                continue;
            }
            gathering.add(poll.records);
            self.publish_lag(&gathering.from);
            self.refresh_open_gaps(false).await?;
            if gathering.is_ready(&self.config) || self.write_now(&gathering) {
                self.flush(gathering.take_records(), drain.since.is_none()).await?;
            }
        }
        if !gathering.records.is_empty() {
            self.flush(gathering.records, false).await?;
        }
        self.skipped_log.log();
        if let Err(error) = self.consumer.close().await {
            tracing::warn!(%error, "leaving the group failed");
        }
        let (loaded, present) = (
            self.stats.rows_loaded.load(Ordering::Relaxed),
            self.stats.rows_present.load(Ordering::Relaxed),
        );
        tracing::info!(
            rows = loaded,
            already_present = present,
            "loader stopped: {loaded} rows loaded, {present} already present (same dedup key)"
        );
        Ok(())
    }

    /// Whether the loop ends: after a stop, once caught up with what the
    /// topic holds now or after [`STOP_DRAIN_WAIT_MAX`]; with `until_end`,
    /// once caught up.
    fn done(&self, drain: &Drain) -> bool {
        if drain.since.is_none() && !self.config.until_end {
            return false;
        }
        let expired = drain.since.is_some_and(|since| since.elapsed() >= STOP_DRAIN_WAIT_MAX);
        let fresh = drain.since.is_none() || drain.fetched_since_stop || self.stored.is_empty();
        expired || (fresh && self.caught_up(drain.since.is_some()))
    }

    /// The next records: the ones fetched during the last write, else a
    /// fetch (bounded by the drain's time left after a stop). `None`: the
    /// loop looks again (the stop came, or the drain's time ran out).
    async fn next_poll(&mut self, stop: &mut Stop, drain: &mut Drain) -> Option<Result<Poll, ClientError>> {
        if let Some(prefetched) = self.prefetched.pop_front() {
            return Some(prefetched);
        }
        if let Some(since) = drain.since {
            // Bounded by the drain's time left: a broker that cannot be
            // reached (a join retried forever) must not hold the stop.
            let left = STOP_DRAIN_WAIT_MAX.saturating_sub(since.elapsed());
            let poll = tokio::time::timeout(left, self.consumer.poll()).await.ok()?;
            drain.fetched_since_stop = true;
            return Some(poll);
        }
        tokio::select! {
            poll = self.consumer.poll() => Some(poll),
            _ = stop.stopped() => None,
        }
    }

    /// A fetch failed and is retried after a pause: a broker that keeps
    /// failing it (a storage error on its disk) is not retried in silence.
    async fn fetch_failed(&mut self, error: &ClientError, failing_since: &mut Option<Instant>) {
        self.metrics.fetch_errors.increment(1);
        let failing = *failing_since.get_or_insert_with(Instant::now);
        if failing.elapsed() >= FETCH_FAILING_LOUD_AFTER {
            tracing::error!(%error, failing_s = failing.elapsed().as_secs(), "fetching keeps failing; retrying");
        } else {
            tracing::warn!(%error, "consuming failed; retrying");
        }
        self.pause(FETCH_RETRY_PAUSE).await;
    }

    /// Whether every owned partition is fetched up to its end (as of the
    /// last fetch). Without partitions: caught up when stopping (nothing
    /// to finish), not yet otherwise (the group may still assign some).
    fn caught_up(&self, stopping: bool) -> bool {
        if self
            .prefetched
            .iter()
            .any(|poll| poll.as_ref().map_or(true, |poll| !poll.records.is_empty()))
        {
            return false; // fetched, not loaded yet
        }
        if self.stored.is_empty() {
            return stopping;
        }
        self.stored.keys().all(
            |tp| match (self.consumer.position(tp), self.consumer.high_watermark(tp)) {
                (Some(position), Some(end)) => position >= end,
                _ => false,
            },
        )
    }

    /// Whether the records gathered go now, before the batch is full or
    /// due: nothing fetched waits to be gathered and, the loop being here,
    /// no write is in flight. Waiting `batch_wait_ms` would leave the
    /// warehouse idle; what comes during this write (fetched alongside it)
    /// makes the next batch.
    fn write_now(&self, gathering: &Gathering) -> bool {
        self.config.write_when_idle && !gathering.records.is_empty() && self.prefetched.is_empty()
    }

    /// Records on the broker not yet in the warehouse, per owned partition.
    fn publish_lag(&mut self, pending_from: &HashMap<TopicPartition, i64>) {
        self.metrics
            .warehouse_up(!self.stats.warehouse_down.load(Ordering::Relaxed));
        for (tp, stored) in &self.stored {
            let loaded_to = stored
                .or_else(|| pending_from.get(tp).copied())
                .or_else(|| self.consumer.position(tp));
            let Some(loaded_to) = loaded_to else {
                continue;
            };
            self.lag.loaded_to.insert(tp.clone(), loaded_to);
            if let Some(high_watermark) = self.consumer.high_watermark(tp) {
                self.lag.high_watermark.insert(tp.clone(), high_watermark);
            }
            let Some(end) = self.lag.end(tp) else {
                continue;
            };
            self.metrics.lag(&tp.topic, tp.partition, end - loaded_to);
        }
    }
}

/// After a stop, how long a loader goes on loading what the topic already
/// holds (the senders have drained into it) before it commits what it has
/// and leaves: well inside the supervisor's 60 s for every role.
pub const STOP_DRAIN_WAIT_MAX: Duration = Duration::from_secs(10);

/// The first pause before opening the warehouse again; it doubles up to
/// `retry_backoff_max_ms`.
const OPEN_BACKOFF_MIN: Duration = Duration::from_millis(200);

/// A fetch failing this long is logged at ERROR (before: WARN per attempt).
const FETCH_FAILING_LOUD_AFTER: Duration = Duration::from_secs(30);

/// The pause before fetching again after a retriable fetch error.
const FETCH_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Records fetched and not yet written: the micro-batch being gathered,
/// bounded by records, bytes and time. Whole polls' records are kept (they
/// own the fetched buffers; the batch reads them as views), so gathering
/// and retries copy no record.
#[derive(Default)]
struct Gathering {
    records: Vec<Records>,
    /// Records in `records`, all polls together.
    count: usize,
    /// First pending offset per partition, for the lag of partitions the
    /// warehouse has no offset for yet.
    from: HashMap<TopicPartition, i64>,
    started: Option<Instant>,
    bytes: usize,
}

impl Gathering {
    fn add(&mut self, records: Records) {
        if records.is_empty() {
            return;
        }
        self.started.get_or_insert_with(Instant::now);
        // Records come in runs per partition: look at each run's first.
        let mut previous: Option<(&str, i32)> = None;
        for record in &records {
            if previous == Some((record.topic, record.partition)) {
                continue;
            }
            previous = Some((record.topic, record.partition));
            let tp = TopicPartition {
                topic: record.topic.to_owned(),
                partition: record.partition,
            };
            self.from.entry(tp).or_insert(record.offset);
        }
        self.bytes += records.iter().map(record_bytes).sum::<usize>();
        self.count += records.len();
        self.records.push(records);
    }

    /// Full (by records or bytes) or due (by time), and not empty.
    fn is_ready(&self, config: &LoaderConfig) -> bool {
        let full = self.count >= config.batch_records_max || self.bytes >= config.batch_bytes_max;
        let due = self.started.is_some_and(|t| t.elapsed() >= config.batch_wait());
        !self.records.is_empty() && (full || due)
    }

    /// The records, for a flush; the batch starts afresh.
    fn take_records(&mut self) -> Vec<Records> {
        let records = std::mem::take(&mut self.records);
        self.clear();
        records
    }

    /// Drops what was gathered (keeping the list's allocation).
    fn clear(&mut self) {
        self.records.clear();
        self.count = 0;
        self.from.clear();
        self.started = None;
        self.bytes = 0;
    }
}

/// A stop's drain: since when, and whether a fetch sent after the stop has
/// come back: "caught up" at a stop must mean up to what the topic holds
/// now (the senders have drained into it), not to the end an earlier fetch
/// (one sent ahead, or answered before the last lines) reported.
#[derive(Debug, Default)]
struct Drain {
    since: Option<Instant>,
    fetched_since_stop: bool,
}

/// What a record holds in memory, for `batch_bytes_max`.
fn record_bytes(record: RecordView<'_>) -> usize {
    record.value.map_or(0, <[u8]>::len)
        + record.key.map_or(0, <[u8]>::len)
        + record
            .headers()
            .map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len))
            .sum::<usize>()
}
