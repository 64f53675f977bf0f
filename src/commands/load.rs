//! `relay load`: one loader per `[[load]]` section (flags override a single
//! section or describe one alone). Runs until SIGTERM or SIGINT, then
//! finishes the batch in hand and leaves its group.

use super::client::report;
use crate::cli::LoadArgs;
use crate::{exit, overrides};
use relay_supervisor::{logging, supervisor, RelayConfig};

pub fn run(args: LoadArgs) -> i32 {
    logging::init_logging();
    let loaded = RelayConfig::load(args.config.as_deref())
        .map_err(|e| e.to_string())
        .and_then(|config| overrides::loaders(&args, &config).map(|loaders| (config, loaders)));
    let (config, loaders) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("relay load: {error}");
            return exit::USAGE;
        }
    };
    let client = overrides::client(&args.client, &config);
    let metrics = args.metrics.metrics.clone().or(config.metrics_listen);
    let errors = supervisor::run(metrics, async move |supervisor| {
        let count = loaders.len();
        supervisor.start_loaders(&client, "relay-load", loaders).await?;
        Ok(format!("relay load: {count} loader(s) from {}", client.brokers()))
    });
    report("load", &errors)
}
