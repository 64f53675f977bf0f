//! [`Endpoint`]: this process's `/metrics` and `/health`, and the hooks each
//! role registers on it: the broker's state gauges and fsync health, each
//! loader's warehouse health, each sender's line. The supervisor calls these
//! as it starts roles; roles record their own counters themselves.

use super::{http, Observer};
use relay_broker::broker::Broker;
use relay_loader::loader::LoaderStats;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where this process serves its metrics, and the recorder behind them.
pub struct Endpoint {
    observer: Arc<Observer>,
    address: String,
}

impl Endpoint {
    /// Installs the process's recorder and describes every role's metrics.
    pub fn install(address: String) -> Self {
        let observer = Observer::global();
        relay_broker::metrics::describe();
        relay_sender::metrics::describe();
        relay_loader::metrics::describe();
        Self { observer, address }
    }

    /// Serves `/metrics` and `/health`; answers the bound address.
    pub async fn serve(&self) -> Result<SocketAddr, String> {
        http::serve(&self.address, Arc::clone(&self.observer)).await
    }

    /// Broker gauges (offsets, lag, segments, connections) and a health check
    /// that fails while any partition is poisoned by a failed fsync.
    pub fn watch_broker(&self, broker: &Broker) {
        let context = Arc::clone(broker.context());
        self.observer
            .add_collector(move || relay_broker::metrics::publish_state_gauges(&context));
        let context = Arc::clone(broker.context());
        self.observer.add_health_check("broker", move || {
            let health = context.health();
            if health.is_healthy() {
                Ok(())
            } else {
                Err(health.to_string())
            }
        });
    }

    /// A loader's health check: failing while its warehouse is unavailable
    /// or a batch keeps failing ([`LoaderStats::health`]).
    pub fn watch_loader(&self, table: &str, stats: Arc<LoaderStats>) {
        self.observer
            .add_health_check(&format!("load {table}"), move || stats.health());
    }

    /// A sender's health check: failing (degraded) while a path pattern
    /// matches nothing or a directory or file cannot be read; its counters
    /// are recorded by the sender itself.
    pub fn watch_sender(&self, topic: &str, shared: Arc<relay_sender::SenderShared>) {
        self.observer.add_health_check(&format!("send {topic}"), move || {
            let problems = shared.problems.describe();
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems.join("; "))
            }
        });
    }
}
