//! [`RelayConfig`]: the one TOML file every role reads (`config.toml.example`
//! documents every key). Its sections are the libraries' own config types,
//! so each key and each default is written once, where it is used:
//! `[client]` is [`ClientSettings`], `[broker]` is [`BrokerConfig`],
//! `[[send]]` is [`SenderConfig`], `[[load]]` is [`LoaderConfig`]. Unknown
//! keys are errors that name the key, so a typo never silently falls back to
//! a default.
//!
//! `relay up` runs the broker of [`RelayConfig::embedded_broker`]: the
//! `[broker]` section with every `[[load]]`'s group protected on its topics.

use crate::error::{Result, SupervisorError};
use relay_broker::broker::Broker;
use relay_broker::config::BrokerConfig;
use relay_client::ClientSettings;
use relay_loader::config::LoaderConfig;
use relay_sender::SenderConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// `host:port` where this process serves `/metrics` and `/health`.
    pub metrics_listen: Option<String>,
    /// How client roles (send, load, and the CLI with --config) reach the broker.
    pub client: ClientSettings,
    pub broker: BrokerConfig,
    pub send: Vec<SenderConfig>,
    pub load: Vec<LoaderConfig>,
}

impl RelayConfig {
    /// Reads `path`, or the defaults when no file is given.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| SupervisorError::Config(format!("cannot read config file {}: {e}", path.display())))?;
        let mut config: Self = toml::from_str(&text)
            .map_err(|e| SupervisorError::Config(format!("config file {}: {e}", path.display())))?;
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let base = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_owned());
        config.resolve_paths(&base);
        Ok(config)
    }

    /// Makes every relative path of the file relative to the file's own
    /// directory, not to wherever the command was started: `relay broker
    /// --config ../relay.toml` must open the same data directory as `relay
    /// broker --config relay.toml` from the file's directory. Flags given on
    /// the command line stay relative to the current directory.
    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        };
        resolve(&mut self.broker.data_dir);
        if let Some(tls) = &mut self.broker.tls {
            resolve(&mut tls.cert_path);
            resolve(&mut tls.key_path);
        }
        if let Some(ca) = &mut self.client.tls_ca_path {
            resolve(ca);
        }
        for sender in &mut self.send {
            for pattern in &mut sender.paths {
                let mut path = PathBuf::from(&*pattern);
                resolve(&mut path);
                *pattern = path.display().to_string();
            }
            let state_dir = sender.state_dir();
            sender.state_dir = Some(if state_dir.is_relative() {
                base.join(state_dir)
            } else {
                state_dir
            });
        }
        for loader in &mut self.load {
            if let Some(file) = loader.warehouse.strip_prefix("sqlite://") {
                let mut path = PathBuf::from(file);
                if !file.is_empty() {
                    resolve(&mut path);
                    loader.warehouse = format!("sqlite://{}", path.display());
                }
            }
        }
    }

    /// The `[broker]` section as `relay up` runs it: each `[[load]]`'s group
    /// is added to `protected_groups` of each topic it loads, so retention
    /// does not delete what this process's loaders have not loaded (up to
    /// `retention_bytes_hard`). A topic whose `[broker.topics.<name>]` sets
    /// `protected_groups` itself, even to `[]`, keeps exactly that.
    /// Its groups' first rebalance waits for nobody unless the section says
    /// otherwise: each `[[load]]` of this process is its group's only member,
    /// and waiting for others would only delay its start (a second member,
    /// an outside consumer, still joins; the join waits for members just
    /// given their id).
    pub fn embedded_broker(&self) -> BrokerConfig {
        let mut broker = self.broker.clone();
        broker.group_initial_rebalance_delay_ms.get_or_insert(0);
        for loader in &self.load {
            for topic in &loader.topics {
                let explicit = self
                    .broker
                    .topics
                    .get(topic)
                    .is_some_and(|settings| settings.protected_groups.is_some());
                if explicit {
                    continue;
                }
                let settings = broker.topics.entry(topic.clone()).or_default();
                let groups = settings.protected_groups.get_or_insert_with(Vec::new);
                if !groups.contains(&loader.group) {
                    groups.push(loader.group.clone());
                }
            }
        }
        broker
    }

    /// How the roles of `relay up` reach its embedded `broker`: the
    /// `[client]` security settings (password also from the environment),
    /// which must match `[broker.tls]` and `[broker.sasl]`.
    pub fn embedded_client(&self, broker: &Broker) -> Result<ClientSettings> {
        let mut client = self.client.clone().with_password_from_env();
        let security = client
            .security()
            .map_err(|e| SupervisorError::Config(format!("[client]: {e}")))?;
        let listener = (self.broker.sasl.is_some(), self.broker.tls.is_some());
        if listener != (security.sasl.is_some(), security.tls.is_some()) {
            let wanted = relay_proto::sasl::security_protocol(listener.0, listener.1);
            return Err(SupervisorError::Config(format!(
                "the embedded broker's listener is {wanted} but [client] security_protocol is {}; \
                 set [client] security_protocol = \"{wanted}\" (with sasl_username and the password, tls_ca_path) \
                 so the embedded sender and loaders can connect",
                security.protocol_name()
            )));
        }
        client.brokers = Some(broker.local_addr().to_string());
        client.expect_cluster_id = Some(broker.cluster_id().to_owned());
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debian_package_config_parses_with_absolute_paths() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/debian/config.toml");
        let config = RelayConfig::load(Some(&path)).unwrap();
        assert_eq!(config.broker.data_dir, Path::new("/var/lib/relay/data"));
        assert_eq!(
            config.send[0].state_dir(),
            Path::new("/var/lib/relay/state/send-events")
        );
        for loader in &config.load {
            loader.validate().unwrap();
        }
        config.embedded_broker().validate().unwrap();
    }

    #[test]
    fn the_example_file_parses_with_every_section() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.toml.example");
        let config = RelayConfig::load(Some(&path)).unwrap();
        assert!(!config.send.is_empty());
        assert!(!config.load.is_empty());
    }

    #[test]
    fn embedded_broker_protects_each_loaders_group_on_its_topics_unless_the_topic_says_otherwise() {
        let config: RelayConfig = toml::from_str(
            "[broker.topics.events]\nretention_bytes = 4194304\n\
             [broker.topics.audit]\nprotected_groups = []\n\
             [broker.topics.clicks]\nprotected_groups = [\"analytics\"]\n\
             [[load]]\ntopics = [\"events\", \"audit\", \"clicks\"]\ngroup = \"loader-a\"\nwarehouse = \"w\"\ntable = \"a\"\n\
             [[load]]\ntopics = [\"events\", \"orders\"]\ngroup = \"loader-b\"\nwarehouse = \"w\"\ntable = \"b\"\n",
        )
        .unwrap();
        let broker = config.embedded_broker();
        let groups = |topic: &str| broker.topics[topic].protected_groups.clone();
        assert_eq!(
            groups("events"),
            Some(vec!["loader-a".to_owned(), "loader-b".to_owned()])
        );
        assert_eq!(groups("orders"), Some(vec!["loader-b".to_owned()]));
        assert_eq!(groups("audit"), Some(vec![]), "an explicit empty list protects nothing");
        assert_eq!(
            groups("clicks"),
            Some(vec!["analytics".to_owned()]),
            "an explicit list wins"
        );
        assert_eq!(
            broker.topics["events"].retention_bytes,
            Some(4_194_304),
            "other settings stay"
        );
        assert_eq!(broker.validate(), Ok(()));
        assert_eq!(
            config.broker.topics.get("orders"),
            None,
            "the [broker] section itself is unchanged"
        );
    }

    #[test]
    fn relative_paths_in_a_file_are_relative_to_the_file() {
        let dir = std::env::temp_dir().join(format!("relay-config-paths-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("relay.toml");
        std::fs::write(
            &file,
            "[broker]\ndata_dir = \"./data\"\n[[send]]\ntopic = \"t\"\npaths = [\"logs/*.log\", \"/abs/*.log\"]\n\
             [[load]]\ntopic = \"t\"\ngroup = \"g\"\nwarehouse = \"sqlite://./w.db\"\ntable = \"t\"\n",
        )
        .unwrap();
        let config = RelayConfig::load(Some(&file)).unwrap();
        let dir = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(config.broker.data_dir, dir.join("./data"));
        assert_eq!(
            config.send[0].paths,
            vec![dir.join("logs/*.log").display().to_string(), "/abs/*.log".to_owned()]
        );
        assert_eq!(
            config.send[0].state_dir(),
            dir.join("./state/send-t"),
            "the default too is next to the file"
        );
        assert_eq!(
            config.load[0].warehouse,
            format!("sqlite://{}", dir.join("./w.db").display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_typo_names_the_key() {
        let error = toml::from_str::<RelayConfig>(
            "[[load]]\ntopic = \"t\"\ngroup = \"g\"\nwarehouse = \"w\"\ntable = \"t\"\nbatch_wait = 1\n",
        )
        .unwrap_err();
        assert!(error.to_string().contains("batch_wait"), "{error}");
        let error = toml::from_str::<RelayConfig>("[client]\nbroker = \"x\"\n").unwrap_err();
        assert!(error.to_string().contains("broker"), "{error}");
    }
}
