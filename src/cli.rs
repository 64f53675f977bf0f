//! The command-line grammar. Every command reads `--config FILE` (the TOML
//! sections of `config.toml.example`); flags override the file.

use clap::{Args, Parser, Subcommand};
use relay_client::ClientSettings;
use std::path::PathBuf;

/// Relay moves event lines from application log files through a
/// Kafka-protocol broker into a warehouse, with no loss and no duplicates.
#[derive(Debug, Parser)]
#[command(
    name = "relay",
    version,
    after_help = "Exit codes: 0 success; 1 a checked condition failed (lag over --max, an unknown group, a role that failed); \
                  2 usage or configuration error; 3 the broker or the warehouse cannot be reached."
)]
pub struct Cli {
    /// Log lines on stderr: text for people, json (one object per line) for machines.
    #[arg(long, global = true, env = "RELAY_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
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
    /// Run the broker, every [[send]] and every [[load]] of one config file in one process.
    ///
    /// The embedded default: a pipeline from ./logs to ./warehouse.db with config.toml.example.
    ///
    /// Example: relay up --config config.toml.example --gen-events 200
    Up(UpArgs),
    /// Write realistic game events (JSON lines) at a rate, with rotation.
    ///
    /// Example: relay gen-events --file ./logs/events.jsonl --rate 500 --count 10000
    GenEvents(GenEventsArgs),
    /// Hash a SASL password for [broker.sasl.users] (SCRAM-SHA-256; also checks PLAIN logins).
    ///
    /// Reads the password from the first line of standard input; prints the credential.
    ///
    /// Example: printf '%s\n' "$PASSWORD" | relay hash-password
    HashPassword(HashPasswordArgs),
    /// Tail log files into a topic; a file position is saved only after the broker acknowledged it.
    ///
    /// Runs every [[send]] section of --config, or the one given by flags.
    ///
    /// Example: relay send --topic events --path './logs/*.jsonl' --state-dir ./state/events
    Send(SendArgs),
    /// Load topics into SQLite or PostgreSQL: rows and offsets in one transaction.
    ///
    /// Runs every [[load]] section of --config; flags override a single section,
    /// or describe one on their own (the whole event then goes to a JSON column).
    ///
    /// Example: relay load --topic events --group loader --warehouse sqlite://./warehouse.db --table events
    Load(LoadArgs),
    /// Produce one record per line of FILE (or standard input) to a topic.
    ///
    /// Shows a progress bar when reading a file, and a summary at the end.
    ///
    /// Example: relay produce --topic events --key-field player_id events.jsonl
    Produce(ProduceArgs),
    /// Print records of a topic, alone or as a member of a consumer group.
    ///
    /// Without --follow it exits once every partition is read to its end.
    ///
    /// Example: relay consume --topic events --from time:2026-11-22T00:00:00Z --format json --max 10
    Consume(ConsumeArgs),
    /// List, describe, create and delete topics.
    ///
    /// Example: relay topics create events --partitions 4 --retention-ms 86400000
    Topics(TopicsArgs),
    /// List and describe consumer groups; reset their committed offsets.
    ///
    /// Example: relay groups reset-offsets loaders --topic events --to time:2026-11-22T00:00:00Z
    Groups(GroupsArgs),
    /// Show each group's lag per partition; exit 1 when any lag exceeds --max.
    ///
    /// Example: relay lag --group loaders --max 10000
    Lag(LagArgs),
    /// One screen: cluster id, topics (partitions, end offsets, size, rate),
    /// groups (members, lag per partition, commit age) and files behind.
    ///
    /// Example: relay status --watch --sender-state ./state/send-events --scrape 127.0.0.1:9464
    Status(StatusArgs),
}

/// Where this process serves Prometheus `/metrics` and `/health`.
#[derive(Debug, Args, Clone)]
pub struct MetricsArgs {
    /// Serve GET /metrics and /health on ADDR (overrides metrics_listen of --config).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The first line is the verdict: OK, DEGRADED or DOWN, then one reason per line.\n\
Exit codes: 0 OK; 1 DEGRADED (a role's /health fails, records unrouted or lost, unacknowledged gaps);\n\
2 usage or configuration error; 3 DOWN (the broker or a --scrape address does not answer: the\n\
--sender-state backlog is still shown). --watch exits 0 when interrupted."
)]
pub struct StatusArgs {
    #[command(flatten)]
    pub client: ClientSettings,
    /// TOML configuration file: its [client] brokers, else its [broker] listen, say where the broker is (--broker wins).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Refresh in place every SECONDS (default: --interval-ms) until interrupted, the verdict on top.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1)]
    pub watch: Option<Option<u64>>,
    /// Time between refreshes (and the window the rates are measured over).
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub interval_ms: u64,
    /// text: the screen; json: one object (verdict, reasons, groups, loaders, sender backlog) per look.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// A sender's state directory: shows each file's bytes behind. Repeatable.
    #[arg(long = "sender-state", value_name = "DIR")]
    pub sender_states: Vec<PathBuf>,
    /// A sender's, loader's or `relay up`'s --metrics address: shows files behind and loader lag. Repeatable.
    #[arg(long = "scrape", value_name = "ADDR")]
    pub scrapes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// The TOML file with [broker], [[send]] and [[load]] sections.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address the embedded broker listens on (overrides broker.listen); port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Also generate this many game events per second into the first sender's directory.
    #[arg(long, value_name = "RATE")]
    pub gen_events: Option<u64>,
}

