//! `relay broker`: runs the broker until SIGTERM or SIGINT, then shuts down
//! cleanly (in-flight requests finish, partitions are flushed and marked clean).

use super::metrics;
use super::signal::wait_for_signal;
use crate::cli::BrokerArgs;
use crate::config_file;
use crate::exit;
use relay_broker::broker::Broker;

pub fn run(args: BrokerArgs) -> i32 {
    config_file::init_logging();
    let (mut config, metrics_listen) = match config_file::load(args.config.as_deref()) {
        Ok(config) => (config.broker, config.metrics_listen),
        Err(error) => {
            eprintln!("relay broker: {error}");
            return exit::USAGE;
        }
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(data_dir) = args.data_dir {
        config.data_dir = data_dir;
    }
    if let Err(error) = config.validate() {
        eprintln!("relay broker: {error}");
        return exit::USAGE;
    }
    let endpoint = metrics::install(args.metrics.metrics.as_deref(), metrics_listen.as_deref());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let broker = match Broker::start(config).await {
            Ok(broker) => broker,
            Err(error) => {
                eprintln!("relay broker: {error}");
                return exit::FAILURE;
            }
        };
        metrics::watch_broker(&endpoint, &broker);
        let serving = match metrics::serve(&endpoint, "broker").await {
            Ok(serving) => serving,
            Err(code) => {
                broker.shutdown().await;
                return code;
            }
        };
        // Tests and scripts read this line to learn the ports when listening on :0.
        metrics::announce(&format!(
            "relay broker listening on {} (cluster {}){serving}",
            broker.local_addr(),
            broker.cluster_id()
        ));
        wait_for_signal().await;
        tracing::info!("shutting down");
        broker.shutdown().await;
        exit::SUCCESS
    })
}
