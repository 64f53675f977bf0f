//! `relay send`: one sender per `[[send]]` section (or per `--topic/--path`
//! flags), sharing one idempotent producer that retries forever, so a broker
//! outage only pauses reading. SIGTERM or SIGINT drain what is in flight and
//! save the registries.

use super::client::{connect, fail, runtime, with_config};
use super::metrics;
use super::signal::wait_for_signal;
use crate::cli::SendArgs;
use crate::config_file::{self, RelayConfig, SendSection};
use crate::exit;
use relay_client::producer::{Producer, ProducerConfig};
use relay_client::sender::{Sender, SenderConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The producer's byte budget for all senders: with one read chunk and one
/// unfinished line per file this keeps the process well under 64 MiB.
const SENDER_BUFFER_BYTES_MAX: usize = 16 * 1024 * 1024;

fn sections(args: &SendArgs, config: &RelayConfig) -> Result<Vec<SendSection>, String> {
    let mut sections = config.send.clone();
    if let Some(topic) = &args.topic {
        if args.paths.is_empty() {
            return Err("--topic needs at least one --path".into());
        }
        sections = vec![SendSection {
            topic: topic.clone(),
            paths: args.paths.clone(),
            state_dir: args.state_dir.clone(),
            key_field: args.key_field.clone(),
            line_bytes_max: relay_client::sender::LINE_BYTES_MAX_DEFAULT,
            open_files_max: 256,
            rotate_wait_ms: 5000,
        }];
    } else if !args.paths.is_empty() {
        return Err("--path needs --topic".into());
    }
    if sections.is_empty() {
        return Err("nothing to send: give --topic and --path, or a --config file with [[send]] sections".into());
    }
    Ok(sections)
}

pub fn sender_config(section: &SendSection) -> SenderConfig {
    let state_dir = section
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("./state/send-{}", section.topic)));
    let mut config = SenderConfig::new(&section.topic, section.paths.clone(), state_dir);
    config.key_field = section.key_field.clone();
    config.line_bytes_max = section.line_bytes_max;
    config.open_files_max = section.open_files_max;
    config.rotate_wait = Duration::from_millis(section.rotate_wait_ms);
    config
}

pub fn run(args: SendArgs) -> i32 {
    config_file::init_logging();
    let (config, sections) = match config_file::load(args.config.as_deref())
        .and_then(|config| sections(&args, &config).map(|sections| (config, sections)))
    {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("relay send: {error}");
            return exit::USAGE;
        }
    };
    let client = with_config(&args.client, &config.client);
    let endpoint = metrics::install(args.metrics.metrics.as_deref(), config.metrics_listen.as_deref());
    let runtime = runtime();
    runtime.block_on(async move {
        let serving = match metrics::serve(&endpoint, "send").await {
            Ok(serving) => serving,
            Err(code) => return code,
        };
        let cluster = match connect(&client, "relay-send").await {
            Ok(cluster) => cluster,
            Err(error) => return fail("send", &error),
        };
        tracing::info!(
            broker = client.broker.as_deref().unwrap_or(super::client::BROKER_DEFAULT),
            cluster_id = cluster.cluster_id().as_deref().unwrap_or("?"),
            senders = sections.len(),
            "sender started"
        );
        let config = ProducerConfig {
            buffer_bytes_max: SENDER_BUFFER_BYTES_MAX,
            delivery_timeout: None,
            ..ProducerConfig::default()
        };
        let producer = match Producer::new(cluster, config).await {
            Ok(producer) => Arc::new(producer),
            Err(error) => return fail("send", &error),
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut runs = Vec::new();
        for section in &sections {
            match Sender::new(sender_config(section), Arc::clone(&producer)) {
                Ok(sender) => {
                    metrics::watch_sender(&endpoint, &section.topic);
                    runs.push(tokio::spawn(sender.run(stopped.clone())))
                }
                Err(error) => {
                    eprintln!("relay send: [[send]] for topic {}: {error}", section.topic);
                    return exit::USAGE;
                }
            }
        }
        metrics::announce(&format!(
            "relay send: {} sender(s) to {}{serving}",
            runs.len(),
            client.broker.as_deref().unwrap_or(super::client::BROKER_DEFAULT)
        ));
        wait_for_signal().await;
        tracing::info!("stopping: draining in-flight lines");
        let _ = stop.send(true);
        let mut code = exit::SUCCESS;
        for run in runs {
            if let Ok(Err(error)) = run.await {
                eprintln!("relay send: {error}");
                code = exit::FAILURE;
            }
        }
        code
    })
}
