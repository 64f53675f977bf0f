//! The cluster as the client sees it: bootstrap addresses, brokers and
//! topic leaders from Metadata, one connection per broker (re-opened when it
//! dies), group coordinators, and the cluster id, which can be pinned so a
//! client never works against the wrong cluster.

use crate::connection::Connection;
use crate::error::{check, ClientError, Result};
use crate::security::Security;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `host:port` addresses to start from.
    pub bootstrap: Vec<String>,
    pub client_id: String,
    pub request_timeout: Duration,
    /// Refuse to work unless the cluster reports this id.
    pub expect_cluster_id: Option<String>,
    /// TLS and SASL for every connection.
    pub security: Security,
}

impl ClusterConfig {
    pub fn new(bootstrap: &str) -> Self {
        Self {
            bootstrap: bootstrap
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            client_id: "relay".into(),
            request_timeout: Duration::from_secs(30),
            expect_cluster_id: None,
            security: Security::plaintext(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TopicMetadata {
    pub name: String,
    /// Leader node id of each partition, by partition index.
    pub leaders: Vec<i32>,
}

#[derive(Default)]
struct State {
    brokers: HashMap<i32, String>,
    topics: HashMap<String, TopicMetadata>,
    /// Topics the last Metadata refused to describe to this user.
    refused: std::collections::HashSet<String>,
    cluster_id: Option<String>,
}

pub struct Cluster {
    config: ClusterConfig,
    state: Mutex<State>,
    connections: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

impl Cluster {
    /// Connects to the first reachable bootstrap broker and reads the
    /// cluster's brokers and id.
    pub async fn connect(config: ClusterConfig) -> Result<Arc<Self>> {
        if config.bootstrap.is_empty() {
            return Err(ClientError::Invalid("no broker address given".into()));
        }
        let cluster = Arc::new(Self {
            config,
            state: Mutex::default(),
            connections: tokio::sync::Mutex::default(),
        });
        cluster.refresh(&[], false).await?;
        Ok(cluster)
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    pub fn cluster_id(&self) -> Option<String> {
        self.state.lock().cluster_id.clone()
    }

    /// A live connection to `address`, opened if needed.
    pub async fn connection_to(&self, address: &str) -> Result<Arc<Connection>> {
        let mut connections = self.connections.lock().await;
        if let Some(connection) = connections.get(address).filter(|c| !c.is_dead()) {
            return Ok(Arc::clone(connection));
        }
        let connection = Connection::connect(
            address,
            &self.config.client_id,
            self.config.request_timeout,
            &self.config.security,
        )
        .await?;
        connections.insert(address.to_owned(), Arc::clone(&connection));
        Ok(connection)
    }

    /// A connection to any broker: known brokers first, then bootstrap addresses.
    pub async fn any_connection(&self) -> Result<Arc<Connection>> {
        let mut addresses: Vec<String> = self.state.lock().brokers.values().cloned().collect();
        addresses.sort();
        addresses.extend(self.config.bootstrap.iter().cloned());
        let mut last_error = None;
        for address in addresses {
            match self.connection_to(&address).await {
                Ok(connection) => return Ok(connection),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.expect("at least one bootstrap address"))
    }

    /// Refreshes brokers and the given topics (none: brokers only).
    pub async fn refresh(&self, topics: &[String], allow_auto_create: bool) -> Result<()> {
        let connection = self.any_connection().await?;
        let request = MetadataRequest::default()
            .with_topics(Some(
                topics
                    .iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(text(t)))))
                    .collect(),
            ))
            .with_allow_auto_topic_creation(allow_auto_create);
        let response: MetadataResponse = connection.send(ApiKey::Metadata, &request).await?;
        self.apply(&response)
    }

    /// Refreshes every topic of the cluster.
    pub async fn refresh_all(&self) -> Result<Vec<TopicMetadata>> {
        let connection = self.any_connection().await?;
        let request = MetadataRequest::default()
            .with_topics(None)
            .with_allow_auto_topic_creation(false);
        let response: MetadataResponse = connection.send(ApiKey::Metadata, &request).await?;
        self.apply(&response)?;
        let mut topics: Vec<TopicMetadata> = self.state.lock().topics.values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    fn apply(&self, response: &MetadataResponse) -> Result<()> {
        let cluster_id = response.cluster_id.as_ref().map(|c| c.to_string());
        if let (Some(expected), Some(actual)) = (&self.config.expect_cluster_id, &cluster_id) {
            if expected != actual {
                return Err(ClientError::ClusterMismatch {
                    expected: expected.clone(),
                    actual: actual.clone(),
                });
            }
        }
        let mut state = self.state.lock();
        state.cluster_id = cluster_id;
        state.brokers = response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
            .collect();
        for topic in &response.topics {
            let Some(name) = topic.name.as_ref().map(|n| n.to_string()) else {
                continue;
            };
            if topic.error_code != 0 {
                state.topics.remove(&name);
                if topic.error_code == ResponseError::TopicAuthorizationFailed.code() {
                    state.refused.insert(name);
                } else {
                    state.refused.remove(&name);
                }
                continue;
            }
            state.refused.remove(&name);
            let mut leaders = vec![-1; topic.partitions.len()];
            for partition in &topic.partitions {
                if let Some(slot) = usize::try_from(partition.partition_index)
                    .ok()
                    .and_then(|i| leaders.get_mut(i))
                {
                    *slot = partition.leader_id.0;
                }
            }
            state.topics.insert(name.clone(), TopicMetadata { name, leaders });
        }
        Ok(())
    }

    /// The topic's metadata, refreshing (and auto-creating when allowed) if unknown.
    pub async fn topic(&self, name: &str, allow_auto_create: bool) -> Result<TopicMetadata> {
        if let Some(topic) = self.state.lock().topics.get(name).cloned() {
            return Ok(topic);
        }
        self.refresh(&[name.to_owned()], allow_auto_create).await?;
        let state = self.state.lock();
        if state.refused.contains(name) {
            // Not "unknown": waiting for it to appear would wait forever.
            return Err(ClientError::broker(
                format!("describing topic {name:?}"),
                ResponseError::TopicAuthorizationFailed,
            ));
        }
        state
            .topics
            .get(name)
            .cloned()
            .ok_or_else(|| ClientError::UnknownTopic(name.to_owned()))
    }

    /// The partition count of a topic whose metadata is cached (no request,
    /// no allocation: the producer asks this for every record).
    pub fn cached_partition_count(&self, name: &str) -> Option<usize> {
        self.state.lock().topics.get(name).map(|t| t.leaders.len())
    }

    /// Forgets a topic's metadata so the next use refreshes it (after leader errors).
    pub fn invalidate(&self, name: &str) {
        self.state.lock().topics.remove(name);
    }

    /// A connection to the leader of a partition.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<Arc<Connection>> {
        let metadata = self.topic(topic, false).await?;
        let leader = metadata.leaders.get(partition as usize).copied().unwrap_or(-1);
        let address = self.state.lock().brokers.get(&leader).cloned();
        match address {
            Some(address) => self.connection_to(&address).await,
            None => {
                self.invalidate(topic);
                Err(ClientError::broker(
                    format!("partition {topic}/{partition}"),
                    ResponseError::LeaderNotAvailable,
                ))
            }
        }
    }

    /// A connection to the coordinator of `group`.
    pub async fn coordinator(&self, group: &str) -> Result<Arc<Connection>> {
        let connection = self.any_connection().await?;
        let request = FindCoordinatorRequest::default().with_key(text(group)).with_key_type(0);
        let response: FindCoordinatorResponse = connection.send(ApiKey::FindCoordinator, &request).await?;
        check(response.error_code, || {
            format!("finding the coordinator of group {group:?}")
        })?;
        self.connection_to(&format!("{}:{}", response.host, response.port))
            .await
    }
}
