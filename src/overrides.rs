//! Flags over the config file: one function per role command, the only place
//! a flag changes a setting. Defaults are the libraries' (serde defaults of
//! their config types), never repeated here.

use crate::cli::{BrokerArgs, LoadArgs, SendArgs, UpArgs};
use relay_client::ClientSettings;
use relay_loader::config::LoaderConfig;
use relay_sender::SenderConfig;
use relay_supervisor::RelayConfig;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Every client (`send`, `load` and the CLI commands): the client flags over
/// `[client]`; without brokers in either, the file's `[broker] listen`, so one
/// address in the file serves every command given `--config`.
pub fn client(flags: &ClientSettings, config: &RelayConfig) -> ClientSettings {
    let mut settings = flags.over(&config.client);
    if settings.brokers.is_none() {
        settings.brokers = reachable(&config.broker.listen);
    }
    settings
}

/// The address a client on this host uses for a broker listening on
/// `listen`: an unspecified address (0.0.0.0, [::]) means this host's
/// loopback. Port 0 names no address a client could use: `None`.
fn reachable(listen: &str) -> Option<String> {
    let Ok(address) = listen.parse::<SocketAddr>() else {
        return Some(listen.to_owned()); // a host name
    };
    if address.port() == 0 {
        return None;
    }
    let loopback = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Some(SocketAddr::new(loopback, address.port()).to_string())
}

/// `relay up`: `--listen` over `[broker]`.
pub fn up(args: &UpArgs, config: &mut RelayConfig) {
    if let Some(listen) = &args.listen {
        config.broker.listen = listen.clone();
    }
}

/// `relay broker`: `--listen` and `--data-dir` over `[broker]`.
pub fn broker(args: &BrokerArgs, config: &mut RelayConfig) {
    if let Some(listen) = &args.listen {
        config.broker.listen = listen.clone();
    }
    if let Some(data_dir) = &args.data_dir {
        config.broker.data_dir = data_dir.clone();
    }
}

/// `relay send`: `--topic` with `--path` replace the file's `[[send]]`
/// sections with one sender; without them the sections apply as written.
pub fn senders(args: &SendArgs, config: &RelayConfig) -> Result<Vec<SenderConfig>, String> {
    let senders = match &args.topic {
        Some(_) if args.paths.is_empty() => return Err("--topic needs at least one --path".into()),
        Some(topic) => {
            let mut sender = SenderConfig::new(topic, args.paths.clone());
            sender.state_dir = args.state_dir.clone();
            sender.key_field = args.key_field.clone();
            vec![sender]
        }
        None if !args.paths.is_empty() => return Err("--path needs --topic".into()),
        None => config.send.clone(),
    };
    if senders.is_empty() {
        return Err("nothing to send: give --topic and --path, or a --config file with [[send]] sections".into());
    }
    let mut senders = senders;
    if args.no_follow_symlinks {
        senders.iter_mut().for_each(|sender| sender.follow_symlinks = false);
    }
    Ok(senders)
}

/// `relay load`: flags override a single `[[load]]` section, or describe one
/// on their own (the whole event then goes to a JSON column).
pub fn loaders(args: &LoadArgs, config: &RelayConfig) -> Result<Vec<LoaderConfig>, String> {
    let any_flag = args.topic.is_some()
        || args.group.is_some()
        || args.warehouse.is_some()
        || args.table.is_some()
        || args.from.is_some()
        || args.only_table.is_some()
        || args.format.is_some();
    let mut loaders = config.load.clone();
    if args.until_end {
        for loader in &mut loaders {
            loader.until_end = true;
        }
    }
    if !any_flag {
        return sections_as_written(loaders);
    }
    if loaders.len() > 1 {
        return Err(format!(
            "flags override one [[load]] section, but the config has {}",
            loaders.len()
        ));
    }
    let section_group = loaders.first().map(|loader| loader.group.clone());
    let mut loader = match loaders.pop() {
        Some(loader) => loader,
        None => loader_of_flags(args)?,
    };
    apply_loader_flags(args, &mut loader);
    loader.validate()?;
    if let Some(section_group) = section_group {
        loader.check_backfill_group(&section_group)?;
    }
    Ok(vec![loader])
}

/// Without flags: the file's `[[load]]` sections, each valid, their backfill
/// groups apart.
fn sections_as_written(loaders: Vec<LoaderConfig>) -> Result<Vec<LoaderConfig>, String> {
    if loaders.is_empty() {
        return Err("nothing to load: give --topic, --group, --warehouse and --table, or a --config file with [[load]] sections".into());
    }
    for loader in &loaders {
        loader.validate()?;
    }
    relay_loader::config::check_backfill_groups(&loaders)?;
    Ok(loaders)
}

/// A loader described by flags alone: all four of `--topic`, `--group`,
/// `--warehouse` and `--table` are needed (set by [`apply_loader_flags`]).
fn loader_of_flags(args: &LoadArgs) -> Result<LoaderConfig, String> {
    let missing: Vec<&str> = [
        ("--topic", args.topic.is_none()),
        ("--group", args.group.is_none()),
        ("--warehouse", args.warehouse.is_none()),
        ("--table", args.table.is_none()),
    ]
    .iter()
    .filter(|(_, missing)| *missing)
    .map(|(flag, _)| *flag)
    .collect();
    if !missing.is_empty() {
        return Err(format!("missing {}", missing.join(", ")));
    }
    match args.format.as_deref() {
        None | Some("json") => Ok(LoaderConfig::whole_event(Vec::new(), "", "", "")),
        Some("text") => Ok(LoaderConfig::text_lines(Vec::new(), "", "", "")),
        Some(other) => Err(format!(
            "--format {other:?}: json or text (a regex needs a --config file: format = \"regex\")"
        )),
    }
}

/// Every flag given, over the section (or the flags' own loader).
fn apply_loader_flags(args: &LoadArgs, loader: &mut LoaderConfig) {
    if let Some(topic) = &args.topic {
        loader.topics = vec![topic.clone()];
    }
    if let Some(group) = &args.group {
        loader.group = group.clone();
    }
    if let Some(warehouse) = &args.warehouse {
        loader.warehouse = warehouse.clone();
    }
    if let Some(table) = &args.table {
        loader.table = table.clone();
    }
    if let Some(from) = &args.from {
        loader.from = Some(from.clone());
    }
    if let Some(only) = &args.only_table {
        loader.only_table = Some(only.clone());
    }
    loader.until_end |= args.until_end;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_finds_the_broker_at_the_configs_listen_address_unless_told_otherwise() {
        let mut config = RelayConfig::default();
        config.broker.listen = "0.0.0.0:19092".into();
        let none = ClientSettings::default();
        assert_eq!(client(&none, &config).brokers(), "127.0.0.1:19092");
        config.broker.listen = "[::]:19092".into();
        assert_eq!(client(&none, &config).brokers(), "[::1]:19092");
        config.broker.listen = "10.0.0.5:19092".into();
        assert_eq!(client(&none, &config).brokers(), "10.0.0.5:19092");
        config.broker.listen = "127.0.0.1:0".into();
        assert_eq!(client(&none, &config).brokers(), relay_client::settings::BROKER_DEFAULT);
        config.client.brokers = Some("kafka1:9092".into());
        assert_eq!(client(&none, &config).brokers(), "kafka1:9092");
        let flag = ClientSettings {
            brokers: Some("flag:9092".into()),
            ..ClientSettings::default()
        };
        assert_eq!(client(&flag, &config).brokers(), "flag:9092");
    }
}
