//! A running broker: opens the data directory (cluster id, topics, group
//! offsets), listens, runs the periodic work (group sessions, retention,
//! interval fsyncs of the partitions and of the group offsets log), and shuts
//! down cleanly: stop accepting, finish in-flight requests, flush and close
//! every partition, and write the recovery checkpoint that marks them clean.

use crate::config::{BrokerConfig, GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT};
use crate::context::{BrokerContext, Context};
use crate::data_dir_lock::DataDirLock;
pub use crate::error::BrokerError;
use crate::group::coordinator::{Coordinator, GroupSettings, TICK_INTERVAL};
use crate::group::offset_store::OffsetStore;
use crate::health::Health;
use crate::log::FaultInjector;
use crate::meta::{load_cluster_id, ProducerIds};
use crate::security::Security;
use crate::server::listener;
use crate::topics::Topics;
use relay_proto::clock::now_ms;
use relay_proto::stop::{stop_signal, StopSwitch};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

/// A started broker. Dropping it does not stop it; call [`Broker::shutdown`].
pub struct Broker {
    /// Released when the broker is dropped (after shutdown).
    _data_dir_lock: DataDirLock,
    local_addr: SocketAddr,
    context: Context,
    /// Stops the listener and, through it, every connection.
    stop: StopSwitch,
    listener: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
}

impl Broker {
    /// Opens storage and starts listening. Must run inside a tokio runtime.
    pub async fn start(config: BrokerConfig) -> Result<Self, BrokerError> {
        Self::start_with_faults(config, FaultInjector::default()).await
    }

    pub async fn start_with_faults(config: BrokerConfig, faults: FaultInjector) -> Result<Self, BrokerError> {
        config.validate().map_err(BrokerError::Config)?;
        let security = Security::load(&config)?;
        crate::log::checkpoint::create_dir_all(&config.data_dir)?;
        let data_dir_lock = DataDirLock::acquire(&config.data_dir)?;
        let (listener, local_addr) = bind(&config).await?;
        let opened = open_data_dir(&config, faults).await?;
        let context = build_context(&config, local_addr, opened, security);
        let (stop, listener_stop) = stop_signal();
        let background = spawn_background(&context, &config);
        let listener = tokio::spawn(listener::run(listener, Arc::clone(&context), listener_stop));
        tracing::info!(
            listen = %local_addr,
            data_dir = %config.data_dir.display(),
            cluster_id = %context.cluster_id,
            topics = context.topics.list().len(),
            fsync = ?config.log.fsync,
            security = context.security.protocol_name(),
            "broker started"
        );
        Ok(Self {
            _data_dir_lock: data_dir_lock,
            local_addr,
            context,
            stop,
            listener,
            background,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn cluster_id(&self) -> &str {
        &self.context.cluster_id
    }

    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Whether every partition accepts writes; a partition poisoned by a
    /// failed fsync is listed until the broker restarts.
    pub fn health(&self) -> Health {
        self.context.health()
    }

    /// Stops accepting, lets in-flight requests finish (bounded), then
    /// flushes and closes every partition cleanly.
    pub async fn shutdown(self) {
        self.stop.stop();
        let _ = self.listener.await;
        for task in self.background {
            task.abort();
        }
        let context = Arc::clone(&self.context);
        let _ = tokio::task::spawn_blocking(move || {
            context.topics.close_all();
            if let Err(error) = context.coordinator.store().close() {
                tracing::error!(%error, "closing the group offsets log failed");
            }
        })
        .await;
        tracing::info!("broker stopped cleanly");
    }
}

/// The listening socket on `listen`, and the address it got (port 0 picks one).
async fn bind(config: &BrokerConfig) -> Result<(TcpListener, SocketAddr), BrokerError> {
    let listen_error = |source| BrokerError::Listen {
        address: config.listen.clone(),
        source,
    };
    let listener = TcpListener::bind(&config.listen).await.map_err(listen_error)?;
    let local_addr = listener.local_addr().map_err(listen_error)?;
    Ok((listener, local_addr))
}

/// What the data directory holds, opened (recovered where it must be).
struct Opened {
    cluster_id: String,
    topics: Topics,
    store: Arc<OffsetStore>,
    producer_ids: ProducerIds,
}

/// Opens the cluster id, the topics, the group offsets and the producer ids,
/// off the async threads (recovery reads and writes files).
async fn open_data_dir(config: &BrokerConfig, faults: FaultInjector) -> Result<Opened, BrokerError> {
    let opening = config.clone();
    tokio::task::spawn_blocking(move || {
        Ok::<_, BrokerError>(Opened {
            cluster_id: load_cluster_id(&opening.data_dir, opening.cluster_id.as_deref())?,
            topics: Topics::open(&opening, faults.clone())?,
            store: OffsetStore::open(&opening.data_dir, &opening.log, faults)?,
            producer_ids: ProducerIds::open(&opening.data_dir)?,
        })
    })
    .await
    .expect("opening the data directory does not panic")
}

/// The shared state every layer reads, from the opened data directory.
fn build_context(config: &BrokerConfig, local_addr: SocketAddr, opened: Opened, security: Security) -> Context {
    let coordinator = Coordinator::new(
        opened.store,
        GroupSettings {
            session_timeout_ms_min: config.group_session_timeout_min_ms,
            session_timeout_ms_max: config.group_session_timeout_max_ms,
            initial_rebalance_delay: Duration::from_millis(
                config
                    .group_initial_rebalance_delay_ms
                    .unwrap_or(GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT),
            ),
        },
    );
    let advertised_host = match local_addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        ip => ip.to_string(),
    };
    Arc::new(BrokerContext {
        config: config.clone(),
        cluster_id: opened.cluster_id,
        advertised_host,
        advertised_port: i32::from(local_addr.port()),
        topics: Arc::new(opened.topics),
        coordinator,
        producer_ids: Arc::new(opened.producer_ids),
        data_visible: Notify::new(),
        request_memory: Arc::new(Semaphore::new(config.requests_memory_bytes_max)),
        security,
    })
}

fn spawn_background(context: &Context, config: &BrokerConfig) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let coordinator = Arc::clone(&context.coordinator);
    tasks.push(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(TICK_INTERVAL);
        loop {
            ticker.tick().await;
            coordinator.tick();
        }
    }));
    let (topics, store) = (Arc::clone(&context.topics), Arc::clone(context.coordinator.store()));
    let retention_every = Duration::from_millis(config.retention_check_interval_ms.max(1));
    tasks.push(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(retention_every);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let (topics, store) = (Arc::clone(&topics), Arc::clone(&store));
            let _ = tokio::task::spawn_blocking(move || {
                topics.enforce_retention(now_ms(), store.as_ref());
                if let Err(error) = store.compact_if_needed() {
                    tracing::error!(%error, "compacting the group offsets log failed");
                }
            })
            .await;
        }
    }));
    let (topics, store) = (Arc::clone(&context.topics), Arc::clone(context.coordinator.store()));
    let flush_every = Duration::from_millis(config.log.fsync_interval_ms.max(1));
    tasks.push(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(flush_every);
        loop {
            ticker.tick().await;
            let (topics, store) = (Arc::clone(&topics), Arc::clone(&store));
            let _ = tokio::task::spawn_blocking(move || flush_interval_logs(&topics, &store)).await;
        }
    }));
    tasks
}

