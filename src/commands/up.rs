//! `relay up`: the embedded default. The broker, every `[[send]]` and every
//! `[[load]]` of one config file run in one process, each as its own task;
//! with `--gen-events RATE` a generator writes game events into the first
//! sender's directory so the pipeline has something to carry. SIGTERM or
//! SIGINT stop the generator, drain the senders, finish the loaders' batches,
//! then shut the broker down cleanly.

use super::gen_events::{self, GeneratorConfig};
use super::load::loader_section_config;
use super::metrics;
use super::send::sender_config;
use super::signal::wait_for_signal;
use crate::cli::UpArgs;
use crate::config_file;
use crate::exit;
use relay_broker::broker::Broker;
use relay_client::producer::{Producer, ProducerConfig};
use relay_client::security::{Security, SecuritySettings};
use relay_client::sender::Sender;
use relay_client::{Cluster, ClusterConfig};
use relay_loader::loader::Loader;
use std::sync::Arc;
use std::time::Duration;

/// How the embedded sender and loaders reach the embedded broker: the
/// `[client]` security settings (password also from RELAY_SASL_PASSWORD),
/// which must match `[broker.tls]` and `[broker.sasl]`.
fn embedded_security(config: &config_file::RelayConfig) -> Result<Security, String> {
    let client = &config.client;
    let settings = SecuritySettings {
        protocol: client.security_protocol.clone(),
        sasl_mechanism: client.sasl_mechanism.clone(),
        sasl_username: client.sasl_username.clone(),
        sasl_password: client
            .sasl_password
            .clone()
            .or_else(|| std::env::var("RELAY_SASL_PASSWORD").ok()),
        tls_ca_path: client.tls_ca_path.clone(),
    };
    let security = Security::from_settings(&settings).map_err(|e| format!("[client]: {e}"))?;
    let broker = (config.broker.sasl.is_some(), config.broker.tls.is_some());
    if broker != (security.sasl.is_some(), security.tls.is_some()) {
        let wanted = relay_proto::sasl::security_protocol(broker.0, broker.1);
        return Err(format!(
            "the embedded broker's listener is {wanted} but [client] security_protocol is {}; \
             set [client] security_protocol = \"{wanted}\" (with sasl_username and the password, tls_ca_path) \
             so the embedded sender and loaders can connect",
            security.protocol_name()
        ));
    }
    Ok(security)
}

