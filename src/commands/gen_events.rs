//! `relay gen-events`: writes realistic game events as JSON lines at a
//! chosen rate, with rotation (see [`relay_supervisor::generator`]).

use crate::cli::GenEventsArgs;
use crate::exit;
use relay_supervisor::generator::{generate, seed_from_clock, GeneratorConfig};

pub fn run(args: GenEventsArgs) -> i32 {
    let config = GeneratorConfig {
        file: args.file,
        rate_per_second: args.rate,
        rotate_lines: args.rotate_lines,
        count: args.count,
        seed: args.seed.unwrap_or_else(seed_from_clock),
    };
    if config.rate_per_second == 0 || config.rotate_lines == 0 {
        eprintln!("relay gen-events: --rate and --rotate-lines must be at least 1");
        return exit::USAGE;
    }
    match generate(&config, || false) {
        Ok(written) => {
            eprintln!("wrote {written} events to {}", config.file.display());
            exit::SUCCESS
        }
        Err(error) => {
            eprintln!("relay gen-events: {error}");
            exit::FAILURE
        }
    }
}
