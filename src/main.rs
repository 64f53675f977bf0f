//! The `relay` command: parses arguments and dispatches to the libraries.
//! Nothing here does real work; see `broker/`, `client/` and `loader/`.

use clap::Parser;

/// Relay moves event lines from application log files through a
/// Kafka-protocol broker into a warehouse, with no loss and no duplicates.
#[derive(Debug, Parser)]
#[command(name = "relay", version)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
