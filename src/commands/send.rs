//! `relay send`: one sender per `[[send]]` section (or per `--topic/--path`
//! flags), sharing one producer that retries forever. SIGTERM or SIGINT drain
//! what is in flight and save the registries.

use super::client::report;
use crate::cli::SendArgs;
use crate::{exit, overrides};
use relay_supervisor::{logging, supervisor, RelayConfig};

pub fn run(args: SendArgs) -> i32 {
    logging::init_logging();
    let loaded = RelayConfig::load(args.config.as_deref())
        .map_err(|e| e.to_string())
        .and_then(|config| overrides::senders(&args, &config).map(|senders| (config, senders)));
    let (config, senders) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("relay send: {error}");
            return exit::USAGE;
        }
    };
    let client = overrides::client(&args.client, &config);
    let metrics = args.metrics.metrics.clone().or(config.metrics_listen);
    let errors = supervisor::run(metrics, async move |supervisor| {
        supervisor.start_senders(&client, "relay-send", &senders).await?;
        Ok(format!(
            "relay send: {} sender(s) to {}",
            senders.len(),
            client.brokers()
        ))
    });
    report("send", &errors)
}
