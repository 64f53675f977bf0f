//! The command-line grammar. Every command reads `--config FILE` (the TOML
//! sections of `config.toml.example`); flags override the file.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Relay moves event lines from application log files through a
/// Kafka-protocol broker into a warehouse, with no loss and no duplicates.
#[derive(Debug, Parser)]
#[command(name = "relay", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Kafka-protocol broker: durable segmented logs, consumer groups.
    ///
    /// Any Kafka client can produce to and consume from it.
    ///
    /// Example: relay broker --listen 127.0.0.1:9092 --data-dir ./data
    Broker(BrokerArgs),
}

#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// TOML configuration file; its [broker] section applies.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides broker.listen); port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory for topic data (overrides broker.data_dir).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}