/// The `interval` timer's work: fsyncs every partition whose policy is
/// `interval`, and the group offsets log when `[broker.log]` is, so an
/// acknowledged commit, like an acknowledged append, is lost in a machine
/// crash only within the last interval. Failures are logged; the log that
/// failed is poisoned and refuses writes until restart.
fn flush_interval_logs(topics: &Topics, store: &OffsetStore) {
    topics.flush_interval_partitions();
    if let Err(error) = store.flush_if_interval() {
        tracing::error!(%error, "interval fsync of the group offsets log failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::records::CommittedOffset;
    use crate::log::{FsyncPolicy, LogConfig, LogError};
    use relay_proto::{BatchBuilder, RecordSpec};

    /// Longer than any test: an `interval` append never fsyncs by itself.
    const INTERVAL_NEVER_DUE_MS: u64 = 3_600_000;

    #[test]
    fn the_interval_timer_fsyncs_the_group_offsets_log_too() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig {
            data_dir: dir.path().to_path_buf(),
            log: LogConfig {
                fsync: FsyncPolicy::Interval,
                fsync_interval_ms: INTERVAL_NEVER_DUE_MS,
                ..LogConfig::default()
            },
            ..BrokerConfig::default()
        };
        let faults = FaultInjector::default();
        let topics = Topics::open(&config, faults.clone()).unwrap();
        let topic = topics.create("events", 1, 1, &[], false).unwrap();
        let mut builder = BatchBuilder::new(now_ms());
        builder.push(RecordSpec {
            value: Some(b"event".to_vec()),
            ..RecordSpec::default()
        });
        topic.partitions[0].append(&mut builder.build()).unwrap();
        let store = OffsetStore::open(&config.data_dir, &config.log, faults.clone()).unwrap();
        let committed = CommittedOffset {
            offset: 1,
            leader_epoch: 0,
            commit_timestamp_ms: 1,
            metadata: String::new(),
        };
        store.commit("g", &[("events".into(), 0, committed.clone())]).unwrap();

        // Neither append was fsynced; both fsyncs of the timer fail, so each
        // log it fsyncs is poisoned.
        faults.fail_next_fsyncs(2);
        flush_interval_logs(&topics, &store);
        assert!(topic.partitions[0].is_poisoned(), "the partition was not fsynced");
        assert!(
            matches!(
                store.commit("g", &[("events".into(), 0, committed)]),
                Err(LogError::Poisoned { .. })
            ),
            "the group offsets log was not fsynced"
        );
    }
}