#[derive(Debug, Args)]
pub struct HashPasswordArgs {
    /// PBKDF2 iterations (at least 4096; more makes each login and each guess slower).
    #[arg(long, default_value_t = relay_proto::sasl::credential::ITERATIONS_DEFAULT)]
    pub iterations: u32,
}

#[derive(Debug, Args)]
pub struct GenEventsArgs {
    /// File to append to; it is renamed to FILE.1, FILE.2, ... every --rotate-lines lines.
    #[arg(long, value_name = "FILE", default_value = "./logs/events.jsonl")]
    pub file: PathBuf,
    /// Events per second.
    #[arg(long, default_value_t = 100)]
    pub rate: u64,
    /// Lines per file before it is rotated.
    #[arg(long, default_value_t = 100_000, value_name = "LINES")]
    pub rotate_lines: u64,
    /// Stop after this many events (default: run until killed).
    #[arg(long)]
    pub count: Option<u64>,
    /// Seed of the event contents (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub client: ClientSettings,
    /// TOML configuration file; its [[send]] sections apply (and [client], else [broker] listen, for the broker).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Topic the lines go to (with --path: one sender described by flags instead of the [[send]] sections).
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// Files to tail: wildcards * and ? in the file name; repeat for more.
    #[arg(long = "path", value_name = "GLOB")]
    pub paths: Vec<String>,
    /// Where the registry of acknowledged positions and the rejects file live.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Take each record's key from this top-level JSON field.
    #[arg(long, value_name = "FIELD")]
    pub key_field: Option<String>,
    /// Skip symlinks that match the paths (they are followed by default).
    #[arg(long)]
    pub no_follow_symlinks: bool,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub client: ClientSettings,
    /// TOML configuration file; its [[load]] sections apply (and [client], else [broker] listen, for the broker).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Topic to load (overrides the [[load]] section's topics).
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// Consumer group of the loader; its position lives in the warehouse's relay_offsets under this name.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// sqlite:///path/to/file.db or postgres://user@host:port/db
    #[arg(long, value_name = "URL")]
    pub warehouse: Option<String>,
    /// Table the rows go to (the default table when the section has routes); created when missing.
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// Where partitions without a stored offset start: earliest, latest, offset:N or time:RFC3339.
    #[arg(long, value_name = "POSITION")]
    pub from: Option<String>,
    /// Exit once every partition is loaded up to its end (a one-shot backfill).
    #[arg(long)]
    pub until_end: bool,
    /// Load only this table of the [[load]] section's routes (every route is
    /// still evaluated in order): backfill a table added later, with its own --group.
    #[arg(long, value_name = "TABLE")]
    pub only_table: Option<String>,
    /// What the records are, for a loader described by flags alone: json (the
    /// whole event in a json column `event`) or text (each line in a text column `line`).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub client: ClientSettings,
    /// TOML configuration file: its [client] brokers, else its [broker] listen, say where the broker is (--broker wins).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Topic the records go to.
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,
    /// Take each record's key from this top-level JSON field (Kafka's partitioner then keeps a key on one partition).
    #[arg(long, value_name = "FIELD")]
    pub key_field: Option<String>,
    /// Compression codec: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// File to read; "-" or nothing for standard input.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub client: ClientSettings,
    /// TOML configuration file: its [client] brokers, else its [broker] listen, say where the broker is (--broker wins).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Topic to read.
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,
    /// Consume as a member of this group, committing what was printed.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Where to start without a committed offset: earliest, latest, offset:N or time:RFC3339.
    #[arg(long, default_value = "earliest", value_name = "POSITION")]
    pub from: String,
    /// Stop after this many records.
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,
    /// Keep waiting for new records instead of exiting at the end.
    #[arg(long)]
    pub follow: bool,
    /// raw: values one per line; json: topic, partition, offset, timestamp, key, headers, value.
    #[arg(long, default_value = "raw", value_parser = ["raw", "json"])]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct TopicsArgs {
    #[command(flatten)]
    pub client: ClientSettings,
    /// TOML configuration file: its [client] brokers, else its [broker] listen, say where the broker is (--broker wins).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: TopicsCommand,
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Every topic and its partition count.
    List,
    /// Partitions of a topic with their start and end offsets.
    ///
    /// Example: relay topics describe events
    Describe {
        /// The topic's name.
        topic: String,
    },
    /// Create a topic.
    ///
    /// Example: relay topics create events --partitions 4 --retention-bytes 1073741824
    Create {
        /// The topic's name: letters, digits, '.', '_' and '-', at most 249 characters.
        topic: String,
        /// Partitions: the most loaders of one group that can share the topic.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Delete the oldest segments once a partition is larger than this (-1: no limit).
        #[arg(long, value_name = "BYTES")]
        retention_bytes: Option<i64>,
        /// Delete segments whose records are all older than this (-1: no limit).
        #[arg(long, value_name = "MS")]
        retention_ms: Option<i64>,
    },
    /// Delete a topic and its data.
    ///
    /// Example: relay topics delete scratch
    Delete {
        /// The topic's name.
        topic: String,
    },
}

