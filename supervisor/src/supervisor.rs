//! [`Supervisor`]: starts the roles of one process (a broker, senders,
//! loaders, helper tasks), registers their metrics and health, and stops them
//! with one policy: on SIGTERM or SIGINT every task is told to stop, each
//! gets what is left of [`STOP_WAIT_MAX`] to finish (senders drain in-flight
//! lines and save their registries, loaders commit the batch in hand), and
//! only then is the broker shut down, so the roles it serves never lose it
//! mid-stop. `relay broker`, `relay send`, `relay load` and `relay up` are
//! all this one type with different roles started.
//!
//! It never decides what a role does; it owns only their lifetimes.

use crate::error::{not_authorized, Result, SupervisorError};
use crate::observe::Endpoint;
use crate::signal::wait_for_signal;
use relay_broker::broker::Broker;
use relay_broker::config::BrokerConfig;
use relay_client::producer::Producer;
use relay_client::settings::Login;
use relay_client::{ClientSettings, Cluster};
use relay_loader::config::LoaderConfig;
use relay_loader::loader::{Loader, LoaderError, LoaderStats};
use relay_proto::stop::{stop_signal, Stop, StopSwitch};
use relay_sender::{Sender, SenderConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Longest a stop waits for every role to finish, counted once for all of
/// them from the signal. A sender's drain is bounded by its own
/// `drain_timeout_ms` (30 s by default), a loader's last commit by the
/// warehouse; 60 s covers both with room, and a role that still has not
/// stopped loses nothing by being abandoned: its lines are sent again and its
/// batch is loaded again after the restart.
pub const STOP_WAIT_MAX: Duration = Duration::from_secs(60);

/// What abandoning a role at a stop costs, for the message that says so.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Sender,
    Loader,
    Helper,
}

impl Kind {
    /// When a stop reaches this kind: data flows generator → senders →
    /// broker → loaders, so each is stopped after what feeds it.
    fn stop_order(self) -> usize {
        match self {
            Self::Helper => 0,
            Self::Sender => 1,
            Self::Loader => 2,
        }
    }

    fn consequence(self) -> &'static str {
        match self {
            Self::Sender => "lines not yet acknowledged are sent again on restart",
            Self::Loader => "the batch in hand is loaded again on restart",
            Self::Helper => "nothing of the pipeline is lost",
        }
    }
}

struct Task {
    role: String,
    kind: Kind,
    handle: JoinHandle<Result<()>>,
}

/// Runs one process's roles until SIGTERM or SIGINT, on a runtime of its own:
/// `start` starts them and answers the process's start line, to which the
/// metrics address is added; the line goes to stdout (scripts and tests read
/// the ports from it). A failed start stops what had started. Returns every
/// error, the start's first.
pub fn run(
    metrics_listen: Option<String>,
    start: impl AsyncFnOnce(&mut Supervisor) -> Result<String>,
) -> Vec<SupervisorError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let errors = runtime.block_on(async move {
        let mut supervisor = Supervisor::new(metrics_listen);
        let started = match start(&mut supervisor).await {
            Ok(line) => supervisor.serve_metrics().await.map(|serving| (line, serving)),
            Err(error) => Err(error),
        };
        match started {
            Ok((line, serving)) => {
                let serving = serving.map_or(String::new(), |local| format!(", metrics on http://{local}/metrics"));
                announce(&format!("{line}{serving}"));
                supervisor.run_until_signal().await
            }
            Err(error) => {
                let mut errors = vec![error];
                errors.extend(supervisor.stop(STOP_WAIT_MAX).await);
                errors
            }
        }
    });
    // Roles abandoned at the stop may still hold a blocking thread (a
    // warehouse call); the process exits without waiting for them.
    runtime.shutdown_background();
    errors
}

