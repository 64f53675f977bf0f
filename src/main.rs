//! The `relay` command: parses arguments and dispatches to the libraries.
//! Nothing here does real work: the roles run in `supervisor/` (relay-supervisor)
//! on `broker/`, `sender/`, `loader/` and `client/`.
//!
//! # Layout
//! - `cli`: the command-line grammar (clap).
//! - `overrides`: flags over the config file, one function per role command.
//! - `commands/`: one file per subcommand, turning flags into library calls.
//! - `exit`: exit codes, as the README's "Exit codes" lists them.

mod cli;
mod commands;
mod exit;
mod overrides;

use clap::Parser;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => usage_error(error),
    };
    relay_supervisor::logging::set_log_format_json(cli.log_format == "json");
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

/// Prints clap's error (or help) and exits; an unexpected argument to
/// `relay send` that looks like a path is a glob the shell expanded.
fn usage_error(error: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if error.kind() != ErrorKind::UnknownArgument {
        error.exit();
    }
    let _ = error.print();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("send")
        && args.iter().skip(2).any(|a| a.contains('/') && !a.starts_with('-'))
    {
        eprintln!(
            "hint: the shell expanded a path pattern into several files; quote it so relay send watches the pattern: --path './logs/*.jsonl'"
        );
    }
    std::process::exit(exit::USAGE);
}
