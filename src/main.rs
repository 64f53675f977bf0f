//! The `relay` command: parses arguments and dispatches to the libraries.
//! Nothing here does real work; see `broker/`, `client/` and `loader/`.
//!
//! # Layout
//! - `cli`: the command-line grammar (clap).
//! - `config_file`: the TOML file every command reads with `--config`.
//! - `commands/`: one file per subcommand, turning flags into library calls.
//! - `exit`: exit codes, as `../shared/DESIGN.md` lists them.
//! - `observe`: the Prometheus recorder and the `/metrics` + `/health` endpoint.

mod cli;
mod commands;
mod config_file;
mod exit;
mod observe;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    config_file::set_log_format_json(cli.log_format == "json");
    let code = match cli.command {
        cli::Command::Broker(args) => commands::broker::run(args),
        cli::Command::Up(args) => commands::up::run(args),
        cli::Command::GenEvents(args) => commands::gen_events::run(args),
        cli::Command::HashPassword(args) => commands::hash_password::run(args),
        cli::Command::Send(args) => commands::send::run(args),
        cli::Command::Load(args) => commands::load::run(args),
        cli::Command::Produce(args) => commands::produce::run(args),
        cli::Command::Consume(args) => commands::consume::run(args),
        cli::Command::Topics(args) => commands::topics::run(args),
        cli::Command::Groups(args) => commands::groups::run(args),
        cli::Command::Lag(args) => commands::lag::run(args),
        cli::Command::Status(args) => commands::status::run(args),
    };
    std::process::exit(code);
}
