//! `relay up`: the embedded default. The broker, every `[[send]]` and every
//! `[[load]]` of one config file run in one process; with `--gen-events RATE`
//! a generator writes game events into the first sender's directory so the
//! pipeline has something to carry. SIGTERM or SIGINT stop the generator,
//! drain the senders, finish the loaders' batches, then shut the broker down.

use super::client::report;
use crate::cli::UpArgs;
use crate::{exit, overrides};
use relay_supervisor::generator::{self, GeneratorConfig};
use relay_supervisor::{logging, supervisor, RelayConfig, SupervisorError};

pub fn run(args: UpArgs) -> i32 {
    logging::init_logging();
    let config = match RelayConfig::load(args.config.as_deref()).and_then(|mut config| {
        overrides::up(&args, &mut config);
        config.embedded_broker().validate().map_err(SupervisorError::Config)?;
        for loader in &config.load {
            loader.validate().map_err(SupervisorError::Config)?;
        }
        relay_loader::config::check_backfill_groups(&config.load).map_err(SupervisorError::Config)?;
        Ok(config)
    }) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("relay up: {error}");
            return exit::USAGE;
        }
    };
    let generator = match args.gen_events {
        Some(rate) => match config.send.first() {
            Some(sender) => match GeneratorConfig::for_send_paths(&sender.paths, rate) {
                Ok(generator) => Some(generator),
                Err(error) => {
                    eprintln!("relay up: {error}");
                    return exit::USAGE;
                }
            },
            None => {
                eprintln!("relay up: --gen-events needs a [[send]] section to write into");
                return exit::USAGE;
            }
        },
        None => None,
    };
    let metrics = args.metrics.metrics.clone().or(config.metrics_listen.clone());
    let errors = supervisor::run(metrics, async move |supervisor| {
        let data_dir = std::path::absolute(&config.broker.data_dir).unwrap_or_else(|_| config.broker.data_dir.clone());
        let new_cluster = relay_broker::meta::is_new_cluster(&data_dir);
        let broker = supervisor.start_broker(config.embedded_broker()).await?;
        let (address, cluster_id) = (broker.local_addr(), broker.cluster_id().to_owned());
        let client = config.embedded_client(broker)?;
        if let Some(generator) = generator {
            supervisor.spawn_blocking("generator", move |stopped| {
                generator::generate(&generator, || stopped.is_stopped()).map(|_| ())
            });
        }
        supervisor.start_senders(&client, "relay-up-send", &config.send).await?;
        supervisor
            .start_loaders(&client, "relay-up-load", config.load.clone())
            .await?;
        if config.send.is_empty() && config.load.is_empty() {
            tracing::warn!("no [[send]] or [[load]] section: running a bare broker (relay up --config config.toml.example runs the whole pipeline)");
        }
        Ok(format!(
            "relay up: broker on {address} (cluster {cluster_id}{}, data_dir {}), {} sender(s), {} loader(s)",
            if new_cluster { ", created as a new cluster" } else { "" },
            data_dir.display(),
            config.send.len(),
            config.load.len()
        ))
    });
    report("up", &errors)
}