#[derive(Debug, Args)]
pub struct GroupsArgs {
    #[command(flatten)]
    pub client: ClientSettings,
    /// TOML configuration file: its [client] brokers, else its [broker] listen, say where the broker is (--broker wins).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: GroupsCommand,
}

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Every group and its state.
    List,
    /// A group's members, assignments, committed offsets and lag.
    ///
    /// Example: relay groups describe loader-events
    Describe {
        /// The group's id.
        group: String,
    },
    /// Delete a group and its committed offsets (the group must have no members).
    ///
    /// A loader's group (its offsets carry the loader's mark, or a loader is in it) is
    /// refused without --force: its warehouse keeps the true position (relay_offsets),
    /// but the broker's copy is what lag, status and retention protection read.
    ///
    /// Example: relay groups delete backfill-matches --force
    Delete {
        /// The group's id.
        group: String,
        /// Delete a loader's group too (a finished backfill's, one no loader runs with any more).
        #[arg(long)]
        force: bool,
    },
    /// Move a group's committed offsets for a topic (the group must have no members).
    ///
    /// A loader keeps its position in its warehouse (relay_offsets), not on the broker:
    /// move a loader with `relay load --from` on a new group, or by editing relay_offsets.
    ///
    /// Example: relay groups reset-offsets billing --topic orders --to time:2026-11-22T00:00:00Z
    ResetOffsets {
        /// The group's id.
        group: String,
        /// The topic whose partitions move.
        #[arg(long, value_name = "TOPIC")]
        topic: String,
        /// earliest, latest, offset:N or time:RFC3339
        #[arg(long, value_name = "POSITION")]
        to: String,
    },
}

#[derive(Debug, Args)]
pub struct LagArgs {
    #[command(flatten)]
    pub client: ClientSettings,
    /// TOML configuration file: its [client] brokers, else its [broker] listen, say where the broker is (--broker wins).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only this group (default: every group).
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Exit with 1 when any partition's lag exceeds this.
    #[arg(long, value_name = "N")]
    pub max: Option<i64>,
}

#[derive(Debug, Args)]
pub struct BrokerArgs {
    #[command(flatten)]
    pub metrics: MetricsArgs,
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

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every argument of every subcommand, named `relay sub ... --arg`, that
    /// `--help` would show with no text.
    fn arguments_without_help(command: &clap::Command, path: &str, found: &mut Vec<String>) {
        for argument in command.get_arguments() {
            let builtin = matches!(argument.get_id().as_str(), "help" | "version");
            if !builtin && !argument.is_hide_set() && argument.get_help().is_none() {
                found.push(format!("{path} {}", argument.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            if sub.get_about().is_none() && sub.get_name() != "help" {
                found.push(format!("{path} {} (the subcommand)", sub.get_name()));
            }
            arguments_without_help(sub, &format!("{path} {}", sub.get_name()), found);
        }
    }

    #[test]
    fn every_subcommand_and_argument_has_help() {
        let mut command = Cli::command();
        command.build();
        let mut found = Vec::new();
        arguments_without_help(&command, "relay", &mut found);
        assert!(found.is_empty(), "arguments with blank --help: {found:#?}");
    }

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }
}
