//! relay-bench: Relay's load generator and benchmark harness.
//!
//! # Layout
//! - `log_bench`: the storage micro-benchmark (`relay-bench log`): concurrent
//!   `append` of fixed-size batches, then a sequential `read` of everything.
//! - `produce_bench`, `consume_bench`: Kafka-protocol load through Relay's
//!   client against any broker (`relay-bench produce|consume`).
//! - `e2e_bench`: file line written → `relay up` → row visible in SQLite.
//! - `restart_bench`: time to serve again after `kill -9` with a large log.
//! - `send_bench`: `relay send` on one large file: throughput and peak RSS.
//! - `broker_stages`: the broker's per-stage produce times from its `/metrics`.
//! - `processes`: starting `relay` processes and reading their metrics.
//! - `report`: figures as a table for people and JSON for `bench/RESULTS.md`.
//!
//! `bench/run.sh` runs the standard suite; `bench/load_vs_copy.sh` compares
//! `relay load` with `psql \copy`. Benchmarks are never timed assertions in
//! tests; `bench/RESULTS.md` keeps the measured table with the command, the
//! machine and the disk's own limit.

mod broker_stages;
mod consume_bench;
mod e2e_bench;
mod log_bench;
mod processes;
mod produce_bench;
mod report;
mod restart_bench;
mod send_bench;

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
    /// Producers against a broker: records/s, MB/s, per-record ack latency.
    ///
    /// Example: relay-bench produce --broker 127.0.0.1:9092 --producers 4 --partitions 4 --records 20000000
    /// [--rate 1000000 --broker-metrics 127.0.0.1:9100]
    Produce(produce_bench::ProduceBenchArgs),
    /// Consumers reading a topic from the earliest offset to its end.
    ///
    /// Example: relay-bench consume --broker 127.0.0.1:9092 --topic bench
    Consume(consume_bench::ConsumeBenchArgs),
    /// File line written to row visible in the warehouse, through `relay up`.
    ///
    /// Example: relay-bench e2e --rate 10000 --seconds 20
    E2e(e2e_bench::E2eBenchArgs),
    /// Time to serve again after kill -9 with a large log.
    ///
    /// Example: relay-bench restart --gib 10 --partitions 10
    Restart(restart_bench::RestartBenchArgs),
    /// `relay send` on one large file: bytes acknowledged per second, peak RSS.
    ///
    /// Example: relay-bench send --gib 10
    Send(send_bench::SendBenchArgs),
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Log(args) => log_bench::run(&args),
        Command::Produce(args) => runtime().block_on(produce_bench::run_and_print(&args)),
        Command::Consume(args) => runtime()
            .block_on(consume_bench::run(&args))
            .map(|p| report::print(&[p])),
        Command::E2e(args) => e2e_bench::run(&args).map(|p| report::print(&[p])),
        Command::Restart(args) => runtime().block_on(restart_bench::run(&args)).map(|p| {
            println!("serving again {:.3} s after the restart", p.elapsed.as_secs_f64());
            report::print(&[p])
        }),
        Command::Send(args) => send_bench::run(&args).map(|(p, rss)| {
            println!("peak RSS of relay send: {:.1} MiB", rss as f64 / (1 << 20) as f64);
            report::print(&[p])
        }),
    };
    if let Err(error) = result {
        eprintln!("relay-bench: {error}");
        std::process::exit(1);
    }
}