/// Prints a start line on stdout. A closed stdout (a supervisor that stopped
/// reading) is ignored: it must never stop the roles.
fn announce(line: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// The roles of one process and how they stop.
pub struct Supervisor {
    endpoint: Option<Endpoint>,
    /// One stop signal per kind of role, sent in data order.
    stops: [StopSwitch; 3],
    tasks: Vec<Task>,
    /// Woken when a role ends with an error: the process then stops as a whole.
    failed: Arc<Notify>,
    /// Roles still running, and the wake-up when the last one ends by itself
    /// (loaders with `until_end`): the process then stops too.
    running: Arc<AtomicUsize>,
    all_done: Arc<Notify>,
    broker: Option<Broker>,
}

impl Supervisor {
    /// A supervisor whose process serves `/metrics` and `/health` on
    /// `metrics_listen` when given. The recorder is installed here, before any
    /// role starts, since metric handles registered earlier record nothing.
    pub fn new(metrics_listen: Option<String>) -> Self {
        Self {
            endpoint: metrics_listen.map(Endpoint::install),
            stops: [stop_signal().0, stop_signal().0, stop_signal().0],
            tasks: Vec::new(),
            failed: Arc::new(Notify::new()),
            running: Arc::new(AtomicUsize::new(0)),
            all_done: Arc::new(Notify::new()),
            broker: None,
        }
    }

    /// Starts serving `/metrics` and `/health`; `None` when no address is
    /// configured. Port 0 picks a free port, which the answer tells.
    pub async fn serve_metrics(&self) -> Result<Option<SocketAddr>> {
        match &self.endpoint {
            Some(endpoint) => endpoint.serve().await.map(Some).map_err(SupervisorError::Metrics),
            None => Ok(None),
        }
    }

    /// Opens the broker's storage and starts listening.
    pub async fn start_broker(&mut self, config: BrokerConfig) -> Result<&Broker> {
        config.validate().map_err(SupervisorError::Config)?;
        let broker = Broker::start(config).await?;
        if let Some(endpoint) = &self.endpoint {
            endpoint.watch_broker(&broker);
        }
        Ok(self.broker.insert(broker))
    }

    /// Starts one sender per config; senders that log in as the same user
    /// (`[client]`, or their `[send.login]`) share one idempotent producer that
    /// retries forever (a broker outage only pauses reading).
    pub async fn start_senders(
        &mut self,
        client: &ClientSettings,
        client_id: &str,
        senders: &[SenderConfig],
    ) -> Result<()> {
        if senders.is_empty() {
            return Ok(());
        }
        let mut state_dirs = std::collections::HashMap::new();
        for config in senders {
            if let Some(other) = state_dirs.insert(config.state_dir(), &config.topic) {
                return Err(SupervisorError::Config(format!(
                    "[[send]] sections for topics {other} and {} share the state directory {}; give each its own state_dir",
                    config.topic,
                    config.state_dir().display()
                )));
            }
        }
        let mut by_login: Vec<(Option<&Login>, Vec<&SenderConfig>)> = Vec::new();
        for config in senders {
            match by_login.iter_mut().find(|(login, _)| *login == config.login.as_ref()) {
                Some((_, configs)) => configs.push(config),
                None => by_login.push((config.login.as_ref(), vec![config])),
            }
        }
        for (login, configs) in by_login {
            let settings = client
                .with_login(login)
                .map_err(|e| SupervisorError::Config(format!("[[send]] for topic {}: {e}", configs[0].topic)))?;
            self.start_senders_as(&settings, client_id, &configs).await?;
        }
        Ok(())
    }

    /// Starts `senders`, all logged in as `client` says, on one producer.
    async fn start_senders_as(
        &mut self,
        client: &ClientSettings,
        client_id: &str,
        senders: &[&SenderConfig],
    ) -> Result<()> {
        let cluster = Cluster::connect(client.cluster_config(client_id)?).await?;
        let user = client.sasl_username.clone();
        let producer = Producer::new(cluster, relay_sender::producer_config())
            .await
            .map_err(|e| {
                let role = || format!("[[send]] for topic {}", senders[0].topic);
                not_authorized(role, user.as_deref(), Some(&e)).unwrap_or(SupervisorError::Client(e))
            })?;
        let producer = Arc::new(producer);
        for config in senders {
            let sender =
                Sender::new((*config).clone(), Arc::clone(&producer)).map_err(|source| SupervisorError::Sender {
                    topic: config.topic.clone(),
                    source,
                })?;
            if let Some(endpoint) = &self.endpoint {
                endpoint.watch_sender(&config.topic, Arc::clone(sender.shared()));
            }
            let topic = config.topic.clone();
            let stopped = self.stopped(Kind::Sender);
            let user = user.clone();
            self.spawn(format!("send {}", config.topic), Kind::Sender, async move {
                sender.run(stopped).await.map_err(|source| {
                    let role = || format!("[[send]] for topic {topic}");
                    not_authorized(role, user.as_deref(), source.client_error())
                        .unwrap_or(SupervisorError::Sender { topic, source })
                })
            });
        }
        Ok(())
    }

    /// Starts one loader per config. Each has its own connections: the broker
    /// answers a connection's requests in order, so a loader's long-polling
    /// fetch on a shared connection would hold other roles' requests.
    pub async fn start_loaders(
        &mut self,
        client: &ClientSettings,
        client_id: &str,
        loaders: Vec<LoaderConfig>,
    ) -> Result<()> {
        for config in loaders {
            let table = config.label();
            let client = client
                .with_login(config.login.as_ref())
                .map_err(|e| SupervisorError::Config(format!("[[load]] {table}: {e}")))?;
            let user = client.sasl_username.clone();
            let cluster = Cluster::connect(client.cluster_config(client_id)?).await?;
            Loader::check(&config).map_err(|source| SupervisorError::Loader {
                table: table.clone(),
                source,
            })?;
            // Watched from the start: a loader waiting for its warehouse
            // answers /health (503) and shows its lag meanwhile.
            let stats = Arc::new(LoaderStats::default());
            if let Some(endpoint) = &self.endpoint {
                endpoint.watch_loader(&table, Arc::clone(&stats));
            }
            let mut stopped = self.stopped(Kind::Loader);
            let role = format!("load {table}");
            self.spawn(role, Kind::Loader, async move {
                let failed = |source: LoaderError| {
                    let role = || format!("[[load]] {table}");
                    not_authorized(role, user.as_deref(), source.client_error()).unwrap_or_else(|| {
                        SupervisorError::Loader {
                            table: table.clone(),
                            source,
                        }
                    })
                };
                let loader = tokio::select! {
                    loader = Loader::new(cluster, config, stats) => loader.map_err(&failed)?,
                    // Stopped while waiting for the warehouse: nothing was fetched.
                    _ = stopped.stopped() => return Ok(()),
                };
                loader.run(stopped).await.map_err(failed)
            });
        }
        Ok(())
    }

    /// Runs a blocking helper (the event generator) on its own thread; it is
    /// handed the stop signal, on when the process stops.
    pub fn spawn_blocking(
        &mut self,
        role: &str,
        work: impl FnOnce(Stop) -> std::result::Result<(), String> + Send + 'static,
    ) {
        let stopped = self.stopped(Kind::Helper);
        let name = role.to_owned();
        let ended = self.ending();
        let handle = tokio::task::spawn_blocking(move || {
            let result = work(stopped).map_err(|reason| SupervisorError::Task { role: name, reason });
            ended(result.is_err());
            result
        });
        self.tasks.push(Task {
            role: role.to_owned(),
            kind: Kind::Helper,
            handle,
        });
    }

    /// What a role calls when it ends: wakes the run on a failure, or when
    /// it was the last role running.
    fn ending(&self) -> impl FnOnce(bool) + Send + 'static {
        self.running.fetch_add(1, Ordering::AcqRel);
        let (failed, running, all_done) = (
            Arc::clone(&self.failed),
            Arc::clone(&self.running),
            Arc::clone(&self.all_done),
        );
        move |error| {
            if error {
                failed.notify_one();
            }
            if running.fetch_sub(1, Ordering::AcqRel) == 1 {
                all_done.notify_one();
            }
        }
    }

    /// The stop signal of a kind of role.
    fn stopped(&self, kind: Kind) -> Stop {
        self.stops[kind.stop_order()].subscribe()
    }

    fn spawn(&mut self, role: String, kind: Kind, run: impl Future<Output = Result<()>> + Send + 'static) {
        let ended = self.ending();
        let handle = tokio::spawn(async move {
            let result = run.await;
            ended(result.is_err());
            result
        });
        self.tasks.push(Task { role, kind, handle });
    }

    /// Runs until SIGTERM or SIGINT, until a role fails, or until every role
    /// has finished by itself, then
    /// [`Self::stop`]s everything.
    pub async fn run_until_signal(self) -> Vec<SupervisorError> {
        tokio::select! {
            _ = wait_for_signal() => {}
            _ = self.failed.notified() => tracing::error!("a role failed; stopping the others"),
            _ = self.all_done.notified() => tracing::info!("every role has finished"),
        }
        match self.broker {
            Some(_) => tracing::info!("stopping: senders, loaders and helpers first, then the broker"),
            None => tracing::info!("stopping: senders, loaders and helpers"),
        }
        self.stop(STOP_WAIT_MAX).await
    }

    /// Stops the roles in data order, waiting up to `wait_max` in all:
    /// helpers (the generator) first, then senders (which drain what they
    /// sent), then loaders (which load what the topic now holds, bounded),
    /// and the broker last. Returns what failed: a role's own error, or that
    /// it did not stop in time (it is abandoned).
    pub async fn stop(self, wait_max: Duration) -> Vec<SupervisorError> {
        let deadline = Instant::now() + wait_max;
        let mut errors = Vec::new();
        let mut tasks = self.tasks;
        tasks.sort_by_key(|task| task.kind.stop_order());
        let mut signalled = None;
        for task in tasks {
            if signalled != Some(task.kind.stop_order()) {
                // Every kind up to this one: a kind with no tasks is signalled too.
                for stop in &self.stops[..=task.kind.stop_order()] {
                    stop.stop();
                }
                signalled = Some(task.kind.stop_order());
            }
            let abort = task.handle.abort_handle();
            match tokio::time::timeout_at(deadline, task.handle).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => errors.push(error),
                Ok(Err(panic)) => errors.push(SupervisorError::Task {
                    role: task.role,
                    reason: panic.to_string(),
                }),
                Err(_) => {
                    abort.abort();
                    errors.push(SupervisorError::StopTimeout {
                        role: task.role,
                        seconds: wait_max.as_secs(),
                        consequence: task.kind.consequence(),
                    });
                }
            }
        }
        for stop in &self.stops {
            stop.stop();
        }
        if let Some(broker) = self.broker {
            broker.shutdown().await;
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_role_that_ignores_the_stop_is_abandoned_after_the_wait_with_its_cost_named() {
        let mut supervisor = Supervisor::new(None);
        supervisor.spawn_blocking("obeys", |stopped| {
            while !stopped.is_stopped() {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(())
        });
        supervisor.spawn_blocking("ignores", |_| {
            std::thread::sleep(Duration::from_millis(1500));
            Ok(())
        });
        let started = std::time::Instant::now();
        let errors = supervisor.stop(Duration::from_millis(300)).await;
        assert!(
            started.elapsed() < Duration::from_millis(1200),
            "the stop waited for the stuck role"
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        match &errors[0] {
            SupervisorError::StopTimeout { role, consequence, .. } => {
                assert_eq!(role, "ignores");
                assert_eq!(*consequence, Kind::Helper.consequence());
            }
            other => panic!("expected a stop timeout, got {other}"),
        }
    }

    #[tokio::test]
    async fn a_failed_role_stops_the_others_without_a_signal() {
        let mut supervisor = Supervisor::new(None);
        supervisor.spawn_blocking("waits for the stop", |stopped| {
            while !stopped.is_stopped() {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(())
        });
        supervisor.spawn_blocking("fails", |_| Err("disk on fire".into()));
        let errors = tokio::time::timeout(Duration::from_secs(10), supervisor.run_until_signal())
            .await
            .expect("a failed role must end the run");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].to_string(), "fails: disk on fire");
        assert!(!errors[0].is_usage() && !errors[0].is_unreachable());
    }
}
