//! `relay broker`: runs the broker until SIGTERM or SIGINT, then shuts down
//! cleanly (in-flight requests finish, partitions are flushed and marked clean).

use super::client::report;
use crate::cli::BrokerArgs;
use crate::{exit, overrides};
use relay_supervisor::{logging, supervisor, RelayConfig};

pub fn run(args: BrokerArgs) -> i32 {
    logging::init_logging();
    let mut config = match RelayConfig::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("relay broker: {error}");
            return exit::USAGE;
        }
    };
    overrides::broker(&args, &mut config);
    let metrics = args.metrics.metrics.clone().or(config.metrics_listen);
    let data_dir = std::path::absolute(&config.broker.data_dir).unwrap_or_else(|_| config.broker.data_dir.clone());
    let new_cluster = relay_broker::meta::is_new_cluster(&data_dir);
    let errors = supervisor::run(metrics, async move |supervisor| {
        let broker = supervisor.start_broker(config.broker).await?;
        // Tests and scripts read this line to learn the ports when listening on :0.
        Ok(format!(
            "relay broker listening on {} (cluster {}{}, data_dir {})",
            broker.local_addr(),
            broker.cluster_id(),
            if new_cluster { ", created as a new cluster" } else { "" },
            data_dir.display()
        ))
    });
    report("broker", &errors)
}