pub fn run(args: UpArgs) -> i32 {
    config_file::init_logging();
    let config = match config_file::load(args.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("relay up: {error}");
            return exit::USAGE;
        }
    };
    if let Err(error) = config.broker.validate() {
        eprintln!("relay up: {error}");
        return exit::USAGE;
    }
    let loads = match config
        .load
        .iter()
        .map(loader_section_config)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(loads) => loads,
        Err(error) => {
            eprintln!("relay up: {error}");
            return exit::USAGE;
        }
    };
    let security = match embedded_security(&config) {
        Ok(security) => security,
        Err(error) => {
            eprintln!("relay up: {error}");
            return exit::USAGE;
        }
    };
    let endpoint = metrics::install(args.metrics.metrics.as_deref(), config.metrics_listen.as_deref());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let broker = match Broker::start(config.broker.clone()).await {
            Ok(broker) => broker,
            Err(error) => {
                eprintln!("relay up: {error}");
                return exit::FAILURE;
            }
        };
        metrics::watch_broker(&endpoint, &broker);
        let serving = match metrics::serve(&endpoint, "up").await {
            Ok(serving) => serving,
            Err(code) => {
                broker.shutdown().await;
                return code;
            }
        };
        metrics::announce(&format!(
            "relay up: broker on {} (cluster {}), {} sender(s), {} loader(s){serving}",
            broker.local_addr(),
            broker.cluster_id(),
            config.send.len(),
            loads.len()
        ));
        // Each role gets its own connections: the broker answers a
        // connection's requests in order, so a loader's long-polling fetch
        // on a shared connection would hold the senders' produce requests
        // (and other loaders' fetches) for up to its wait time.
        let connect = |role: &str| {
            let mut cluster_config = ClusterConfig::new(&broker.local_addr().to_string());
            cluster_config.client_id = format!("relay-up-{role}");
            cluster_config.expect_cluster_id = Some(broker.cluster_id().to_owned());
            cluster_config.security = security.clone();
            Cluster::connect(cluster_config)
        };
        let cluster = match connect("send").await {
            Ok(cluster) => cluster,
            Err(error) => {
                eprintln!("relay up: {error}");
                broker.shutdown().await;
                return exit::FAILURE;
            }
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut tasks: Vec<(String, tokio::task::JoinHandle<Result<(), String>>)> = Vec::new();
        if let Some(rate) = args.gen_events {
            let Some(section) = config.send.first() else {
                eprintln!("relay up: --gen-events needs a [[send]] section to write into");
                broker.shutdown().await;
                return exit::USAGE;
            };
            let generator = GeneratorConfig::for_send_paths(&section.paths, rate);
            match generator {
                Ok(generator) => tasks.push((
                    "generator".into(),
                    tokio::task::spawn_blocking({
                        let stopped = stopped.clone();
                        move || gen_events::generate(&generator, || *stopped.borrow()).map(|_| ())
                    }),
                )),
                Err(error) => {
                    eprintln!("relay up: {error}");
                    broker.shutdown().await;
                    return exit::USAGE;
                }
            }
        }
        if !config.send.is_empty() {
            let producer_config = ProducerConfig {
                buffer_bytes_max: 16 * 1024 * 1024,
                delivery_timeout: None,
                ..ProducerConfig::default()
            };
            let producer = match Producer::new(Arc::clone(&cluster), producer_config).await {
                Ok(producer) => Arc::new(producer),
                Err(error) => {
                    eprintln!("relay up: {error}");
                    broker.shutdown().await;
                    return exit::FAILURE;
                }
            };
            for section in &config.send {
                match Sender::new(sender_config(section), Arc::clone(&producer)) {
                    Ok(sender) => {
                        metrics::watch_sender(&endpoint, &section.topic);
                        tasks.push((
                            format!("send {}", section.topic),
                            tokio::spawn(sender.run(stopped.clone())),
                        ));
                    }
                    Err(error) => {
                        eprintln!("relay up: [[send]] {}: {error}", section.topic);
                        broker.shutdown().await;
                        return exit::USAGE;
                    }
                }
            }
        }
        for (loader_config, start) in loads {
            let table = loader_config.table.clone();
            let cluster = match connect("load").await {
                Ok(cluster) => cluster,
                Err(error) => {
                    eprintln!("relay up: {error}");
                    broker.shutdown().await;
                    return exit::FAILURE;
                }
            };
            match Loader::new(cluster, loader_config, start).await {
                Ok(loader) => {
                    metrics::watch_loader(&endpoint, &table, Arc::clone(&loader.stats));
                    let stopped = stopped.clone();
                    tasks.push((
                        format!("load {table}"),
                        tokio::spawn(async move { loader.run(stopped).await.map_err(|e| e.to_string()) }),
                    ));
                }
                Err(error) => {
                    eprintln!("relay up: [[load]] {table}: {error}");
                    broker.shutdown().await;
                    return exit::USAGE;
                }
            }
        }
        wait_for_signal().await;
        tracing::info!("stopping: generator, senders and loaders first, then the broker");
        let _ = stop.send(true);
        let mut code = exit::SUCCESS;
        for (name, task) in tasks {
            match tokio::time::timeout(Duration::from_secs(60), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(error))) => {
                    eprintln!("relay up: {name}: {error}");
                    code = exit::FAILURE;
                }
                Ok(Err(error)) => {
                    eprintln!("relay up: {name}: {error}");
                    code = exit::FAILURE;
                }
                Err(_) => eprintln!("relay up: {name} did not stop in 60 s"),
            }
        }
        broker.shutdown().await;
        code
    })
}
