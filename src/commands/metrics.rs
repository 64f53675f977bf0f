//! `--metrics ADDR` for every long-running role: installs the recorder
//! before the roles start (handles registered earlier would record
//! nothing), serves the endpoint, and registers each role's scrape-time
//! gauges and health check.

use crate::exit;
use crate::observe::{http, Observer};
use relay_broker::broker::Broker;
use relay_loader::loader::LoaderStats;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The endpoint of this process: the flag, else `metrics_listen` of the config.
pub struct Endpoint {
    pub observer: Arc<Observer>,
    pub address: String,
}

/// Installs the recorder when an address is configured.
pub fn install(flag: Option<&str>, config: Option<&str>) -> Option<Endpoint> {
    let address = flag.or(config)?.to_owned();
    let observer = Observer::global();
    relay_broker::metrics::describe();
    relay_client::sender::metrics::describe();
    relay_loader::metrics::describe();
    Some(Endpoint { observer, address })
}

/// Serves `/metrics` and `/health`; returns where, as the text the role
/// adds to its start line (port 0 picks a free port; scripts read it there).
pub async fn serve(endpoint: &Option<Endpoint>, command: &str) -> Result<String, i32> {
    let Some(endpoint) = endpoint else {
        return Ok(String::new());
    };
    match http::serve(&endpoint.address, Arc::clone(&endpoint.observer)).await {
        Ok(local) => Ok(format!(", metrics on http://{local}/metrics")),
        Err(error) => {
            eprintln!("relay {command}: {error}");
            Err(exit::USAGE)
        }
    }
}

/// Broker gauges (offsets, lag, segments, connections) and a health check
/// that fails while any partition is poisoned by a failed fsync.
pub fn watch_broker(endpoint: &Option<Endpoint>, broker: &Broker) {
    let Some(endpoint) = endpoint else { return };
    let context = Arc::clone(broker.context());
    endpoint
        .observer
        .add_collector(move || relay_broker::metrics::publish_state_gauges(&context));
    let context = Arc::clone(broker.context());
    endpoint.observer.add_health_check("broker", move || {
        let poisoned: Vec<String> = context
            .topics
            .list()
            .iter()
            .flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .enumerate()
                    .filter(|(_, log)| log.is_poisoned())
                    .map(|(index, _)| format!("{}-{index}", topic.name))
                    .collect::<Vec<_>>()
            })
            .collect();
        if poisoned.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "partitions refuse writes after a failed fsync: {}",
                poisoned.join(", ")
            ))
        }
    });
}

/// A loader's health check: failing while its warehouse is unavailable.
pub fn watch_loader(endpoint: &Option<Endpoint>, table: &str, stats: Arc<LoaderStats>) {
    let Some(endpoint) = endpoint else { return };
    endpoint.observer.add_health_check(&format!("load {table}"), move || {
        if stats.warehouse_down.load(Ordering::Relaxed) {
            Err("warehouse unavailable; retrying".into())
        } else {
            Ok(())
        }
    });
}

/// A sender's health line (its counters are recorded by the sender itself).
pub fn watch_sender(endpoint: &Option<Endpoint>, topic: &str) {
    let Some(endpoint) = endpoint else { return };
    endpoint.observer.add_health_check(&format!("send {topic}"), || Ok(()));
}

/// Prints a role's start line on stdout. A closed stdout (a supervisor that
/// stopped reading) is ignored: it must never stop the role.
pub fn announce(line: &str) {
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}
