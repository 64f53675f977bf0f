//! `relay load`: one loader per `[[load]]` section (flags override a single
//! section or describe one alone). Runs until SIGTERM or SIGINT, then
//! finishes the batch in hand and leaves its group.

use super::client::{connect, fail, parse_position, runtime, with_config};
use super::metrics;
use super::signal::wait_for_signal;
use crate::cli::LoadArgs;
use crate::config_file::{self, LoadSection, RelayConfig};
use crate::exit;
use relay_client::consumer::StartPosition;
use relay_loader::config::{ColumnSpec, ColumnType, LoaderConfig, MetadataColumn};
use relay_loader::loader::{Loader, LoaderError};
use relay_loader::sink::SinkError;
use std::sync::Arc;
use std::time::Duration;

/// Longest a stop waits for the loaders' batches to commit.
const STOP_WAIT_MAX: Duration = Duration::from_secs(60);

fn sections(args: &LoadArgs, config: &RelayConfig) -> Result<Vec<LoadSection>, String> {
    let mut sections = config.load.clone();
    let any_flag = args.topic.is_some()
        || args.group.is_some()
        || args.warehouse.is_some()
        || args.table.is_some()
        || args.from.is_some();
    if !any_flag {
        if sections.is_empty() {
            return Err("nothing to load: give --topic, --group, --warehouse and --table, or a --config file with [[load]] sections".into());
        }
        return Ok(sections);
    }
    if sections.len() > 1 {
        return Err(format!(
            "flags override one [[load]] section, but the config has {}",
            sections.len()
        ));
    }
    let mut section = match sections.pop() {
        Some(section) => section,
        None => {
            let missing = [
                ("--topic", args.topic.is_none()),
                ("--group", args.group.is_none()),
                ("--warehouse", args.warehouse.is_none()),
                ("--table", args.table.is_none()),
            ]
            .iter()
            .filter(|(_, missing)| *missing)
            .map(|(flag, _)| *flag)
            .collect::<Vec<_>>();
            if !missing.is_empty() {
                return Err(format!("missing {}", missing.join(", ")));
            }
            LoadSection {
                topic: None,
                topics: Vec::new(),
                group: String::new(),
                warehouse: String::new(),
                table: String::new(),
                columns: vec![ColumnSpec {
                    name: "event".into(),
                    pointer: String::new(),
                    column_type: ColumnType::Json,
                    nullable: false,
                }],
                metadata: vec![
                    MetadataColumn::Topic,
                    MetadataColumn::Partition,
                    MetadataColumn::Offset,
                    MetadataColumn::RecordTimestamp,
                ],
                dedup_key: "/uuid".into(),
                create_table: true,
                batch_records_max: 10_000,
                batch_wait_ms: 500,
                from: None,
            }
        }
    };
    if let Some(topic) = &args.topic {
        section.topic = Some(topic.clone());
        section.topics.clear();
    }
    if let Some(group) = &args.group {
        section.group = group.clone();
    }
    if let Some(warehouse) = &args.warehouse {
        section.warehouse = warehouse.clone();
    }
    if let Some(table) = &args.table {
        section.table = table.clone();
    }
    if let Some(from) = &args.from {
        section.from = Some(from.clone());
    }
    Ok(vec![section])
}

/// The loader settings and start position of one `[[load]]` section.
pub fn loader_section_config(section: &LoadSection) -> Result<(LoaderConfig, StartPosition), String> {
    let mut topics = section.topics.clone();
    topics.extend(section.topic.clone());
    if topics.is_empty() {
        return Err(format!("[[load]] for table {}: no topic", section.table));
    }
    let mut config = LoaderConfig::new(topics, &section.group, &section.warehouse, &section.table);
    config.columns = section.columns.clone();
    config.metadata = section.metadata.clone();
    config.dedup_pointer = section.dedup_key.clone();
    config.create_table = section.create_table;
    config.batch_records_max = section.batch_records_max;
    config.batch_wait = Duration::from_millis(section.batch_wait_ms);
    config.validate()?;
    let start = match &section.from {
        Some(from) => parse_position(from)?,
        None => StartPosition::Earliest,
    };
    Ok((config, start))
}

pub fn run(args: LoadArgs) -> i32 {
    config_file::init_logging();
    let loaded = config_file::load(args.config.as_deref()).and_then(|config| {
        let configs = sections(&args, &config)?
            .iter()
            .map(loader_section_config)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((config, configs))
    });
    let (config, configs) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("relay load: {error}");
            return exit::USAGE;
        }
    };
    let client = with_config(&args.client, &config.client);
    let endpoint = metrics::install(args.metrics.metrics.as_deref(), config.metrics_listen.as_deref());
    runtime().block_on(async move {
        let serving = match metrics::serve(&endpoint, "load").await {
            Ok(serving) => serving,
            Err(code) => return code,
        };
        // Fails early (unreachable broker, another cluster) before any loader starts.
        let cluster = match connect(&client, "relay-load").await {
            Ok(cluster) => cluster,
            Err(error) => return fail("load", &error),
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut runs = Vec::new();
        for (config, start) in configs {
            let table = config.table.clone();
            // Each loader has its own connections: the broker answers a
            // connection's requests in order, and a long-polling fetch would
            // hold the other loaders' fetches and heartbeats.
            let own = if runs.is_empty() {
                cluster.clone()
            } else {
                match connect(&client, "relay-load").await {
                    Ok(cluster) => cluster,
                    Err(error) => return fail("load", &error),
                }
            };
            match Loader::new(own, config, start).await {
                Ok(loader) => {
                    metrics::watch_loader(&endpoint, &table, Arc::clone(&loader.stats));
                    runs.push(tokio::spawn(loader.run(stopped.clone())))
                }
                Err(error) => return report(&table, &error),
            }
        }
        metrics::announce(&format!(
            "relay load: {} loader(s) from {}{serving}",
            runs.len(),
            client.broker.as_deref().unwrap_or(super::client::BROKER_DEFAULT)
        ));
        let signal = tokio::spawn(async move {
            wait_for_signal().await;
            let _ = stop.send(true);
            // A batch that cannot commit (warehouse down) must not hold the
            // stop forever; it is loaded again after the restart.
            tokio::time::sleep(STOP_WAIT_MAX).await;
            eprintln!(
                "relay load: the batch in hand did not commit within {} s of the stop signal; exiting without it (it is loaded again on restart)",
                STOP_WAIT_MAX.as_secs()
            );
            std::process::exit(exit::FAILURE);
        });
        let mut code = exit::SUCCESS;
        for run in runs {
            match run.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => code = report("", &error),
                Err(error) => {
                    eprintln!("relay load: {error}");
                    code = exit::FAILURE;
                }
            }
        }
        signal.abort();
        code
    })
}

fn report(table: &str, error: &LoaderError) -> i32 {
    eprintln!(
        "relay load{}: {error}",
        if table.is_empty() {
            String::new()
        } else {
            format!(" ({table})")
        }
    );
    match error {
        LoaderError::Client(error) => fail("load", error),
        LoaderError::Sink(SinkError::Unavailable(_)) => exit::UNREACHABLE,
        LoaderError::Sink(_) | LoaderError::Config(_) => exit::USAGE,
    }
}
