//! What a running role exposes about itself: the process-wide Prometheus
//! recorder, the hooks each role registers (state gauges computed at scrape
//! time, health checks: [`endpoint`]), and the HTTP server that serves
//! `/metrics` and `/health` ([`http`]).
//!
//! One process has one recorder and one endpoint: `relay up` registers the
//! broker's, the senders' and the loaders' hooks on the same [`Observer`].

pub mod endpoint;
pub mod http;

pub use endpoint::Endpoint;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use parking_lot::Mutex;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Histogram buckets, in seconds, for every latency Relay records: from
/// half a millisecond (a group-committed fsync on a fast disk) to 10 s (a
/// warehouse transaction during an outage's recovery).
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Finer buckets, from 25 µs, for the broker latencies that explain a
/// produce's answer time millisecond by millisecond: each request stage, the
/// request total, produce (arrival to durable) and fsync.
const REQUEST_BUCKETS_SECONDS: &[f64] = &[
    0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The histograms that get [`REQUEST_BUCKETS_SECONDS`].
const REQUEST_HISTOGRAMS: [&str; 4] = [
    relay_broker::metrics::REQUEST_STAGE,
    relay_broker::metrics::REQUEST_LATENCY,
    relay_broker::metrics::PRODUCE_LATENCY,
    relay_broker::metrics::FSYNC_LATENCY,
];

/// Gauges not set for this long disappear from the output: scrape-time
/// gauges of a deleted topic, or of a log file that is gone.
const GAUGE_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

type Collector = Box<dyn Fn() + Send + Sync>;
type HealthCheck = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The recorder's handle and the hooks of every role in this process.
pub struct Observer {
    handle: PrometheusHandle,
    collectors: Mutex<Vec<Collector>>,
    checks: Mutex<Vec<(String, HealthCheck)>>,
}

static OBSERVER: OnceLock<Arc<Observer>> = OnceLock::new();

impl Observer {
    /// The process's observer; the first call installs the global recorder.
    pub fn global() -> Arc<Observer> {
        Arc::clone(OBSERVER.get_or_init(|| {
            let mut builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS_SECONDS)
                .expect("latency buckets are not empty");
            for name in REQUEST_HISTOGRAMS {
                builder = builder
                    .set_buckets_for_metric(Matcher::Full(name.to_owned()), REQUEST_BUCKETS_SECONDS)
                    .expect("request buckets are not empty");
            }
            let handle = builder
                .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE_TIMEOUT))
                .install_recorder()
                .expect("the metrics recorder is installed once per process");
            Arc::new(Observer {
                handle,
                collectors: Mutex::new(Vec::new()),
                checks: Mutex::new(Vec::new()),
            })
        }))
    }

    /// Runs `collect` before every scrape (to set gauges from live state).
    pub fn add_collector(&self, collect: impl Fn() + Send + Sync + 'static) {
        self.collectors.lock().push(Box::new(collect));
    }

    /// Adds a named check to `/health`; an `Err` makes the answer 503.
    pub fn add_health_check(&self, name: &str, check: impl Fn() -> Result<(), String> + Send + Sync + 'static) {
        self.checks.lock().push((name.to_owned(), Box::new(check)));
    }

    /// The Prometheus text exposition of every metric, state gauges fresh.
    pub fn render(&self) -> String {
        for collect in self.collectors.lock().iter() {
            collect();
        }
        self.handle.render()
    }

    /// Each check's name and outcome.
    pub fn health(&self) -> Vec<(String, Result<(), String>)> {
        self.checks
            .lock()
            .iter()
            .map(|(name, check)| (name.clone(), check()))
            .collect()
    }

    /// Drains histogram samples into their buckets; run every few seconds.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}
