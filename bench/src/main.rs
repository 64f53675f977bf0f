//! relay-bench: Relay's load generator and benchmark harness.
//!
//! # Layout
//! - `log_bench`: the storage micro-benchmark (`relay-bench log`): concurrent
//!   `append` of fixed-size batches, then a sequential `read` of everything.
//! - `report`: figures as a table for people and JSON for `bench/RESULTS.md`.
//!
//! Benchmarks are never timed assertions in tests; `bench/RESULTS.md` keeps
//! the measured table with the command, the machine and the disk's own limit.

mod log_bench;
mod report;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "relay-bench", version, about = "Relay's load generator and benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Storage engine: concurrent appends, then reading everything back.
    ///
    /// Example: relay-bench log --writers 4 --fsync always --seconds 10
    Log(log_bench::LogBenchArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Log(args) => log_bench::run(&args),
    };
    if let Err(error) = result {
        eprintln!("relay-bench: {error}");
        std::process::exit(1);
    }
}
